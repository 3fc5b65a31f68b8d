/**
 * `tfjs-batchnorm/node` (also what `tfjs-batchnorm` resolves to in Node): everything the main entry
 * exports and registers, plus the `file://` save/load handler for tf.io, registered on import
 * unless another file:// handler (tfjs-node's) already exists. It uses Node's file system, so it
 * is kept out of the browser entry: browser bundles never see it.
 */
import {registerFileRouter} from './io/file_handler';

registerFileRouter();

export * from './index';
export {fileHandler, registerFileRouter} from './io/file_handler';
