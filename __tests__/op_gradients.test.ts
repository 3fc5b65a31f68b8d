/**
 * Finite-difference checks of the closed-form gradient on random shapes and axes, including the
 * gradient that flows through the mean and variance outputs. The loss
 *   L = Σ y·wy + Σ mean·wm + Σ variance·wv
 * is evaluated by the op itself and summed in float64; central differences with h = 3e-3 carry
 * O(h²) truncation and float32 rounding of about 1e-7·|y|/h, so analytic and numeric gradients
 * must agree within 2e-3 in |analytic − numeric| / (1 + |numeric|).
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormTrain, BatchNormTrainResult} from '../src';
import {channelCount, normalizeAxes} from '../src/ops/channel_axes';
import {describeEachPath} from './support/backends';
import {expectClose} from './support/golden';
import {mulberry32} from './support/random';

const H = 3e-3;
const TOLERANCE = 2e-3;

/** Small deterministic pseudo-random numbers (mulberry32), so failures reproduce. */
const random = mulberry32;

type Train = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => BatchNormTrainResult;

interface Problem {
  shape: number[];
  axis: number | number[];
  x: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  wy: Float32Array;
  wm: Float32Array;
  wv: Float32Array;
}

function makeProblem(seed: number): Problem {
  const rand = random(seed);
  const rank = 2 + Math.floor(rand() * 4);  // ranks 2..5
  const shape = Array.from({length: rank}, () => 2 + Math.floor(rand() * 3));
  const channelAxis = Math.floor(rand() * rank) - (rand() < 0.5 ? rank : 0);  // negative or not
  const axis = rank >= 4 && rand() < 0.3 ? [1, rank - 1] : channelAxis;
  const channels = channelCount(shape, normalizeAxes(axis, rank));
  const size = shape.reduce((a, b) => a * b, 1);
  const fill = (n: number, scale: number, offset = 0) => Float32Array.from({length: n}, () => offset + scale * (rand() * 2 - 1));
  return {shape, axis, x: fill(size, 2, 1), gamma: fill(channels, 0.5, 1), beta: fill(channels, 0.5),
          wy: fill(size, 1), wm: fill(channels, 1), wv: fill(channels, 1)};
}

function loss(train: Train, p: Problem, x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Scalar {
  const {y, mean, variance} = train(x, g, b);
  return tf.addN([tf.sum(tf.mul(y, tf.tensor(p.wy, p.shape))), tf.sum(tf.mul(mean, tf.tensor(p.wm))),
                  tf.sum(tf.mul(variance, tf.tensor(p.wv)))]) as tf.Scalar;
}

/** Float64 sum of the loss terms from the op's float32 outputs, to keep differencing noise low. */
function lossValue(train: Train, p: Problem, x: Float32Array, g: Float32Array, b: Float32Array): number {
  return tf.tidy(() => {
    const {y, mean, variance} = train(tf.tensor(x, p.shape), tf.tensor(g), tf.tensor(b));
    const dot = (a: ArrayLike<number>, w: ArrayLike<number>) => {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i] * w[i];
      return s;
    };
    return dot(y.dataSync(), p.wy) + dot(mean.dataSync(), p.wm) + dot(variance.dataSync(), p.wv);
  });
}

function numericGradient(f: (v: Float32Array) => number, v: Float32Array): Float64Array {
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const plus = Float32Array.from(v);
    const minus = Float32Array.from(v);
    plus[i] += H;
    minus[i] -= H;
    // Divide by the steps actually taken after float32 rounding.
    out[i] = (f(plus) - f(minus)) / (plus[i] - minus[i]);
  }
  return out;
}

describeEachPath('finite-difference gradient checks', (backend, path) => {
  test.each([11, 12, 13, 14, 15, 16])('random problem seed %i', seed => {
    const p = makeProblem(seed);
    const train: Train = (x, g, b) => batchNormTrain(x, g, b, {axis: p.axis});
    const analytic = tf.tidy(() => {
      const grads = tf.grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => loss(train, p, x, g, b));
      return grads([tf.tensor(p.x, p.shape), tf.tensor(p.gamma), tf.tensor(p.beta)]).map(t => t.dataSync());
    });
    const label = `${backend}/${path} shape [${p.shape}] axis ${JSON.stringify(p.axis)}`;
    expectClose(analytic[0], numericGradient(v => lossValue(train, p, v, p.gamma, p.beta), p.x), TOLERANCE, `${label} dx`);
    expectClose(analytic[1], numericGradient(v => lossValue(train, p, p.x, v, p.beta), p.gamma), TOLERANCE, `${label} dgamma`);
    expectClose(analytic[2], numericGradient(v => lossValue(train, p, p.x, p.gamma, v), p.beta), TOLERANCE, `${label} dbeta`);
  });
});

// Per-channel parameters may have any shape holding one value per channel (batchNormTrain's
// contract); each gradient takes its parameter's shape, with the values of the [channels]-shaped
// call. Measured difference 0; tolerance 1e-6.
describeEachPath('parameters shaped other than [channels]', (backend, path) => {
  const shape = [3, 4, 2, 2];
  const rand = random(21);
  const fill = (n: number) => Float32Array.from({length: n}, () => rand() * 2 - 1);
  const [x, g, b, wy] = [fill(48), fill(4), fill(4), fill(48)];
  /** y, dx, dgamma, dbeta for gamma and beta of these shapes (null: absent). */
  const run = (gammaShape: number[] | null, betaShape: number[] | null) => tf.tidy(() => {
    const params = [gammaShape == null ? null : tf.tensor(g, gammaShape), betaShape == null ? null : tf.tensor(b, betaShape)];
    const present = params.filter((t): t is tf.Tensor => t != null);
    const f = (xi: tf.Tensor, ...ps: tf.Tensor[]) => {
      const [gi, bi] = params.map(t => (t == null ? null : (ps.shift() as tf.Tensor)));
      return batchNormTrain(xi, gi, bi, {axis: 1}).y;
    };
    const y = f(tf.tensor(x, shape), ...present);
    const grads = tf.grads((xi: tf.Tensor, ...ps: tf.Tensor[]) => tf.sum(tf.mul(f(xi, ...ps), tf.tensor(wy, shape))))([tf.tensor(x, shape), ...present]);
    return [y, ...grads].map(t => ({shape: t.shape, values: t.dataSync() as Float32Array}));
  });
  test.each([
    [null, [1, 4, 1, 1]],
    [[1, 4, 1, 1], [4]],
    [[4, 1], null],
    [[1, 4, 1, 1], [4, 1]],
  ])(`gamma %j, beta %j (${backend}/${path})`, (gammaShape, betaShape) => {
    const got = run(gammaShape, betaShape);
    const want = run(gammaShape == null ? null : [4], betaShape == null ? null : [4]);
    const expectedShapes = [shape, shape, ...[gammaShape, betaShape].filter(s => s != null)];
    expect(got.map(o => o.shape)).toEqual(expectedShapes);
    got.forEach((o, i) => expectClose(o.values, want[i].values, 1e-6, `${backend}/${path} output ${i}`));
  });
}, undefined, ['fused', 'base', 'composite']);

// The axis argument: a list in any order (negative or not) names the same channels as the sorted
// list, and no axis means the last one (Keras' default). Same values: tolerance 0.
describeEachPath('the axis argument', (backend, path) => {
  const x = () => tf.tensor(Float32Array.from({length: 48}, (_, i) => Math.sin(i * 1.3) * 2 + i / 10), [2, 3, 2, 4]);
  const outputs = (axis?: number | number[]) => tf.tidy(() => {
    const xt = x();
    const {y, mean} = batchNormTrain(xt, null, null, axis == null ? {} : {axis});
    const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.square(batchNormTrain(xi, null, null, axis == null ? {} : {axis}).y)))(xt);
    return [y, mean, dx].map(t => Array.from(t.dataSync()));
  });
  test(`[3, 1] and [-1, -3] as [1, 3] (${backend}/${path})`, () => {
    const want = outputs([1, 3]);
    expect(outputs([3, 1])).toEqual(want);
    expect(outputs([-1, -3])).toEqual(want);
  });
  test(`no axis as -1 (${backend}/${path})`, () => {
    expect(outputs()).toEqual(outputs(3));
    expect(outputs()[1]).toHaveLength(4);
  });
});
