/** The small MNIST convnet of the examples, with a choice of normalization layer after each hidden layer. */
import * as tf from '@tensorflow/tfjs';
import {IMAGE_SIZE} from './mnist_data';

/** Makes the normalization layer placed after a hidden layer; null for none. */
export type NormalizationFactory = (() => tf.layers.Layer) | null;

/**
 * conv3x3(16) → [norm] → relu → maxpool → conv3x3(32) → [norm] → relu → maxpool → dense(64) →
 * [norm] → relu → dense(10). The same seeds for every run, so all models start from the same
 * weights. Before a normalization layer a bias is redundant (beta takes its place), so it is dropped.
 */
export function convnet(normalization: NormalizationFactory, seed: number): tf.Sequential {
  const model = tf.sequential();
  const withNorm = (layer: tf.layers.Layer) => {
    model.add(layer);
    if (normalization != null) model.add(normalization());
    model.add(tf.layers.activation({activation: 'relu'}));
  };
  const common = {useBias: normalization == null};
  withNorm(tf.layers.conv2d({inputShape: [IMAGE_SIZE, IMAGE_SIZE, 1], filters: 16, kernelSize: 3, ...common,
    kernelInitializer: tf.initializers.glorotUniform({seed})}));
  model.add(tf.layers.maxPooling2d({poolSize: 2}));
  withNorm(tf.layers.conv2d({filters: 32, kernelSize: 3, ...common, kernelInitializer: tf.initializers.glorotUniform({seed: seed + 1})}));
  model.add(tf.layers.maxPooling2d({poolSize: 2}));
  model.add(tf.layers.flatten());
  withNorm(tf.layers.dense({units: 64, ...common, kernelInitializer: tf.initializers.glorotUniform({seed: seed + 2})}));
  model.add(tf.layers.dense({units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: seed + 3})}));
  return model;
}

/** Fraction of test images classified correctly, in inference mode (normalization uses its moving statistics). */
export function testAccuracy(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor): number {
  return tf.tidy(() => {
    const predicted = (model.predict(xs) as tf.Tensor).argMax(-1);
    return predicted.equal(ys.argMax(-1)).mean().arraySync() as number;
  });
}
