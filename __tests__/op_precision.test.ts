/**
 * Cases built to defeat float32 arithmetic where the op promises float64-quality statistics, on
 * every backend and path, against the float64 reference:
 *  - over a million values per channel, with the channel's first value an outlier 1000 away from
 *    the others (spread 0.5): float32 accumulation, or float32 storage of the per-channel sums,
 *    loses the variance entirely there (E[d²] − E[d]² cancels 7 digits);
 *  - large offsets (1e4 ± 0.5), masked and not; a masked one with a small ε; one whose masked-out
 *    positions hold 1e7; 3e7 with a spread of a few units (float64 sums need their shift too);
 *  - the gradient of the mean and variance outputs over 48000 values per channel (the issue's
 *    [1, 3] axes), where a shift that the tape differentiates cancels in float32.
 * Tolerances in |got − want|/(1 + |want|) unless said otherwise; measured errors beside each.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormTrain} from '../src';
import {SIMD_FLAG} from '../src/kernels/simd';
import {describeEachPath, withFlag} from './support/backends';
import {expectClose} from './support/golden';
import {mulberry32 as random} from './support/random';
import {refMoments, RefProblem, refTrain, refTrainGrad} from './support/reference';

/** y, mean, variance, dx, dgamma, dbeta of `p` (with gamma and beta), as arrays. */
function run(p: RefProblem, dy: Float32Array, mask: Float32Array | null = null): Record<string, Float32Array> {
  return tf.tidy(() => {
    const x = tf.tensor(p.x as Float32Array, p.shape);
    const gamma = tf.tensor1d(p.gamma as Float32Array);
    const beta = tf.tensor1d(p.beta as Float32Array);
    const options = {axis: p.axes, epsilon: p.epsilon, mask: mask == null ? null : tf.tensor(mask, p.shape.slice(0, -1))};
    const {y, mean, variance} = batchNormTrain(x, gamma, beta, options);
    const [dx, dgamma, dbeta] = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) =>
      tf.sum(tf.mul(batchNormTrain(xi, gi, bi, options).y, tf.tensor(dy, p.shape))))([x, gamma, beta]);
    return Object.fromEntries(Object.entries({y, mean, variance, dx, dgamma, dbeta}).map(([k, t]) => [k, t.dataSync() as Float32Array]));
  });
}

/** The reference's y, mean, variance, dx, dgamma, dbeta. */
function reference(p: RefProblem, dy: Float32Array): Record<string, ArrayLike<number>> {
  return {...refTrain(p), ...refTrainGrad(p, dy)};
}

function expectAll(got: Record<string, Float32Array>, want: Record<string, ArrayLike<number>>, tolerance: number, label: string) {
  for (const field of Object.keys(want)) expectClose(got[field], want[field], tolerance, `${label}: ${field}`);
}

/**
 * The outlier case, built once per file on first use (16 MB of data and its float64 reference: built
 * per backend and path at collection time they made jest's heap thrash).
 */
let outlier: {p: RefProblem; dy: Float32Array; want: Record<string, ArrayLike<number>>} | undefined;
function outlierCase() {
  if (outlier == null) {
    const rows = 2 ** 20;
    const rand = random(7);
    const x = Float32Array.from({length: rows}, (_, i) => (i === 0 ? 0 : 1000 + (rand() - 0.5)));
    const dy = Float32Array.from({length: rows}, () => rand() - 0.5);
    const p: RefProblem = {shape: [rows, 1], axes: [1], x, gamma: Float32Array.of(1.5), beta: Float32Array.of(0.25), epsilon: 1e-3};
    outlier = {p, dy, want: reference(p, dy)};
  }
  return outlier;
}

describeEachPath('precision', (backend, path) => {
  const label = (what: string) => `${backend}/${path} ${what}`;

  // cpu's tf-ops path takes about 20 s for this size on 2 busy cores and sums in float64 (its Sum
  // kernel accumulates in JS numbers), so it would add time and nothing else: the case is declared
  // for the fused paths and for wasm's tf-ops path (whose Sum accumulates in float32). Mutation
  // runs (MUTATION_RUN, see stryker.config.mjs) leave it out: seconds per mutant.
  if (!(backend === 'cpu' && path === 'composite') && !process.env.MUTATION_RUN) {
    describe('2^20 values per channel, the first an outlier 1000 below the others', () => {
      // Fused (float64 sums): measured worst 1.6e-7, tolerance 1e-6. wasm's tf-ops path, whose
      // float32 sums run sequentially over a million values: measured 1.7e-3, tolerance 1e-2.
      const tolerance = path === 'fused' ? 1e-6 : 1e-2;
      test('y, mean, variance and all gradients', () => {
        const {p, dy, want} = outlierCase();
        expectAll(run(p, dy), want, tolerance, label('outlier'));
      });

      if (backend === 'wasm' && path === 'fused') {
        test('the same through the JS loops on wasm (SIMD off)', () => {
          const {p, dy, want} = outlierCase();
          withFlag(SIMD_FLAG, false, () => expectAll(run(p, dy), want, tolerance, label('outlier, JS loops')));
        });
      }
    });
  }

  test.each([false, true])('large offset 1e4 ± 0.5 over 4096 values per channel, masked: %s', masked => {
    const rand = random(11);
    const shape = [64, 64, 3];
    const x = Float32Array.from({length: 64 * 64 * 3}, () => 1e4 + (rand() - 0.5));
    const dy = Float32Array.from(x, () => rand() - 0.5);
    const mask = masked ? Float32Array.from({length: 64 * 64}, (_, i) => (i % 5 === 0 ? 0 : 1)) : null;
    const p: RefProblem = {shape, axes: [2], x, gamma: Float32Array.of(1, 2, 0.5), beta: Float32Array.of(0, 1, -1), epsilon: 1e-3,
      weights: mask == null ? null : Float32Array.from(x, (_, i) => mask[Math.floor(i / 3)])};
    // Measured worst 4.7e-8 fused, 2.2e-6 on wasm's tf-ops path (float32 sums), 1.2e-7 masked on cpu.
    expectAll(run(p, dy, mask), reference(p, dy), 1e-5, label(`large offset${masked ? ', masked' : ''}`));
  });

  // A padded batch whose masked-out positions hold 1e7 (first among them, the channel's first value)
  // next to data of 1e4 ± 0.5. A shift taken around the first value summed terms of 1e7 in float32
  // on wasm and landed 118 off the mean: y was 1e-3 off (measured; cpu sums in float64 and hid it).
  // Around the largest kept value, y, mean and variance: measured worst 3.8e-7 (y, wasm), tolerance
  // 1e-5. The gradients sum the masked positions' terms, whose normalized values are near 3.5e7, in
  // float32: dγ and dβ measured 7.3e-6 (wasm), tolerance 1e-4; dx, a difference of terms near 2e6,
  // relative to its largest element: measured 2.9e-7, tolerance 1e-5.
  test('masked, the masked-out positions hold 1e7 next to data of 1e4 ± 0.5: the shift comes from a kept value', () => {
    const rand = random(13);
    const shape = [64, 64, 3];
    const mask = Float32Array.from({length: 64 * 64}, (_, i) => (i % 5 === 0 ? 0 : 1));
    const x = Float32Array.from({length: 64 * 64 * 3}, (_, i) => (mask[Math.floor(i / 3)] === 0 ? 1e7 : 1e4 + (rand() - 0.5)));
    const dy = Float32Array.from(x, () => rand() - 0.5);
    const p: RefProblem = {shape, axes: [2], x, gamma: Float32Array.of(1, 2, 0.5), beta: Float32Array.of(0, 1, -1), epsilon: 1e-3,
      weights: Float32Array.from(x, (_, i) => mask[Math.floor(i / 3)])};
    const got = run(p, dy, mask);
    const want = reference(p, dy);
    for (const field of ['y', 'mean', 'variance']) expectClose(got[field], want[field], 1e-5, label(`masked-out 1e7: ${field}`));
    for (const field of ['dgamma', 'dbeta']) expectClose(got[field], want[field], 1e-4, label(`masked-out 1e7: ${field}`));
    const scale = Math.max(...Array.from(want.dx, Math.abs));
    expectClose(Array.from(got.dx, v => v / scale), Array.from(want.dx, v => v / scale), 1e-5, label('masked-out 1e7: dx / max |dx|'));
  });

  // Values 3e7 + 2k (exact in float32, whose spacing there is 2): unshifted float64 sums of squares
  // (9e14 each) would cancel to about 0.1 of a variance near 20; every path shifts by a value of
  // the channel first. Measured worst 9.8e-8; tolerance 1e-6 (the fused kernels without their
  // shift: 4e-2).
  test('offset 3e7, spread of a few units: the statistics are shifted before they are summed', () => {
    const shape = [64, 3];
    const x = Float32Array.from({length: 192}, (_, i) => 3e7 + 2 * ((i * 7 + Math.floor(i / 3)) % 8) + 4 * (i % 3));
    const dy = Float32Array.from(x, (_, i) => Math.sin(i));
    const p: RefProblem = {shape, axes: [1], x, gamma: Float32Array.of(1, 2, 0.5), beta: Float32Array.of(0, 1, -1), epsilon: 1e-3};
    expectAll(run(p, dy), reference(p, dy), 1e-6, label('offset 3e7'));
  });

  // Keras' masked moments divide by Σw + 1e-7, so Σw·(x − mean) = 1e-7·mean is not 0: with a large
  // mean and a small ε its share of dx (through ∂σ²/∂μ, ·1/(σ²+ε)) reaches 1e-3. Measured worst
  // 6.2e-7 on cpu, 1.7e-6 on wasm; tolerance 1e-5 (dropping that share measured 1.4e-3).
  test('masked, offset 1000 ± 0.05 and ε = 1e-5: the mask total\'s 1e-7 in the gradient', () => {
    const rand = random(3);
    const shape = [6, 4, 3];
    const x = Float32Array.from({length: 72}, () => 1000 + 0.1 * (rand() - 0.5));
    const dy = Float32Array.from(x, () => rand() - 0.5);
    const mask = Float32Array.from({length: 24}, (_, i) => (i % 4 === 1 ? 0 : 1));
    const p: RefProblem = {shape, axes: [2], x, gamma: Float32Array.of(1, 2, 0.5), beta: Float32Array.of(0, 1, -1), epsilon: 1e-5,
      weights: Float32Array.from(x, (_, i) => mask[Math.floor(i / 3)])};
    expectAll(run(p, dy, mask), reference(p, dy), 1e-5, label('masked, small ε'));
  });

  // Mutation runs take a tenth of the batch (4800 values per channel), where cpu's case takes under
  // 1 s instead of 6: a tape-differentiated shift still fails it there (measured 2.4e-5 on wasm).
  const batch = process.env.MUTATION_RUN ? 3 : 30;
  test(`gradients of the mean and variance outputs over ${batch * 1600} values per channel (axis [1, 3])`, () => {
    const shape = [batch, 2, 40, 2, 40];
    const axes = [1, 3];
    const size = shape.reduce((a, b) => a * b, 1);
    const n = size / 4;
    const rand = random(5);
    const x = Float32Array.from({length: size}, () => rand() * 2 - 1 + (rand() - 0.5) * 2);
    const wm = Float32Array.of(1, -0.5, 2, 0.25);
    const wv = Float32Array.of(-1, 0.5, 3, 1);
    const [dMean, dVariance] = tf.tidy(() => {
      const xt = tf.tensor(x, shape);
      const gradOf = (output: 'mean' | 'variance', w: Float32Array) =>
        tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(xi, null, null, {axis: axes})[output], tf.tensor1d(w))))(xt).dataSync();
      return [gradOf('mean', wm), gradOf('variance', wv)];
    });
    const channelOf = (i: number) => 2 * (Math.floor(i / 3200) % 2) + Math.floor(i / 40) % 2;
    const {mean} = refMoments({shape, axes, x, epsilon: 1e-3});
    // d(Σ mean·w)/dx = w/n and d(Σ variance·w)/dx = 2w(x − μ)/n; absolute errors relative to w/n,
    // the size of the answer: measured worst 1.1e-8 and 4.7e-7 (a tape-differentiated shift: 30).
    let worstMean = 0;
    let worstVariance = 0;
    for (let i = 0; i < size; i++) {
      const c = channelOf(i);
      worstMean = Math.max(worstMean, Math.abs(dMean[i] - wm[c] / n) / Math.abs(wm[c] / n));
      worstVariance = Math.max(worstVariance, Math.abs(dVariance[i] - 2 * wv[c] * (x[i] - mean[c]) / n) / Math.abs(wv[c] / n));
    }
    expect(worstMean).toBeLessThanOrEqual(1e-5);
    expect(worstVariance).toBeLessThanOrEqual(1e-4);
  });
});
