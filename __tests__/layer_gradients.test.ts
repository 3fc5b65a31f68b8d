/**
 * The BatchNorm layer's training switch and gradients, on every backend and path: which mode a
 * `training` value selects (Keras: any truthy value trains), first-order gradients in inference
 * mode (a frozen layer being fine-tuned through, with and without beta/gamma) against the float64
 * reference, and second-order gradients through the layer in both modes against autodiff of a
 * tf.moments composite with the same weights.
 * Tolerances in |got − want|/(1 + |want|): 1e-5 against float64 (measured worst 1.9e-7), 1e-4
 * against the float32 composite for second order (measured worst 2.5e-6).
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization} from '../src';
import {describeEachPath} from './support/backends';
import {expectClose} from './support/golden';
import {refInfer, refInferGrad, RefProblem, refTrain} from './support/reference';

const EPSILON = 1e-3;
const SHAPE = [4, 3, 2];  // channels-first view: channels on axis 1 when axis = 1

function values(n: number, seed: number, mean = 0, stddev = 1): number[] {
  return Array.from(tf.tidy(() => tf.randomNormal([n], mean, stddev, 'float32', seed).dataSync()));
}

/** gamma, beta, moving_mean, moving_variance for `channels` channels (weights in the stock order, without the absent ones). */
function weightsFor(channels: number, scale: boolean, center: boolean) {
  const gamma = values(channels, 11, 1, 0.3);
  const beta = values(channels, 12, 0, 0.5);
  const movingMean = values(channels, 13, 0.5, 0.5);
  const movingVariance = values(channels, 14, 1, 0.3).map(v => Math.abs(v) + 0.2);
  return {gamma, beta, movingMean, movingVariance,
    tensors: [...(scale ? [tf.tensor1d(gamma)] : []), ...(center ? [tf.tensor1d(beta)] : []), tf.tensor1d(movingMean), tf.tensor1d(movingVariance)]};
}

describeEachPath('BatchNorm layer: training switch and gradients', (backend, path) => {
  const label = (what: string) => `${backend}/${path} ${what}`;

  test.each([[true, true], [1, true], ['yes', true], [false, false], [0, false], [undefined, false], [null, false]])(
      'training: %j runs %s training mode (Keras: `if training and self.trainable`)', (training, trains) => {
    const w = weightsFor(2, true, true);
    const bn = batchNormalization({weights: w.tensors, momentum: 0.5, epsilon: EPSILON});
    const xValues = values(8, 1, 3, 2);
    const x = tf.tensor2d(xValues, [4, 2]);
    const y = bn.apply(x, {training} as unknown as {training: boolean}) as tf.Tensor;
    const p: RefProblem = {shape: [4, 2], axes: [1], x: xValues, gamma: w.gamma, beta: w.beta, epsilon: EPSILON};
    expectClose(y.dataSync(), trains ? refTrain(p).y : refInfer(p, w.movingMean, w.movingVariance), 1e-5, label(`training ${training}`));
    const movingMean = bn.getWeights()[2].dataSync();
    expectClose(movingMean, trains ? w.movingMean.map((m, c) => 0.5 * m + 0.5 * refTrain(p).mean[c]) : w.movingMean, 1e-6,
        label(`training ${training}: moving_mean`));
    tf.dispose([x, y, ...w.tensors]);
    bn.dispose();
  });

  test.each([
    {axis: 1, scale: true, center: true}, {axis: 1, scale: true, center: false}, {axis: -1, scale: false, center: true},
    {axis: -1, scale: false, center: false}, {axis: 2, scale: true, center: true},
  ])('inference mode (frozen layer), axis $axis scale $scale center $center: dx, dgamma, dbeta equal the reference', ({axis, scale, center}) => {
    const axes = [axis < 0 ? axis + SHAPE.length : axis];
    const channels = SHAPE[axes[0]];
    const w = weightsFor(channels, scale, center);
    const bn = batchNormalization({axis, scale, center, weights: w.tensors, epsilon: EPSILON});
    const xValues = values(24, 2, 1, 2);
    const dyValues = values(24, 3);
    const x = tf.tensor(xValues, SHAPE);
    const dy = tf.tensor(dyValues, SHAPE);
    const loss = () => tf.sum(tf.mul(bn.apply(x) as tf.Tensor, dy)) as tf.Scalar;
    const p: RefProblem = {shape: SHAPE, axes, x: xValues, gamma: scale ? w.gamma : null, beta: center ? w.beta : null, epsilon: EPSILON};
    const want = refInferGrad(p, w.movingMean, w.movingVariance, dyValues);
    const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(bn.apply(xi) as tf.Tensor, dy)))(x);
    expectClose(dx.dataSync(), want.dx, 1e-5, label('inference dx'));
    // Differentiating the (trainable) gamma and beta through inference mode, as fine-tuning with the moving statistics does.
    const grads: tf.NamedTensorMap = scale || center ? tf.variableGrads(loss).grads : {};
    if (scale) expectClose(grads[bn.weights[0].name].dataSync(), want.dgamma, 1e-5, label('inference dgamma'));
    if (center) expectClose(grads[bn.weights[scale ? 1 : 0].name].dataSync(), want.dbeta, 1e-5, label('inference dbeta'));
    tf.dispose([x, dy, dx, ...Object.values(grads), ...w.tensors]);
    bn.dispose();
  });

  test('a frozen layer inside model.fit: the layer before it gets the reference gradient (one SGD step)', async () => {
    const w = weightsFor(3, true, true);
    const bn = batchNormalization({weights: w.tensors, epsilon: EPSILON});
    bn.trainable = false;
    const dense = tf.layers.dense({units: 3, inputShape: [2], useBias: false, kernelInitializer: tf.initializers.randomNormal({seed: 5})});
    const model = tf.sequential({layers: [dense, bn]});
    model.compile({optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError'});
    const xValues = values(8, 6);
    const target = values(12, 7);
    const kernel = Array.from(dense.getWeights()[0].dataSync());
    // Forward and gradient by hand in float64: h = x·K, y = frozen BN(h), L = mean((y − t)²) over 12 values.
    const h = Array.from({length: 12}, (_, i) => [0, 1].reduce((s, k) => s + xValues[Math.floor(i / 3) * 2 + k] * kernel[k * 3 + i % 3], 0));
    const p: RefProblem = {shape: [4, 3], axes: [1], x: h, gamma: w.gamma, beta: w.beta, epsilon: EPSILON};
    const y = refInfer(p, w.movingMean, w.movingVariance);
    const dh = refInferGrad(p, w.movingMean, w.movingVariance, Array.from(y, (v, i) => (2 / 12) * (v - target[i]))).dx;
    const dK = kernel.map((_, j) => [0, 1, 2, 3].reduce((s, b) => s + xValues[b * 2 + Math.floor(j / 3)] * dh[b * 3 + j % 3], 0));
    await model.fit(tf.tensor2d(xValues, [4, 2]), tf.tensor2d(target, [4, 3]), {epochs: 1, batchSize: 4, verbose: 0});
    expectClose(dense.getWeights()[0].dataSync(), kernel.map((k, j) => k - 0.1 * dK[j]), 1e-5, label('dense kernel after one step'));
    model.dispose();
  });

  describe('second order through the layer', () => {
    /** ‖∂L/∂x‖² for L = Σ w·y², differentiated for x, gamma and beta, with `normalize` computing y. */
    function penaltyGrads(normalize: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, gamma: tf.Variable, beta: tf.Variable, w: tf.Tensor) {
      return tf.tidy(() => {
        const penalty = () => tf.sum(tf.square(tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(w, tf.square(normalize(xi)))))(x))) as tf.Scalar;
        const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.square(tf.grad((xj: tf.Tensor) => tf.sum(tf.mul(w, tf.square(normalize(xj)))))(xi))))(x);
        const {grads} = tf.variableGrads(penalty, [gamma, beta]);
        return [dx, grads[gamma.name], grads[beta.name]].map(t => t.dataSync());
      });
    }

    test.each([[true, 1], [false, 1], [true, -1], [false, -1]])('training %s, axis %i: d‖∂L/∂x‖² for x, gamma and beta as the tf.moments composite', (training, axis) => {
      const axes = [axis < 0 ? axis + SHAPE.length : axis];
      const channels = SHAPE[axes[0]];
      const wt = weightsFor(channels, true, true);
      const bn = batchNormalization({axis, weights: wt.tensors, epsilon: EPSILON, momentum: 0.9});
      const x = tf.tensor(values(24, 8, 1, 2), SHAPE);
      // Built by a first (inference-mode) call, which also sets the initial weights.
      tf.dispose(bn.apply(x) as tf.Tensor);
      const w = tf.tensor(values(24, 9), SHAPE);
      const got = penaltyGrads(xi => bn.apply(xi, {training}) as tf.Tensor, x, bn.weights[0].read() as tf.Variable, bn.weights[1].read() as tf.Variable, w);
      // The reference: the same weights as variables, the formula in tf ops, tfjs' autodiff.
      const gamma = tf.variable(tf.tensor1d(wt.gamma));
      const beta = tf.variable(tf.tensor1d(wt.beta));
      const shape = SHAPE.map((d, i) => (axes.includes(i) ? d : 1));
      const reduce = [0, 1, 2].filter(i => !axes.includes(i));
      const reference = (xi: tf.Tensor) => {
        const {mean, variance} = training ? tf.moments(xi, reduce, true) :
          {mean: tf.reshape(tf.tensor1d(wt.movingMean), shape), variance: tf.reshape(tf.tensor1d(wt.movingVariance), shape)};
        return tf.add(tf.mul(tf.div(tf.sub(xi, mean), tf.sqrt(tf.add(variance, EPSILON))), tf.reshape(gamma, shape)), tf.reshape(beta, shape));
      };
      const want = penaltyGrads(reference, x, gamma, beta, w);
      ['x', 'gamma', 'beta'].forEach((name, i) => expectClose(got[i], want[i], 1e-4, label(`training ${training} axis ${axis}: d penalty / d ${name}`)));
      tf.dispose([x, w, gamma, beta, ...wt.tensors]);
      bn.dispose();
    });
  });
});
