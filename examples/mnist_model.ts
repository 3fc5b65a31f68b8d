/**
 * The `npm start` convnet, in its own module so that the benchmark (bench/fold_workloads.ts) and the
 * browser benchmark build exactly the model the example trains.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization} from '../src';

/** Which batch normalization the convnet uses. */
export type Normalization = 'none' | 'stock' | 'ours';

/** MNIST images are 28×28, one channel. */
export const IMAGE_SIZE = 28;
/** The seed of the example's data split and of every initializer. */
export const SEED = 42;

/**
 * The arguments both batch-normalization layers get (ours is a drop-in: same arguments). Momentum
 * 0.9 instead of the default 0.99 because an epoch here is only 63 batches: with 0.99 the moving
 * statistics still hold half of their initial values after the first epoch, so the test accuracy
 * (inference mode uses them) would lag behind what the network has learned.
 */
const NORMALIZATION_ARGS = {momentum: 0.9};

/**
 * conv3x3(16) → [norm] → relu → maxpool → conv3x3(32) → [norm] → relu → maxpool → dense(64) →
 * [norm] → relu → dense(10). The same seeds for every run, so the three models start from the same
 * weights. Before a normalization layer a bias is redundant (beta takes its place), so it is dropped
 * (`useBias` overrides that: the benchmark times the network without normalization and without
 * biases too, which differs from the normalized ones by the batch-norm layers alone).
 */
export function buildModel(norm: Normalization, learningRate: number, {useBias = norm === 'none'} = {}): tf.Sequential {
  const model = tf.sequential();
  const withNorm = (layer: tf.layers.Layer) => {
    model.add(layer);
    if (norm === 'stock') model.add(tf.layers.batchNormalization(NORMALIZATION_ARGS));
    if (norm === 'ours') model.add(batchNormalization(NORMALIZATION_ARGS));
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
  model.compile({optimizer: tf.train.sgd(learningRate), loss: 'categoricalCrossentropy', metrics: ['accuracy']});
  return model;
}
