/**
 * Masks through the BatchNorm layer (Keras 3 semantics), on every backend and path: masked positions
 * are left out of the batch statistics; the mask has x's shape without its last axis and is
 * broadcast over that axis, whatever the channel axis; every position is normalized. Expected
 * values come from the float64 reference with the mask as weights (support/reference.ts).
 * Tolerance 1e-5 in |got − want|/(1 + |want|): measured worst 2.3e-7 (dx), a margin of 40.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization} from '../src';
import {describeEachPath} from './support/backends';
import {expectClose} from './support/golden';
import {refMoments, RefProblem, refTrain, refTrainGrad} from './support/reference';

const TOLERANCE = 1e-5;
const EPSILON = 1e-3;
const MOMENTUM = 0.75;

// x is [batch 2, time 4, features 3]; timesteps (0, 3), (1, 2) and (1, 3) are masked.
const X = [
  [[1, 2, 3], [4, 5, 6], [0.5, -1, 2], [100, 100, 100]],
  [[-2, 0, 1], [3, 3, 3], [-50, 50, 7], [9, -9, 9]],
];
const MASK = [[1, 1, 1, 0], [1, 1, 0, 0]];
const SHAPE = [2, 4, 3];
const DY = Array.from({length: 24}, (_, i) => Math.sin(1 + i * 0.7));

/** The reference problem for the layer on `x` with channel axis `axis` and the mask above (Keras rule: broadcast over the last axis). */
function problem(x: number[][][], axis: number, gamma: ArrayLike<number>, beta: ArrayLike<number>): RefProblem {
  return {shape: SHAPE, axes: [axis], x: x.flat(2), gamma, beta, epsilon: EPSILON, weights: MASK.flat().flatMap(m => [m, m, m])};
}

/** Moving statistics after one training call from the initial 0 / 1, as Keras updates them. */
function expectMovingStatistics(bn: tf.layers.Layer, p: RefProblem, label: string, steps = 1) {
  const {mean, variance} = refMoments(p);
  const kept = MOMENTUM ** steps;
  const weights = bn.getWeights();
  expectClose(weights[weights.length - 2].dataSync(), mean.map(m => m * (1 - kept)), TOLERANCE, `${label}: moving_mean`);
  expectClose(weights[weights.length - 1].dataSync(), variance.map(v => kept + v * (1 - kept)), TOLERANCE, `${label}: moving_variance`);
}

describeEachPath('BatchNorm layer: masks (Keras 3)', (backend, path) => {
  const label = (what: string) => `${backend}/${path} ${what}`;

  test.each([[-1], [1]])('channel axis %i: statistics, y and the gradients for x, gamma and beta equal the reference', axis => {
    const channels = SHAPE[axis < 0 ? axis + 3 : axis];
    const gamma = Array.from({length: channels}, (_, c) => 1 + 0.25 * c);
    const beta = Array.from({length: channels}, (_, c) => 0.5 - 0.5 * c);
    const bn = batchNormalization({axis, epsilon: EPSILON, momentum: MOMENTUM, weights: [tf.tensor1d(gamma), tf.tensor1d(beta), tf.zeros([channels]), tf.ones([channels])]});
    const x = tf.tensor3d(X);
    const mask = tf.tensor2d(MASK, undefined, 'bool');
    const dy = tf.tensor(DY, SHAPE);
    const p = problem(X, axis < 0 ? axis + 3 : axis, gamma, beta);
    const y = bn.apply(x, {training: true, mask}) as tf.Tensor;
    expectClose(y.dataSync(), refTrain(p).y, TOLERANCE, label(`axis ${axis}: y`));
    expectMovingStatistics(bn, p, label(`axis ${axis}`));
    // The moving statistics are not part of the loss, so no gradient arrives at the batch statistics.
    const want = refTrainGrad(p, DY);
    const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(bn.apply(xi, {training: true, mask}) as tf.Tensor, dy)))(x);
    const {grads} = tf.variableGrads(() => tf.sum(tf.mul(bn.apply(x, {training: true, mask}) as tf.Tensor, dy)) as tf.Scalar);
    expectClose(dx.dataSync(), want.dx, TOLERANCE, label(`axis ${axis}: dx`));
    expectClose(grads[bn.weights[0].name].dataSync(), want.dgamma, TOLERANCE, label(`axis ${axis}: dgamma`));
    expectClose(grads[bn.weights[1].name].dataSync(), want.dbeta, TOLERANCE, label(`axis ${axis}: dbeta`));
    expect(bn.computeMask(x, mask)).toBe(mask);
    tf.dispose([x, mask, dy, y, dx, ...Object.values(grads)]);
    bn.dispose();
  });

  test('a mask from a Masking layer reaches the layer inside a model', () => {
    const bn = batchNormalization({epsilon: EPSILON, momentum: MOMENTUM});
    const model = tf.sequential({layers: [tf.layers.masking({maskValue: 100, inputShape: [4, 3]}), bn]});
    // Masking drops timesteps whose features all equal maskValue (and zeroes them): mark the masked positions that way.
    const marked = X.map((row, b) => row.map((v, t) => (MASK[b][t] === 1 ? v : [100, 100, 100])));
    const zeroed = X.map((row, b) => row.map((v, t) => (MASK[b][t] === 1 ? v : [0, 0, 0])));
    const input = tf.tensor3d(marked);
    const y = model.apply(input, {training: true}) as tf.Tensor;
    const p = problem(zeroed, 2, [1, 1, 1], [0, 0, 0]);
    expectClose(y.dataSync(), refTrain(p).y, TOLERANCE, label('Masking → BatchNorm: y'));
    expectMovingStatistics(bn, p, label('Masking → BatchNorm'));
    tf.dispose([input, y]);
    model.dispose();
  });

  test('inside model.fit (the executor path): moving statistics, and gamma and beta after one SGD step, equal the reference', async () => {
    const learningRate = 0.1;
    const bn = batchNormalization({epsilon: EPSILON, momentum: MOMENTUM});
    const dense = tf.layers.dense({units: 1, kernelInitializer: tf.initializers.randomNormal({seed: 3}), biasInitializer: 'zeros'});
    const model = tf.sequential({layers: [tf.layers.masking({maskValue: 100, inputShape: [4, 3]}), bn, tf.layers.flatten(), dense]});
    model.compile({optimizer: tf.train.sgd(learningRate), loss: 'meanSquaredError'});
    const zeroed = X.map((row, b) => row.map((v, t) => (MASK[b][t] === 1 ? v : [0, 0, 0])));
    const input = tf.tensor3d(X.map((row, b) => row.map((v, t) => (MASK[b][t] === 1 ? v : [100, 100, 100]))));
    const target = tf.tensor2d([[0.5], [-1]]);
    const kernel = Array.from(dense.getWeights()[0].dataSync());

    // The step by hand: the mean squared error over the batch of 2 is L = Σ_b (pred_b − t_b)² / 2 with
    // pred = flatten(y)·kernel (bias 0), so dL/dy = (pred_b − t_b)·kernel; the reference takes it from there.
    const p = problem(zeroed, 2, [1, 1, 1], [0, 0, 0]);
    const y = refTrain(p).y;
    const perSample = 12;
    const pred = [0, 1].map(b => kernel.reduce((s, k, j) => s + k * y[b * perSample + j], 0));
    const targets = [0.5, -1];
    const dy = Array.from(y, (_, i) => (pred[Math.floor(i / perSample)] - targets[Math.floor(i / perSample)]) * kernel[i % perSample]);
    const {dgamma, dbeta} = refTrainGrad(p, dy);

    await model.fit(input, target, {epochs: 1, batchSize: 2, verbose: 0});
    expectMovingStatistics(bn, p, label('fit'));
    const [gamma, beta] = bn.getWeights();
    expectClose(gamma.dataSync(), Array.from(dgamma, g => 1 - learningRate * g), TOLERANCE, label('fit: gamma after one step'));
    expectClose(beta.dataSync(), Array.from(dbeta, g => -learningRate * g), TOLERANCE, label('fit: beta after one step'));
    // The step moved them by more than the tolerance, so the comparison above means something.
    expect(Math.max(...Array.from(dgamma, Math.abs), ...Array.from(dbeta, Math.abs)) * learningRate).toBeGreaterThan(100 * TOLERANCE);
    tf.dispose([input, target]);
    model.dispose();
  });

  test('an all-masked batch: mean 0 and variance 0 (Keras adds 1e-7 to the weight sum), y = (x − 0)/√ε, gradients as the reference', () => {
    const bn = batchNormalization({momentum: MOMENTUM, epsilon: EPSILON});
    const x = tf.tensor3d(X);
    const none = tf.zeros([2, 4]);
    const p: RefProblem = {...problem(X, 2, [1, 1, 1], [0, 0, 0]), weights: new Float64Array(24)};
    const y = bn.apply(x, {training: true, mask: none}) as tf.Tensor;
    expectClose(y.dataSync(), refTrain(p).y, TOLERANCE, label('all masked: y'));
    expectMovingStatistics(bn, p, label('all masked'));
    const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(bn.apply(xi, {training: true, mask: none}) as tf.Tensor, tf.tensor(DY, SHAPE))))(x);
    expectClose(dx.dataSync(), refTrainGrad(p, DY).dx, TOLERANCE, label('all masked: dx'));
    tf.dispose([x, none, y, dx]);
    bn.dispose();
  });

  test('Masking → BatchNorm(axis: 1) → RNN: predict and fit run, and fit trains (the mask is broadcast over the last axis)', async () => {
    const model = tf.sequential({layers: [
      tf.layers.masking({maskValue: 0, inputShape: [3, 2]}),
      batchNormalization({axis: 1}),
      // Seeded initializers: the claim below is about this layer, not about a lucky draw. Unseeded, at
      // sgd(0.1) for 5 epochs, one draw in about 1500 overshot and the loss rose (seen in CI); at
      // sgd(0.05) for 10 epochs, 0 of 1500 random draws failed on wasm's composite path.
      tf.layers.simpleRNN({units: 2, kernelInitializer: tf.initializers.glorotUniform({seed: 11}),
        recurrentInitializer: tf.initializers.orthogonal({seed: 12})}),
      tf.layers.dense({units: 1, kernelInitializer: tf.initializers.glorotUniform({seed: 13})}),
    ]});
    model.compile({optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError'});
    const x = tf.tensor3d([[[1, 2], [0, 0], [3, 1]], [[2, 2], [1, -1], [0, 0]], [[0.5, 1], [2, 3], [1, 1]], [[0, 0], [1, 2], [2, 0]]]);
    const target = tf.tensor2d([[1], [0], [-1], [0.5]]);
    const prediction = model.predict(x) as tf.Tensor;
    expect(prediction.shape).toEqual([4, 1]);
    const history = await model.fit(x, target, {epochs: 10, batchSize: 4, verbose: 0});
    const losses = history.history.loss as number[];
    expect(losses[9]).toBeLessThan(losses[0]);
    tf.dispose([x, target, prediction]);
    model.dispose();
  });
});
