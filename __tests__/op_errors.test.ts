/**
 * Bad input is refused early with a message naming the argument, the value and what was expected,
 * and leaves no tensor behind; the op and its gradients (first and second order, masked or not)
 * leak nothing inside tf.tidy, on every path; registering twice is a no-op.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormInfer, batchNormTrain, registerBatchNorm} from '../src';
import {BatchNormInfer, BatchNormTrain, BatchNormTrainGrad} from '../src/kernel_names';
import {MIN_EPSILON} from '../src/ops/validate';
import {describeEachBackend, describeEachPath} from './support/backends';

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
    expectCleanError(() => batchNormTrain(x4, null, null, {axis: [1, 3, -3]}), /argument 'axis' is \[1, 3, -3\], which names the same axis twice/);
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
    expectCleanError(() => batchNormInfer(x4, c3, c3, c4, null), /batchNormInfer: argument 'gamma' has shape \[4\]/);
    expectCleanError(() => batchNormInfer(x4, c3, c3, null, c4), /batchNormInfer: argument 'beta' has shape \[4\]/);
    c4.dispose();
  });
  test('a per-channel argument that is not a tensor', () => {
    expectCleanError(() => batchNormTrain(x4, [1, 2, 3] as unknown as tf.Tensor, null),
        /batchNormTrain: argument 'gamma' is \[1, 2, 3\], expected a float32 tf.Tensor with 3 values or null/);
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
  test('epsilon below 2^-126 (the smallest normal float32), NaN, infinite or not a number', () => {
    const expected = /expected a finite number >= 1.1754943508222875e-38 \(2\^-126, the smallest normal float32: a smaller epsilon divides by zero on a channel of equal values\)/;
    expectCleanError(() => batchNormTrain(x4, null, null, {epsilon: 0}), new RegExp(`argument 'epsilon' is 0, ${expected.source}`));
    expectCleanError(() => batchNormTrain(x4, null, null, {epsilon: -1}), /argument 'epsilon' is -1/);
    // The value: it passed the old `> 0` check and made dx non-finite.
    expectCleanError(() => batchNormTrain(x4, null, null, {epsilon: 5e-324}), /argument 'epsilon' is 5e-324/);
    expectCleanError(() => batchNormTrain(x4, null, null, {epsilon: MIN_EPSILON / 2}), /argument 'epsilon' is 5.877471754111438e-39/);
    expectCleanError(() => batchNormInfer(x4, c3, c3, null, null, {epsilon: NaN}), /argument 'epsilon' is NaN/);
    expectCleanError(() => batchNormInfer(x4, c3, c3, null, null, {epsilon: Infinity}), /argument 'epsilon' is Infinity/);
    expectCleanError(() => batchNormTrain(x4, null, null, {epsilon: '1e-3' as unknown as number}), /argument 'epsilon' is '1e-3'/);
    // The limit itself is accepted.
    tf.tidy(() => expect(() => batchNormTrain(x4, null, null, {epsilon: MIN_EPSILON})).not.toThrow());
  });
  test('a mask that is not x\'s shape without its last axis', () => {
    const x = tf.ones([2, 5, 3]);
    const wrong = tf.ones([2, 3]);
    expectCleanError(() => batchNormTrain(x, null, null, {axis: 1, mask: wrong}),
        /batchNormTrain: argument 'mask' is a float32 tensor of shape \[2,3\], expected shape \[2,5\]: the input shape \[2,5,3\] without its last axis/);
    expectCleanError(() => batchNormTrain(x, null, null, {mask: [[1]] as unknown as tf.Tensor}), /argument 'mask' is \[1\], expected shape \[2,5\]/);
    tf.dispose([x, wrong]);
  });
  test('x that is not a tensor', () => {
    expectCleanError(() => batchNormTrain([[1, 2]] as unknown as tf.Tensor, null, null), /argument 'x' is \[1,2\], expected a tf.Tensor/);
  });
});

describeEachPath('batchNormTrain / batchNormInfer memory', () => {
  test.each([[-1], [1], [[1, 2]], [[1, 3]]])('no tensor leaks from the op and its gradients inside tf.tidy (axis %j)', axis => {
    const x = tf.randomNormal([4, 3, 2, 5]);
    const mask = tf.tensor([1, 0, 1, 1, 0, 1].concat(Array(18).fill(1)), [4, 3, 2]);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const channels = batchNormTrain(x, null, null, {axis}).mean.size;
      const g = tf.ones([channels]);
      const b = tf.zeros([channels]);
      for (const m of [null, mask]) {
        const loss = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => {
          const r = batchNormTrain(xi, gi, bi, {axis, mask: m});
          return tf.addN([tf.sum(tf.square(r.y)), tf.sum(r.mean), tf.sum(r.variance)]);
        };
        tf.grads(loss)([x, g, b]);
        // Second order: a gradient penalty.
        tf.grads((xi: tf.Tensor, gi: tf.Tensor) => tf.sum(tf.square(tf.grad((xj: tf.Tensor) => loss(xj, gi, b))(xi))))([x, g]);
      }
      tf.grads((xi: tf.Tensor, vi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.square(batchNormInfer(xi, g, vi, g, bi, {axis}))))([x, g, b]);
    });
    expect(tf.memory().numTensors).toBe(before);
    // Outside tidy the ops return exactly their outputs.
    const result = batchNormTrain(x, null, null, {axis});
    expect(tf.memory().numTensors).toBe(before + 3);
    const masked = batchNormTrain(x, null, null, {axis, mask});
    expect(tf.memory().numTensors).toBe(before + 6);
    const inferred = batchNormInfer(x, result.mean, result.variance, null, null, {axis});
    expect(tf.memory().numTensors).toBe(before + 7);
    tf.dispose([result.y, result.mean, result.variance, masked.y, masked.mean, masked.variance, inferred, x, mask]);
  });
});

test('registering again changes nothing and warns about nothing (a second copy of the package, a hot reload)', () => {
  const names = [BatchNormTrain, BatchNormTrainGrad, BatchNormInfer];
  const kernels = names.flatMap(name => ['cpu', 'wasm'].map(backend => tf.getKernel(name, backend)));
  const gradients = names.map(name => tf.getGradient(name));
  expect(kernels.every(k => k != null) && gradients.every(g => g != null)).toBe(true);
  // tfjs replaces a kernel or gradient registered twice, with a console warning; registerBatchNorm must not.
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  try {
    registerBatchNorm();
    expect(warn).not.toHaveBeenCalled();
  } finally {
    warn.mockRestore();
  }
  expect(names.flatMap(name => ['cpu', 'wasm'].map(backend => tf.getKernel(name, backend)))).toEqual(kernels);
  expect(names.map(name => tf.getGradient(name))).toEqual(gradients);
});

describeEachBackend('the mask is not differentiated', () => {
  test('tf.grad with respect to the mask fails (no partial gradient through the statistics only)', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([3, 4, 2]);
      const mask = tf.tensor2d([[1, 0, 1, 1], [1, 1, 0, 1], [0, 1, 1, 1]]);
      const loss = (m: tf.Tensor) => {
        const r = batchNormTrain(x, null, null, {mask: m});
        return tf.addN([tf.sum(tf.square(r.y)), tf.sum(r.mean), tf.sum(r.variance)]);
      };
      expect(() => tf.grad(loss)(mask)).toThrow(/Cannot compute gradient of y=f\(x\) with respect to x/);
    });
  });
});
