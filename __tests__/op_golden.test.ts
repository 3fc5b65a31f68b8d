/**
 * The op against the float64 golden cases (../shared/golden), on every backend and path: the fused
 * kernels (cpu, wasm) and the tf-ops paths (forced on cpu and wasm; the only ones on tensorflow).
 * Tolerances: goldenTolerance() — 1e-4 in |got − want|/(1 + |want|), 1e-3 for large_offset and
 * tiny_spread, as the golden README states for a good float32 implementation.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormInfer, batchNormTrain} from '../src';
import {checkCommon} from '../src/ops/validate';
import {describeEachBackend, describeEachPath, withForcedComposite} from './support/backends';
import {expectClose, GoldenCase, goldenTolerance, loadGoldenCases} from './support/golden';

const cases = loadGoldenCases();

/** Runs one golden case through batchNormTrain and its gradient; returns plain arrays. */
function runCase(c: GoldenCase) {
  return tf.tidy(() => {
    const options = {axis: c.axis, epsilon: c.epsilon};
    const x = tf.tensor(c.x, c.shape);
    const dy = tf.tensor(c.dy, c.shape);
    // gamma/beta are differentiated even when the case disables them (they are ones/zeros then),
    // because the golden dgamma/dbeta are defined for every case.
    const gamma = tf.tensor1d(c.gamma);
    const beta = tf.tensor1d(c.beta);
    const forward = batchNormTrain(x, c.scale ? gamma : null, c.center ? beta : null, options);
    const grads = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(xi, gi, bi, options).y, dy)));
    const [dx, dgamma, dbeta] = grads([x, gamma, beta]);
    const inference = batchNormInfer(x, tf.tensor1d(c.moving_mean0), tf.tensor1d(c.moving_variance0),
        c.scale ? gamma : null, c.center ? beta : null, options);
    return {y: forward.y.dataSync(), mean: forward.mean.dataSync(), variance: forward.variance.dataSync(),
            dx: dx.dataSync(), dgamma: dgamma.dataSync(), dbeta: dbeta.dataSync(), inference_y: inference.dataSync()};
  });
}

describeEachPath('golden cases', (backend, path) => {
  test.each(cases.map(c => [c.name, c] as [string, GoldenCase]))('%s: y, mean, variance, dx, dgamma, dbeta, inference_y', (_, c) => {
    const got = runCase(c);
    for (const field of ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta', 'inference_y'] as const) {
      expectClose(got[field], c[field], goldenTolerance(c), `${backend}/${path}/${c.name}/${field}`);
    }
  });
});

describeEachBackend('fused kernels agree with the tf-ops paths', backend => {
  // Assorted shapes (ranks 2 to 6), axes and an offset, through the fused kernels and the forced
  // tf-ops paths in one test: measured max difference 1.2e-6, so 1e-5 leaves a margin of 8.
  const configs: Array<{shape: number[]; axis: number | number[]}> = [
    {shape: [7, 5], axis: -1}, {shape: [3, 4, 6, 8], axis: 1}, {shape: [2, 3, 4, 5, 6], axis: 2},
    {shape: [5, 2, 3, 4], axis: [1, 2]}, {shape: [6, 4, 3], axis: 0}, {shape: [2, 3, 2, 4, 2, 3], axis: -3},
  ];
  test.each(configs)('shape $shape axis $axis: y, mean, variance, dx, dgamma, dbeta, inference y within 1e-5', ({shape, axis}) => {
    tf.tidy(() => {
      const x = tf.add(tf.randomNormal(shape, 0, 2, 'float32', 7), 30);
      const dy = tf.randomNormal(shape, 0, 1, 'float32', 8);
      const channels = checkCommon('test', x, axis, 1e-3).channels;
      const gamma = tf.randomNormal([channels], 1, 0.5, 'float32', 9);
      const beta = tf.randomNormal([channels], 0, 0.5, 'float32', 10);
      const run = () => {
        const f = batchNormTrain(x, gamma, beta, {axis});
        const [dx, dg, db] = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(xi, gi, bi, {axis}).y, dy)))([x, gamma, beta]);
        const inference = batchNormInfer(x, f.mean, f.variance, gamma, beta, {axis});
        return [f.y, f.mean, f.variance, dx, dg, db, inference].map(t => t.dataSync());
      };
      const fused = withForcedComposite(false, run);
      const composite = withForcedComposite(true, run);
      composite.forEach((values, i) => expectClose(values, fused[i], 1e-5, `${backend}: composite vs fused, output ${i}`));
    });
  });
}, ['cpu', 'wasm']);
