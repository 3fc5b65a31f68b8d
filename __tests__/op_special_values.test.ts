/**
 * What the op does with a channel of equal values, a tiny epsilon, NaN and ±Infinity — the
 * behavior the README documents — identically on every backend and path (fused kernels, forced
 * tf-ops paths, and the backend's own FusedBatchNorm for inference, which the forced path takes for
 * channels-last input of rank <= 4).
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormInfer, batchNormTrain} from '../src';
import {MIN_EPSILON} from '../src/ops/validate';
import {describeEachPath} from './support/backends';
import {expectClose} from './support/golden';
import {refTrainGrad} from './support/reference';

/** Element-by-element equality that treats NaN as equal to NaN and tells +0 from nothing else. */
function expectSameValues(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  expect({what, values: Array.from(got)}).toEqual({what, values: Array.from(want)});
}

describeEachPath('special values', (backend, path) => {
  const label = (what: string) => `${backend}/${path}: ${what}`;

  describe('a channel of equal values (variance 0): y = β exactly, dγ = 0, dx finite', () => {
    test.each([
      // The cases: a batch of one with a tiny ε, a huge value, a constant channel with a small ε.
      {name: 'batch of one, x = −3, ε = 1e-30', rows: [[-3]], epsilon: 1e-30},
      {name: 'batch of one, x = 3e13, ε = 1e-3', rows: [[3e13]], epsilon: 1e-3},
      {name: 'constant 1e6 over 64 rows, ε = 1e-12', rows: Array.from({length: 64}, () => [1e6]), epsilon: 1e-12},
      {name: 'the smallest ε accepted (2^-126)', rows: [[5], [5], [5]], epsilon: MIN_EPSILON},
    ])('$name', ({rows, epsilon}) => {
      tf.tidy(() => {
        // Two channels: the constant one, and an ordinary one beside it that must not be disturbed.
        const xRows = rows.map((r, i) => [r[0], i % 2 === 0 ? 1.5 : -0.5]);
        const x = tf.tensor2d(xRows);
        const gamma = tf.tensor1d([2, 1]);
        const beta = tf.tensor1d([-0.3, 0.25]);
        const {y, mean, variance} = batchNormTrain(x, gamma, beta, {epsilon});
        const ys = y.dataSync();
        expect(Array.from({length: rows.length}, (_, i) => ys[2 * i])).toEqual(rows.map(() => Math.fround(-0.3)));
        expect(mean.dataSync()[0]).toBe(Math.fround(rows[0][0]));
        expect(variance.dataSync()[0]).toBe(0);
        // Inference with the batch statistics: the same.
        const yInfer = batchNormInfer(x, mean, variance, gamma, beta, {epsilon}).dataSync();
        expect(Array.from({length: rows.length}, (_, i) => yInfer[2 * i])).toEqual(rows.map(() => Math.fround(-0.3)));

        const dyValues = xRows.flatMap((_, i) => [Math.sin(i + 1), Math.cos(i)]);
        const [dx, dgamma] = tf.grads((xi: tf.Tensor, gi: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(xi, gi, beta, {epsilon}).y,
            tf.tensor2d(dyValues, [rows.length, 2]))))([x, gamma]);
        expect(dgamma.dataSync()[0]).toBe(0);
        const want = refTrainGrad({shape: [rows.length, 2], axes: [1], x: xRows.flat().map(Math.fround), gamma: [2, 1], beta: [-0.3, 0.25], epsilon}, dyValues);
        // dx = γ/√ε·(dy − mean(dy)) on the constant channel: up to 4e15 here, relative error ~1e-7.
        const dxs = dx.dataSync();
        expect(Array.from(dxs).every(Number.isFinite)).toBe(true);
        for (let i = 0; i < dxs.length; i++) {
          expect(Math.abs(dxs[i] - want.dx[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want.dx[i])));
        }
      });
    });
  });

  test('±Infinity in x: the IEEE mean (±Infinity, NaN for both signs) wherever it sits, variance and y NaN; other channels untouched', () => {
    tf.tidy(() => {
      // Channels: Inf first, Inf last, −Inf and +Inf, and an ordinary channel.
      const x = tf.tensor2d([[Infinity, 1, -Infinity, 1], [1, 2, 1, 2], [2, Infinity, Infinity, 4]]);
      const {y, mean, variance} = batchNormTrain(x, null, null);
      expectSameValues(mean.dataSync().slice(0, 3), [Infinity, Infinity, NaN], label('mean'));
      expectSameValues(variance.dataSync().slice(0, 3), [NaN, NaN, NaN], label('variance'));
      const ys = Array.from(y.dataSync());
      expect(ys.filter((_, i) => i % 4 !== 3).every(Number.isNaN)).toBe(true);
      expectClose([mean.dataSync()[3], variance.dataSync()[3]], [7 / 3, 14 / 9], 1e-6, label('ordinary channel'));
    });
  });

  test('NaN in x: its channel\'s statistics, outputs and gradients are NaN; other channels untouched', () => {
    tf.tidy(() => {
      const x = tf.tensor2d([[1, NaN], [2, 5], [4, 6]]);
      const gamma = tf.tensor1d([1, 1]);
      const {y, mean} = batchNormTrain(x, gamma, null);
      expect(Number.isNaN(mean.dataSync()[1])).toBe(true);
      const values = y.dataSync();
      expect([values[1], values[3], values[5]].every(Number.isNaN)).toBe(true);
      // The other channel: (x − 7/3)/√(var + ε) with var = 14/9.
      expect(values[0]).toBeCloseTo((1 - 7 / 3) / Math.sqrt(14 / 9 + 1e-3), 5);
      const [dx, dgamma] = tf.grads((xi: tf.Tensor, gi: tf.Tensor) => tf.sum(tf.square(batchNormTrain(xi, gi, null).y)))([x, gamma]);
      const dxs = dx.dataSync();
      expect([dxs[1], dxs[3], dxs[5]].every(Number.isNaN)).toBe(true);
      expect([dxs[0], dxs[2], dxs[4]].every(Number.isFinite)).toBe(true);
      expect(Number.isNaN(dgamma.dataSync()[1])).toBe(true);
      expect(Number.isFinite(dgamma.dataSync()[0])).toBe(true);
    });
  });

  test('γ = ±Infinity: y = ±Infinity by the sign of x − μ, NaN where x = μ (IEEE arithmetic of the formula); β = ±Infinity: y = β', () => {
    tf.tidy(() => {
      // Channel 0: values −1, 0, 1 (mean 0, so the middle one is exactly the mean).
      const x = tf.tensor2d([[-1, 1, 3], [0, 2, 3], [1, 3, 3]]);
      const gamma = tf.tensor1d([Infinity, -Infinity, 1]);
      const beta = tf.tensor1d([0, 0, Infinity]);
      const want = [-Infinity, Infinity, Infinity, NaN, NaN, Infinity, Infinity, -Infinity, Infinity];
      expectSameValues(batchNormTrain(x, gamma, beta).y.dataSync(), want, label('training'));
      const mean = tf.tensor1d([0, 2, 3]);
      const variance = tf.tensor1d([2 / 3, 2 / 3, 0]);
      expectSameValues(batchNormInfer(x, mean, variance, gamma, beta).dataSync(), want, label('inference'));
    });
  });
});
