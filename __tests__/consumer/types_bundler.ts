/**
 * Type-checked, not run, under moduleResolution bundler (with browser_app.ts) and node10: there 'tfjs-batchnorm'
 * is the browser entry, which has no file:// handler; tfjs-batchnorm/node has it.
 */
import {batchNormalization, BatchNormArgs} from 'tfjs-batchnorm';
// @ts-expect-error the browser entry has no file:// handler (it is in tfjs-batchnorm/node)
import {fileHandler} from 'tfjs-batchnorm';
import {fileHandler as nodeFileHandler} from 'tfjs-batchnorm/node';
import {batchNormTrain} from 'tfjs-batchnorm/op';

const args: BatchNormArgs = {axis: -1, momentum: 0.99};
export const layer = batchNormalization(args);
export const handlers = [fileHandler, nodeFileHandler];
export const op = batchNormTrain;
// @ts-expect-error a number is no initializer (tfjs-layers' own Initializer types resolved, not `any`)
batchNormalization({gammaInitializer: 42});
