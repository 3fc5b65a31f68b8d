/**
 * Bad input is refused early with a message naming the argument, the value and what was expected,
 * and leaves no tensor behind; edge cases that are allowed (one value per channel, NaN) behave as
 * documented; the op and its gradient leak nothing inside tf.tidy.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormInfer, batchNormTrain, registerBatchNorm} from '../src';
import {describeEachBackend} from './support/backends';

/** Expects `f` to throw a message matching `pattern` and to leave tf.memory().numTensors unchanged. */
function expectCleanError(f: () => unknown, pattern: RegExp): void {
  const before = tf.memory().numTensors;
  expect(f).toThrow(pattern);
  expect(tf.memory().numTensors).toBe(before);
}

describeEachBackend('batchNormTrain / batchNormInfer argument errors', () => {
  let x4: tf.Tensor;
  let c3: tf.Tensor;
  beforeAll(() => {
    x4 = tf.ones([2, 3, 4, 3]);
    c3 = tf.ones([3]);
  });
  afterAll(() => tf.dispose([x4, c3]));

  test('rank < 2', () => {
    const x = tf.ones([5]);
    expectCleanError(() => batchNormTrain(x, null, null), /batchNormTrain: argument 'x' has rank 1 \(shape \[5\]\), expected rank >= 2/);
    x.dispose();
  });
  test('axis out of range, repeated, empty, not an integer', () => {
    expectCleanError(() => batchNormTrain(x4, null, null, {axis: 4}), /argument 'axis' is 4, expected an integer in \[-4, 3\]/);
    expectCleanError(() => batchNormTrain(x4, null, null, {axis: -5}), /argument 'axis' is -5/);
    expectCleanError(() => batchNormTrain(x4, null, null, {axis: [1, -3]}), /argument 'axis' is \[1, -3\], which names the same axis twice/);
    expectCleanError(() => batchNormTrain(x4, null, null, {axis: []}), /argument 'axis' is \[\]/);
    expectCleanError(() => batchNormTrain(x4, null, null, {axis: 1.5}), /argument 'axis' is 1.5/);
  });
  test('gamma / beta / mean / variance whose size is not the channel count', () => {
    const c4 = tf.ones([4]);
    expectCleanError(() => batchNormTrain(x4, c4, null), /batchNormTrain: argument 'gamma' has shape \[4\] \(4 values\), expected 3 values: one per channel/);
    expectCleanError(() => batchNormTrain(x4, c3, c4), /argument 'beta' has shape \[4\]/);
    expectCleanError(() => batchNormInfer(x4, c4, c3, null, null), /batchNormInfer: argument 'mean' has shape \[4\]/);
    expectCleanError(() => batchNormInfer(x4, c3, null as unknown as tf.Tensor, null, null), /argument 'variance' is null, expected a float32 tf.Tensor with 3 values/);
    // Channels-first: the same gamma no longer fits.
    expectCleanError(() => batchNormTrain(x4, c4, null, {axis: 1}), /expected 3 values/);
    c4.dispose();
  });
  test('non-float32 input and parameters', () => {
    const xi = tf.ones([2, 3], 'int32');
    const gi = tf.ones([3], 'int32');
    expectCleanError(() => batchNormTrain(xi, null, null), /argument 'x' has dtype int32, expected float32/);
    expectCleanError(() => batchNormTrain(x4, gi, null, {axis: 1}), /argument 'gamma' has dtype int32, expected float32/);
    tf.dispose([xi, gi]);
  });
  test('empty tensor', () => {
    const x = tf.zeros([0, 3]);
    expectCleanError(() => batchNormTrain(x, null, null), /argument 'x' is empty \(shape \[0,3\]\)/);
    x.dispose();
  });
  test('epsilon <= 0, NaN or not a number', () => {
    expectCleanError(() => batchNormTrain(x4, null, null, {epsilon: 0}), /argument 'epsilon' is 0, expected a finite number > 0/);
    expectCleanError(() => batchNormTrain(x4, null, null, {epsilon: -1}), /argument 'epsilon' is -1/);
    expectCleanError(() => batchNormInfer(x4, c3, c3, null, null, {epsilon: NaN}), /argument 'epsilon' is NaN/);
    expectCleanError(() => batchNormTrain(x4, null, null, {epsilon: '1e-3' as unknown as number}), /argument 'epsilon' is '1e-3'/);
  });
  test('x that is not a tensor', () => {
    expectCleanError(() => batchNormTrain([[1, 2]] as unknown as tf.Tensor, null, null), /argument 'x' is \[1,2\], expected a tf.Tensor/);
  });
});

describeEachBackend('batchNormTrain edge cases and memory', () => {
  test('one value per channel: variance 0 and y = beta (as in Keras)', () => {
    tf.tidy(() => {
      const x = tf.tensor2d([[3, -1, 7]]);
      const beta = tf.tensor1d([0.5, -2, 4]);
      const {y, mean, variance} = batchNormTrain(x, tf.tensor1d([2, 3, 4]), beta);
      expect(Array.from(variance.dataSync())).toEqual([0, 0, 0]);
      expect(Array.from(mean.dataSync())).toEqual([3, -1, 7]);
      expect(Array.from(y.dataSync())).toEqual([0.5, -2, 4]);
    });
  });

  test('NaN in x propagates to its channel instead of crashing', () => {
    tf.tidy(() => {
      const x = tf.tensor2d([[1, NaN], [2, 5], [4, 6]]);
      const {y, mean} = batchNormTrain(x, null, null);
      const values = y.dataSync();
      expect(Number.isNaN(mean.dataSync()[1])).toBe(true);
      expect([values[1], values[3], values[5]].every(Number.isNaN)).toBe(true);
      // The other channel is untouched: (x − 7/3)/√(var + ε) with var = 14/9.
      expect(values[0]).toBeCloseTo((1 - 7 / 3) / Math.sqrt(14 / 9 + 1e-3), 5);
    });
  });

  test.each([[-1], [1], [[1, 2]]])('no tensor leaks from the op and its gradient inside tf.tidy (axis %j)', axis => {
    const x = tf.randomNormal([4, 3, 2, 5]);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const channels = batchNormTrain(x, null, null, {axis}).mean.size;
      const g = tf.ones([channels]);
      const b = tf.zeros([channels]);
      tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => {
        const r = batchNormTrain(xi, gi, bi, {axis});
        return tf.addN([tf.sum(r.y), tf.sum(r.mean), tf.sum(r.variance)]);
      })([x, g, b]);
      batchNormInfer(x, g, g, g, b, {axis});
    });
    expect(tf.memory().numTensors).toBe(before);
    // Outside tidy the op returns exactly its three outputs.
    const result = batchNormTrain(x, null, null, {axis});
    expect(tf.memory().numTensors).toBe(before + 3);
    tf.dispose([result.y, result.mean, result.variance, x]);
  });
});

test('registering again is harmless', () => {
  expect(() => registerBatchNorm()).not.toThrow();
});
