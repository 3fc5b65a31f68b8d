/**
 * The convnet of the MNIST examples, in its own module so that the benchmark (bench/fold_workloads.ts),
 * the browser benchmark and `npm run example:small-batch` build exactly the model `npm start` trains.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization} from '../src';
import {IMAGE_SIZE} from './mnist_data';

export {IMAGE_SIZE};

/** Which batch normalization the convnet of `npm start` uses. */
export type Normalization = 'none' | 'stock' | 'ours';

/** Makes the normalization layer placed after a hidden layer; null for none. */
export type NormalizationFactory = (() => tf.layers.Layer) | null;

/** The seed of the example's data split and of every initializer. */
export const SEED = 42;

/**
 * The arguments both batch-normalization layers get in `npm start` (ours is a drop-in: same
 * arguments). Momentum 0.9 instead of the default 0.99 because an epoch there is only 63 batches:
 * with 0.99 the moving statistics still hold half of their initial values after the first epoch, so
 * the test accuracy (inference mode uses them) would lag behind what the network has learned.
 */
const NORMALIZATION_ARGS = {momentum: 0.9};

/**
 * conv3x3(16) → [norm] → relu → maxpool → conv3x3(32) → [norm] → relu → maxpool → dense(64) →
 * [norm] → relu → dense(10), with `normalization` making each [norm]. The same seeds for every run,
 * so all models start from the same weights. Before a normalization layer a bias is redundant (beta
 * takes its place), so it is dropped (`useBias` overrides that: the browser benchmark also times the
 * network without normalization and without biases, which differs from the normalized ones by the
 * batch-norm layers alone).
 */
export function convnet(normalization: NormalizationFactory, {useBias = normalization == null} = {}): tf.Sequential {
  const model = tf.sequential();
  const withNorm = (layer: tf.layers.Layer) => {
    model.add(layer);
    if (normalization != null) model.add(normalization());
    model.add(tf.layers.activation({activation: 'relu'}));
  };
  const common = {useBias};
  withNorm(tf.layers.conv2d({inputShape: [IMAGE_SIZE, IMAGE_SIZE, 1], filters: 16, kernelSize: 3, ...common,
    kernelInitializer: tf.initializers.glorotUniform({seed: SEED})}));
  model.add(tf.layers.maxPooling2d({poolSize: 2}));
  withNorm(tf.layers.conv2d({filters: 32, kernelSize: 3, ...common, kernelInitializer: tf.initializers.glorotUniform({seed: SEED + 1})}));
  model.add(tf.layers.maxPooling2d({poolSize: 2}));
  model.add(tf.layers.flatten());
  withNorm(tf.layers.dense({units: 64, ...common, kernelInitializer: tf.initializers.glorotUniform({seed: SEED + 2})}));
  model.add(tf.layers.dense({units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: SEED + 3})}));
  return model;
}

/** The `npm start` model: the convnet with no, the stock, or this package's batch normalization, compiled. */
export function buildModel(norm: Normalization, learningRate: number): tf.Sequential {
  const layer: NormalizationFactory = norm === 'none' ? null : norm === 'stock' ?
    () => tf.layers.batchNormalization(NORMALIZATION_ARGS) : () => batchNormalization(NORMALIZATION_ARGS);
  const model = convnet(layer);
  model.compile({optimizer: tf.train.sgd(learningRate), loss: 'categoricalCrossentropy', metrics: ['accuracy']});
  return model;
}
