/**
 * The op against the float64 golden cases (../shared/golden), on every backend and on both
 * implementations: the fused kernel (cpu, wasm) and the composite of tf ops (every backend).
 * Tolerances: goldenTolerance() — 1e-4 in |got − want|/(1 + |want|), 1e-3 for large_offset and
 * tiny_spread, as the golden README states for a good float32 implementation.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormInfer, batchNormTrain, BatchNormTrainResult} from '../src';
import {BatchNormInfer, BatchNormTrain, BatchNormTrainGrad} from '../src/kernel_names';
import {batchNormInferComposite, batchNormTrainComposite} from '../src/ops/batch_norm_composite';
import {checkCommon} from '../src/ops/validate';
import {describeEachBackend} from './support/backends';
import {expectClose, GoldenCase, goldenTolerance, loadGoldenCases} from './support/golden';

const cases = loadGoldenCases();

type TrainFn = (x: tf.Tensor, gamma: tf.Tensor | null, beta: tf.Tensor | null, c: GoldenCase) => BatchNormTrainResult;

const implementations: Array<[string, TrainFn]> = [
  ['batchNormTrain', (x, g, b, c) => batchNormTrain(x, g, b, {axis: c.axis, epsilon: c.epsilon})],
  ['composite', (x, g, b, c) => batchNormTrainComposite(x, g, b, checkCommon('test', x, c.axis, c.epsilon))],
];

/** Runs one golden case through `train` and its gradient; returns plain arrays. */
function runCase(train: TrainFn, c: GoldenCase) {
  return tf.tidy(() => {
    const x = tf.tensor(c.x, c.shape);
    const dy = tf.tensor(c.dy, c.shape);
    // gamma/beta are differentiated even when the case disables them (they are ones/zeros then),
    // because the golden dgamma/dbeta are defined for every case.
    const gamma = tf.tensor1d(c.gamma);
    const beta = tf.tensor1d(c.beta);
    const forward = train(x, c.scale ? gamma : null, c.center ? beta : null, c);
    const grads = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.mul(train(xi, gi, bi, c).y, dy)));
    const [dx, dgamma, dbeta] = grads([x, gamma, beta]);
    return {y: forward.y.dataSync(), mean: forward.mean.dataSync(), variance: forward.variance.dataSync(),
            dx: dx.dataSync(), dgamma: dgamma.dataSync(), dbeta: dbeta.dataSync()};
  });
}

describeEachBackend('batchNormTrain golden cases', backend => {
  for (const [implementation, train] of implementations) {
    describe(implementation, () => {
      test.each(cases.map(c => [c.name, c] as [string, GoldenCase]))('%s: y, mean, variance, dx, dgamma, dbeta', (_, c) => {
        const got = runCase(train, c);
        const tol = goldenTolerance(c);
        for (const field of ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'] as const) {
          expectClose(got[field], c[field], tol, `${backend}/${implementation}/${c.name}/${field}`);
        }
      });
    });
  }

  test.each(cases.map(c => [c.name, c] as [string, GoldenCase]))('batchNormInfer %s: inference_y from moving statistics', (_, c) => {
    for (const infer of [batchNormInfer, (x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor | null, b: tf.Tensor | null) =>
      batchNormInferComposite(x, m, v, g, b, checkCommon('test', x, c.axis, c.epsilon))]) {
      const y = tf.tidy(() => infer(tf.tensor(c.x, c.shape), tf.tensor1d(c.moving_mean0), tf.tensor1d(c.moving_variance0),
          c.scale ? tf.tensor1d(c.gamma) : null, c.center ? tf.tensor1d(c.beta) : null, {axis: c.axis, epsilon: c.epsilon}).dataSync());
      expectClose(y, c.inference_y, goldenTolerance(c), `${backend}/${infer.name || 'composite'}/${c.name}/inference_y`);
    }
  });
});

describeEachBackend('fused kernels are the path taken', () => {
  test('training forward and gradient run BatchNormTrain and BatchNormTrainGrad, inference runs BatchNormInfer', async () => {
    const x = tf.randomNormal([4, 3, 5, 6]);
    const gamma = tf.randomNormal([3]);
    const beta = tf.randomNormal([3]);
    const profile = await tf.profile(() => {
      tf.tidy(() => {
        tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => tf.sum(batchNormTrain(xi, gi, bi, {axis: 1}).y))([x, gamma, beta]);
        batchNormInfer(x, gamma, tf.abs(beta), gamma, beta, {axis: 1});
      });
    });
    const names = profile.kernelNames;
    expect(names).toEqual(expect.arrayContaining([BatchNormTrain, BatchNormTrainGrad, BatchNormInfer]));
    // No tf.moments-style reductions: the statistics come from the fused kernel alone.
    expect(names).not.toContain('Mean');
    tf.dispose([x, gamma, beta]);
  });
}, ['cpu', 'wasm']);

describeEachBackend('fused kernels agree with the composite path', () => {
  // Assorted shapes (ranks 2 to 6), axes and an offset; both float32 implementations should agree to about 1e-5.
  const configs: Array<{shape: number[]; axis: number | number[]}> = [
    {shape: [7, 5], axis: -1}, {shape: [3, 4, 6, 8], axis: 1}, {shape: [2, 3, 4, 5, 6], axis: 2},
    {shape: [5, 2, 3, 4], axis: [1, 2]}, {shape: [6, 4, 3], axis: 0}, {shape: [2, 3, 2, 4, 2, 3], axis: -3},
  ];
  test.each(configs)('shape $shape axis $axis: y, mean, variance, dx, dgamma, dbeta within 1e-5', ({shape, axis}) => {
    tf.tidy(() => {
      const x = tf.add(tf.randomNormal(shape, 0, 2, 'float32', 7), 30);
      const dy = tf.randomNormal(shape, 0, 1, 'float32', 8);
      const channels = checkCommon('test', x, axis, 1e-3).channels;
      const gamma = tf.randomNormal([channels], 1, 0.5, 'float32', 9);
      const beta = tf.randomNormal([channels], 0, 0.5, 'float32', 10);
      const results = implementations.map(([, train]) => {
        const c = {axis, epsilon: 1e-3} as GoldenCase;
        const f = train(x, gamma, beta, c);
        const [dx, dg, db] = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.mul(train(xi, gi, bi, c).y, dy)))([x, gamma, beta]);
        return [f.y, f.mean, f.variance, dx, dg, db].map(t => t.dataSync());
      });
      results[0].forEach((fused, i) => expectClose(fused, results[1][i], 1e-5, `output ${i}`));
    });
  });
}, ['cpu', 'wasm']);
