/**
 * The SIMD WebAssembly loops of the wasm backend (src/kernels/simd.ts): they are the path taken in
 * Node (a silent fallback to the JS loops would otherwise go unnoticed), they meet the float64
 * golden cases, and they agree with the JS loops on shapes that exercise every vector and scalar
 * tail (channels not a multiple of 4 channels-last; runs not a multiple of 4 channels-first).
 * Tolerances: goldenTolerance() for the golden cases; 1e-6 relative between SIMD and JS loops,
 * which differ only in the order of float64 sums.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {batchNormInfer, batchNormTrain} from '../src';
import {jsLoops} from '../src/kernels/loops';
import {SIMD_FLAG, simdLoopsAvailable} from '../src/kernels/simd';
import {expectClose, goldenTolerance, loadGoldenCases, maxRelativeError} from './support/golden';

/** y, mean, variance, dx, dgamma, dbeta and inference y of one problem, with the SIMD loops on or off. */
function run(simd: boolean, shape: number[], axis: number | number[], x: number[], dy: number[], gamma: number[], beta: number[],
             epsilon = 1e-3) {
  const previous = tf.env().getBool(SIMD_FLAG);
  tf.env().set(SIMD_FLAG, simd);
  try {
    return tf.tidy(() => {
      const xt = tf.tensor(x, shape);
      const g = tf.tensor1d(gamma);
      const b = tf.tensor1d(beta);
      const r = batchNormTrain(xt, g, b, {axis, epsilon});
      const grads = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => batchNormTrain(xi, gi, bi, {axis, epsilon}).y)([xt, g, b], tf.tensor(dy, shape));
      const inference = batchNormInfer(xt, r.mean, r.variance, g, b, {axis, epsilon});
      return [r.y, r.mean, r.variance, ...grads, inference].map(t => t.dataSync());
    });
  } finally {
    tf.env().set(SIMD_FLAG, previous);
  }
}

describe('SIMD WebAssembly loops [wasm]', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  test('load into the wasm backend\'s own memory in Node', () => {
    expect(simdLoopsAvailable((tf.backend() as unknown as {wasm: unknown}).wasm)).toBe(true);
    expect(tf.env().getBool(SIMD_FLAG)).toBe(true);
  });

  test.each(loadGoldenCases().filter(c => !Array.isArray(c.axis)).map(c => [c.name, c] as const))('golden %s, SIMD and JS loops', (_, c) => {
    const before = tf.memory().numTensors;
    for (const simd of [true, false]) {
      const [y, mean, variance, dx, dgamma, dbeta] = run(simd, c.shape, c.axis, c.x, c.dy, c.gamma, c.beta, c.epsilon);
      const tol = goldenTolerance(c);
      const label = `${c.name} ${simd ? 'SIMD' : 'JS'}`;
      expectClose(y, c.y, tol, `${label} y`);
      expectClose(mean, c.mean, tol, `${label} mean`);
      expectClose(variance, c.variance, tol, `${label} variance`);
      expectClose(dx, c.dx, tol, `${label} dx`);
      expectClose(dgamma, c.dgamma, tol, `${label} dgamma`);
      expectClose(dbeta, c.dbeta, tol, `${label} dbeta`);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  const shapes: Array<[number[], number]> = [
    [[7, 3], -1], [[5, 6], -1], [[6, 13], -1], [[3, 8, 4, 9], -1],  // channels-last: tails of 3, 2, 1, 1 channels
    [[4, 5, 7], 1], [[3, 9, 2, 3], 1], [[2, 5, 3, 3, 3], 1], [[2, 6, 16], 1],  // runs of 7, 6, 27, 16 values
    [[1, 1, 2], 1], [[2, 3], 0],  // a single run; channels on axis 0 (outer = 1)
  ];
  test.each(shapes)('shape %j axis %d: SIMD loops equal the JS loops', (shape, axis) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const channels = shape[axis < 0 ? axis + shape.length : axis];
    // Large offset, small spread: the shifted float64 sums are what keeps these accurate.
    const x = Array.from({length: size}, (_, i) => 1e3 + Math.sin(i * 1.7) * 3);
    const dy = Array.from({length: size}, (_, i) => Math.cos(i * 0.9));
    const gamma = Array.from({length: channels}, (_, c) => 1 + 0.1 * c);
    const beta = Array.from({length: channels}, (_, c) => 0.5 - 0.2 * c);
    const simd = run(true, shape, axis, x, dy, gamma, beta);
    const js = run(false, shape, axis, x, dy, gamma, beta);
    simd.forEach((values, i) => expect(maxRelativeError(values, js[i])).toBeLessThanOrEqual(1e-6));
  });

  /** Counts the calls each JS loop gets while f runs. */
  function jsLoopCalls(f: () => void): Record<string, number> {
    const names = ['momentSums', 'affine', 'gradientSums', 'gradientApply'] as const;
    const spies = names.map(name => jest.spyOn(jsLoops, name));
    try {
      f();
      return Object.fromEntries(names.map((name, i) => [name, spies[i].mock.calls.length]));
    } finally {
      spies.forEach(spy => spy.mockRestore());
    }
  }

  test.each([[[6, 5], -1], [[3, 4, 6], 1]])('shape %j axis %d: every pass runs the SIMD loops; with the flag off, the JS loops', (shape, axis) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const channels = shape[axis < 0 ? axis + shape.length : axis];
    const values = Array.from({length: size}, (_, i) => Math.sin(i));
    const ones = Array(channels).fill(1);
    const none = {momentSums: 0, affine: 0, gradientSums: 0, gradientApply: 0};
    expect(jsLoopCalls(() => run(true, shape, axis, values, values, ones, ones))).toEqual(none);
    // run() does two training forwards, one gradient and one inference.
    expect(jsLoopCalls(() => run(false, shape, axis, values, values, ones, ones))).toEqual({momentSums: 2, affine: 3, gradientSums: 1, gradientApply: 1});
  });

  test('the scratch block grows with the channel count (3, then 300, then 3 channels): SIMD throughout, results as the JS loops', () => {
    for (const channels of [3, 300, 3]) {
      const shape = [5, channels];
      const x = Array.from({length: 5 * channels}, (_, i) => 10 + Math.cos(i * 1.3));
      const gamma = Array.from({length: channels}, (_, c) => 1 + c / channels);
      let simd: Float32Array[] = [];
      expect(jsLoopCalls(() => {
        simd = run(true, shape, -1, x, x, gamma, gamma) as Float32Array[];
      })).toEqual({momentSums: 0, affine: 0, gradientSums: 0, gradientApply: 0});
      const js = run(false, shape, -1, x, x, gamma, gamma);
      simd.forEach((values, i) => expect(maxRelativeError(values, js[i])).toBeLessThanOrEqual(1e-6));
    }
  });
});
