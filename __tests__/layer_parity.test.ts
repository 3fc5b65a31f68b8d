/**
 * Parity with tf.layers.batchNormalization where the stock layer is correct: channels-last input of
 * rank 2 to 4, scale and center on, data without a large offset (the stock layer's float32 moments
 * lose digits there). Tolerances, in |got − want|/(1 + |want|): 1e-5 for one call (outputs and moving
 * statistics), 1e-4 for weights after several fit epochs, where float32 rounding differences between
 * the two gradient computations accumulate over the steps.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization} from '../src';
import {describeEachBackend} from './support/backends';
import {expectClose} from './support/golden';

const ONE_CALL_TOLERANCE = 1e-5;
const AFTER_FIT_TOLERANCE = 1e-4;

/** Deterministic inputs: normal values with the given offset and spread, from a fixed seed. */
function data(shape: number[], seed: number, mean = 0.5, stddev = 2): tf.Tensor {
  return tf.randomNormal(shape, mean, stddev, 'float32', seed);
}

/** gamma, beta, moving_mean, moving_variance (positive) for `channels` channels. */
function weightsFor(channels: number): tf.Tensor[] {
  return [data([channels], 11, 1, 0.5), data([channels], 12), data([channels], 13), tf.abs(data([channels], 14, 1, 1))];
}

describeEachBackend('parity with tf.layers.batchNormalization', backend => {
  test.each([[[6, 5]], [[4, 3, 5]], [[2, 3, 4, 5]]])('input %j: outputs in both modes and moving statistics after a training call', shape => {
    const x = data(shape, 1);
    const initial = weightsFor(shape[shape.length - 1]);
    const args = {momentum: 0.9, epsilon: 1e-3, weights: initial};
    const ours = batchNormalization(args);
    const stock = tf.layers.batchNormalization(args);

    for (const training of [false, true]) {
      const got = ours.apply(x, {training}) as tf.Tensor;
      const want = stock.apply(x, {training}) as tf.Tensor;
      expectClose(got.dataSync(), want.dataSync(), ONE_CALL_TOLERANCE, `${backend} ${shape} training=${training}: y`);
      tf.dispose([got, want]);
    }
    const names = ['gamma', 'beta', 'moving_mean', 'moving_variance'];
    const stockWeights = stock.getWeights();
    ours.getWeights().forEach((w, i) => {
      expectClose(w.dataSync(), stockWeights[i].dataSync(), ONE_CALL_TOLERANCE, `${backend} ${shape}: ${names[i]} after one training call`);
    });
    tf.dispose([x, ...initial]);
    ours.dispose();
    stock.dispose();
  });

  /**
   * dense (on the last axis) → batch norm → dense, compiled with plain SGD. Dense rather than conv2d
   * because the wasm backend has no Conv2DBackpropFilter kernel.
   */
  function twin(batchNorm: tf.layers.Layer, inputShape: number[]): tf.Sequential {
    const model = tf.sequential({layers: [
      tf.layers.dense({units: 3, inputShape: inputShape.slice(1)}),
      batchNorm,
      ...(inputShape.length > 2 ? [tf.layers.flatten()] : []),
      tf.layers.dense({units: 1}),
    ]});
    model.compile({optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError'});
    return model;
  }

  test.each([[[16, 3]], [[8, 4, 2]], [[8, 3, 3, 2]]])('input %j: the same losses, weights and moving statistics after 4 fit epochs', async shape => {
    const stockLayer = tf.layers.batchNormalization({momentum: 0.8});
    const ourLayer = batchNormalization({momentum: 0.8});
    const stock = twin(stockLayer, shape);
    const ours = twin(ourLayer, shape);
    ours.setWeights(stock.getWeights());
    const x = data(shape, 2);
    const y = data([shape[0], 1], 3);
    const fitArgs = {epochs: 4, batchSize: shape[0] / 2, shuffle: false, verbose: 0} as const;
    const stockLosses = (await stock.fit(x, y, fitArgs)).history.loss as number[];
    const ourLosses = (await ours.fit(x, y, fitArgs)).history.loss as number[];

    expectClose(ourLosses, stockLosses, AFTER_FIT_TOLERANCE, `${backend} ${shape}: losses per epoch`);
    const [ourMean, ourVariance] = ourLayer.getWeights().slice(2);
    const [stockMean, stockVariance] = stockLayer.getWeights().slice(2);
    // The moving statistics really moved (8 steps at momentum 0.8), so the comparison means something.
    expect(Array.from(stockMean.dataSync()).every(v => v !== 0)).toBe(true);
    expectClose(ourMean.dataSync(), stockMean.dataSync(), AFTER_FIT_TOLERANCE, `${backend} ${shape}: moving_mean`);
    expectClose(ourVariance.dataSync(), stockVariance.dataSync(), AFTER_FIT_TOLERANCE, `${backend} ${shape}: moving_variance`);
    const stockWeights = stock.getWeights();
    ours.getWeights().forEach((w, i) => {
      expectClose(w.dataSync(), stockWeights[i].dataSync(), AFTER_FIT_TOLERANCE, `${backend} ${shape}: ${stock.weights[i].name}`);
    });
    tf.dispose([x, y]);
    stock.dispose();
    ours.dispose();
  });
});
