/**
 * Type-checked, not run: the package's declarations as a TypeScript user with `strict` sees them.
 * __tests__/consumer.test.ts compiles this file as an ES module and as CommonJS (moduleResolution
 * node16, where 'tfjs-batchnorm' resolves to the Node entry) and, with types_bundler.ts, under
 * moduleResolution bundler. Each @ts-expect-error must find its error: if a type degraded to `any`
 * (e.g. tfjs-layers' argument types failing to resolve), compilation fails.
 */
import * as tf from '@tensorflow/tfjs';
import {BatchNorm, batchNormalization, BatchNormArgs, batchNormTrain, BatchNormTrainResult, fileHandler} from 'tfjs-batchnorm';
import {registerFileRouter} from 'tfjs-batchnorm/node';
import {batchNormInfer} from 'tfjs-batchnorm/op';

const args: BatchNormArgs = {axis: [1, 2], momentum: 0.9, epsilon: 1e-3, center: true, scale: false,
  gammaInitializer: 'ones', betaRegularizer: 'l1l2', movingVarianceInitializer: tf.initializers.ones(), name: 'bn'};
const layer: BatchNorm = batchNormalization(args);
export const model: tf.Sequential = tf.sequential({layers: [layer]});
const result: BatchNormTrainResult = batchNormTrain(tf.zeros([2, 3]), null, null, {axis: -1, epsilon: 1e-3});
export const inferred: tf.Tensor = batchNormInfer(result.y, result.mean, result.variance, null, null);
export const handler: tf.io.IOHandler = fileHandler('./model');
export const registered: boolean = registerFileRouter();
// @ts-expect-error momentum is a number
batchNormalization({momentum: 'high'});
// @ts-expect-error a number is no initializer (tfjs-layers' own Initializer types resolved, not `any`)
batchNormalization({gammaInitializer: 42});
// @ts-expect-error no such argument
batchNormalization({moment: 0.9});
