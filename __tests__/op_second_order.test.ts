/**
 * Second- and third-order gradients through batchNormTrain (masked or not) and batchNormInfer, on
 * every backend and path, against autodiff of a plain tf.moments composite (the Keras formula in tf
 * ops, differentiated by tfjs itself). Cases: a gradient penalty ‖∂L/∂x‖² (WGAN-GP) differentiated
 * for x, gamma and beta, with L quadratic in y, mean and variance; the same with a linear L; a
 * Hessian-vector product; a third derivative. Also the fallback a backend gets when it registers
 * the fused forward kernel but not the fused gradient kernel, and the kernels called directly.
 *
 * Tolerance 1e-4 in |got − want|/(1 + |want|) (the bar); measured worst 7.9e-6 over these
 * cases (both float32, so the difference is rounding of two formulations): a margin of 12.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormInfer, batchNormTrain} from '../src';
import {cpuKernels} from '../src/kernels/cpu';
import {BatchNormInfer, BatchNormTrain, BatchNormTrainGrad} from '../src/kernel_names';
import {broadcastShape, normalizeAxes, reductionAxes} from '../src/ops/channel_axes';
import {KERAS_BACKEND_EPSILON} from '../src/ops/moments';
import {cpuCopy, describeEachPath, removeCpuCopies} from './support/backends';
import {expectClose} from './support/golden';

const TOLERANCE = 1e-4;
const EPSILON = 1e-3;

type Normalize = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor};

/** Keras' formula in plain tf ops, every gradient by tfjs' autodiff; `weights` as Keras 3's masked _moments. */
function reference(axes: number[], weights: tf.Tensor | null): Normalize {
  return (x, gamma, beta) => {
    const reduce = reductionAxes(x.rank, axes);
    const shape = broadcastShape(x.shape, axes);
    let mean: tf.Tensor;
    let variance: tf.Tensor;
    if (weights == null) {
      ({mean, variance} = tf.moments(x, reduce, true));
    } else {
      const total = tf.add(tf.sum(weights, reduce, true), KERAS_BACKEND_EPSILON);
      mean = tf.div(tf.sum(tf.mul(weights, x), reduce, true), total);
      variance = tf.div(tf.sum(tf.mul(weights, tf.square(tf.sub(x, mean))), reduce, true), total);
    }
    const y = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, EPSILON))), tf.reshape(gamma, shape)), tf.reshape(beta, shape));
    const channels = [gamma.size];
    return {y, mean: tf.reshape(mean, channels), variance: tf.reshape(variance, channels)};
  };
}

function ours(axis: number | number[], mask: tf.Tensor | null): Normalize {
  return (x, gamma, beta) => batchNormTrain(x, gamma, beta, {axis, epsilon: EPSILON, mask});
}

/**
 * Ghost batches (k of them) in plain tf ops: Keras 2's view [B/k, k, …], each (ghost batch, channel)
 * normalized with its own moments; the mean and variance outputs average them over ghost batches.
 */
function ghostReference(axes: number[], k: number): Normalize {
  return (x, gamma, beta) => {
    const viewShape = [x.shape[0] / k, k, ...x.shape.slice(1)];
    const viewAxes = [1, ...axes.map(a => a + 1)];
    const view = tf.reshape(x, viewShape);
    const {mean, variance} = tf.moments(view, reductionAxes(view.rank, viewAxes), true);
    const paramShape = broadcastShape(viewShape, viewAxes).map((d, i) => (i === 1 ? 1 : d));
    const normalized = tf.div(tf.sub(view, mean), tf.sqrt(tf.add(variance, EPSILON)));
    const y = tf.reshape(tf.add(tf.mul(normalized, tf.reshape(gamma, paramShape)), tf.reshape(beta, paramShape)), x.shape);
    const overGhosts = (t: tf.Tensor) => tf.reshape(tf.mean(t, 1), [gamma.size]);
    return {y, mean: overGhosts(mean), variance: overGhosts(variance)};
  };
}

/** BatchNormTrain called directly with engine().runKernel (every base input; `ghosts` k). */
function direct(axes: number[], ghosts = 1): Normalize {
  return (x, gamma, beta) => {
    const attrs = {axis: axes, epsilon: EPSILON, ...(ghosts > 1 ? {ghosts} : {})};
    const [y, mean, variance] = tf.engine().runKernel(BatchNormTrain, {x, gamma, beta}, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    return {y, mean, variance};
  };
}

/** Ghost-batch cases (the kernels' `ghosts` attribute, which only the layer's step sets otherwise). */
const GHOST_CASES: Array<Case & {ghosts: number}> = [
  {name: 'channels-first, 2 ghost batches', shape: [4, 3, 2, 2], axis: 1, ghosts: 2},
  {name: 'channels-last, 3 ghost batches', shape: [6, 2, 3], axis: -1, ghosts: 3},
];

interface Case {
  name: string;
  shape: number[];
  axis: number | number[];
  masked?: boolean;
}

const CASES: Case[] = [
  {name: 'channels-first rank 4', shape: [3, 4, 3, 2], axis: 1},
  {name: 'channels-last rank 3', shape: [4, 3, 5], axis: -1},
  {name: 'two adjacent axes', shape: [3, 2, 3, 4], axis: [1, 2]},
  {name: 'non-adjacent axes (the issue\'s [0, 2])', shape: [3, 4, 5], axis: [0, 2]},
  {name: 'rank 5', shape: [2, 3, 2, 2, 3], axis: -1},
  {name: 'masked, channels-last', shape: [3, 4, 2], axis: -1, masked: true},
  {name: 'masked, channel axis 1', shape: [3, 4, 2], axis: 1, masked: true},
];

/** Deterministic inputs of a case: x, gamma, beta, weights for the losses, and a mask. */
function inputs(c: Case) {
  const axes = normalizeAxes(c.axis, c.shape.length);
  const channels = axes.reduce((n, a) => n * c.shape[a], 1);
  const channelShape = [channels];
  const mask = c.masked ? tf.tensor(Array.from({length: c.shape.slice(0, -1).reduce((a, b) => a * b, 1)}, (_, i) => (i % 3 === 1 ? 0 : 1)),
      c.shape.slice(0, -1)) : null;
  const weights = mask == null ? null : tf.broadcastTo(tf.expandDims(mask, -1), c.shape);
  return {
    axes, mask, weights,
    x: tf.add(tf.randomNormal(c.shape, 0, 1.5, 'float32', 1), 2),
    gamma: tf.randomNormal(channelShape, 1, 0.4, 'float32', 2),
    beta: tf.randomNormal(channelShape, 0, 0.5, 'float32', 3),
    wy: tf.randomNormal(c.shape, 0, 1, 'float32', 4),
    wm: tf.randomNormal(channelShape, 0, 1, 'float32', 5),
    wv: tf.randomNormal(channelShape, 0, 1, 'float32', 6),
    v: tf.randomNormal(c.shape, 0, 1, 'float32', 7),
  };
}

/** Computes the same higher-order quantities with `f` (ours or the reference), as plain arrays. */
function higherOrder(f: Normalize, d: ReturnType<typeof inputs>): Record<string, Float32Array> {
  return tf.tidy(() => {
    // A quadratic loss in every output, and a linear one in y.
    const quadratic = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const {y, mean, variance} = f(x, g, b);
      return tf.addN([tf.sum(tf.mul(d.wy, tf.square(y))), tf.sum(tf.mul(d.wm, tf.square(mean))), tf.sum(tf.mul(d.wv, tf.square(variance)))]);
    };
    const linear = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(d.wy, f(x, g, b).y));
    const penalty = (loss: typeof linear) => (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.square(tf.grad((xi: tf.Tensor) => loss(xi, g, b))(x)));
    const [px, pg, pb] = tf.grads(penalty(quadratic))([d.x, d.gamma, d.beta]);
    // A linear loss: ∂L/∂x does not depend on beta, so only x and gamma are asked for.
    const [lx, lg] = tf.grads((x: tf.Tensor, g: tf.Tensor) => penalty(linear)(x, g, d.beta))([d.x, d.gamma]);
    const hvp = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(d.v, tf.grad((xi: tf.Tensor) => quadratic(xi, d.gamma, d.beta))(x))))(d.x);
    // Third order: d/dγ ‖∂/∂x (Σ v·∂L/∂x)‖², the derivative for gamma of a Hessian-vector product's norm.
    const third = tf.grad((g: tf.Tensor) => tf.sum(tf.square(tf.grad((x: tf.Tensor) =>
      tf.sum(tf.mul(d.v, tf.grad((xi: tf.Tensor) => quadratic(xi, g, d.beta))(x))))(d.x))))(d.gamma);
    const arrays = {px, pg, pb, lx, lg, hvp, third};
    return Object.fromEntries(Object.entries(arrays).map(([k, t]) => [k, t.dataSync() as Float32Array]));
  });
}

describeEachPath('second- and third-order gradients of batchNormTrain', (backend, path) => {
  test.each(CASES)('$name: penalty (quadratic and linear loss), Hessian-vector product, third order', c => {
    const d = inputs(c);
    const before = tf.memory().numTensors;
    const got = higherOrder(ours(c.axis, d.mask), d);
    const want = higherOrder(reference(d.axes, d.weights), d);
    for (const key of Object.keys(want)) expectClose(got[key], want[key], TOLERANCE, `${backend}/${path} ${c.name}: ${key}`);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(d).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
  });
});

describeEachPath('second-order gradients of batchNormInfer', (backend, path) => {
  test.each(CASES.filter(c => !c.masked))('$name: penalty for x, mean, variance, gamma, beta', c => {
    const d = inputs(c);
    const mean = tf.randomNormal([d.gamma.size], 1, 0.5, 'float32', 8);
    const variance = tf.add(tf.abs(tf.randomNormal([d.gamma.size], 1, 0.5, 'float32', 9)), 0.1);
    const shape = broadcastShape(c.shape, d.axes);
    const implementations = {
      ours: (x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => batchNormInfer(x, m, v, g, b, {axis: c.axis, epsilon: EPSILON}),
      reference: (x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const perChannel = (t: tf.Tensor) => tf.reshape(t, shape);
        return tf.add(tf.mul(tf.div(tf.sub(x, perChannel(m)), tf.sqrt(tf.add(perChannel(v), EPSILON))), perChannel(g)), perChannel(b));
      },
    };
    const results = Object.values(implementations).map(f => tf.tidy(() => {
      const loss = (x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(d.wy, tf.square(f(x, m, v, g, b))));
      // ‖∂L/∂x‖² + ‖∂L/∂mean‖² (the latter reaches the sums over the reduction axes).
      const penalty = (x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const [gx, gm] = tf.grads((xi: tf.Tensor, mi: tf.Tensor) => loss(xi, mi, v, g, b))([x, m]);
        return tf.add(tf.sum(tf.square(gx)), tf.sum(tf.square(gm)));
      };
      return tf.grads(penalty)([d.x, mean, variance, d.gamma, d.beta]).map(t => t.dataSync());
    }));
    const names = ['x', 'mean', 'variance', 'gamma', 'beta'];
    results[0].forEach((got, i) => expectClose(got, results[1][i], TOLERANCE, `${backend}/${path} ${c.name}: d penalty / d ${names[i]}`));
    tf.dispose([mean, variance, ...Object.values(d).filter((t): t is tf.Tensor => t instanceof tf.Tensor)]);
  });
});

describe('a backend with the fused forward kernel but no fused gradient kernel [cpu]', () => {
  // What a backend registering BatchNormTrain before BatchNormTrainGrad gets: the closed form in tf ops.
  let gradKernel: tf.KernelConfig | undefined;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    gradKernel = tf.getKernel(BatchNormTrainGrad, 'cpu');  // as registered (register.ts wraps the kernels)
    tf.unregisterKernel(BatchNormTrainGrad, 'cpu');
  });
  afterAll(() => {
    if (gradKernel != null) tf.registerKernel(gradKernel);
  });

  test.each(CASES.filter(c => !c.masked && !Array.isArray(c.axis)))('$name: first, second and third order as the reference', c => {
    const d = inputs(c);
    const got = higherOrder(ours(c.axis, null), d);
    const want = higherOrder(reference(d.axes, null), d);
    for (const key of Object.keys(want)) expectClose(got[key], want[key], TOLERANCE, `fallback ${c.name}: ${key}`);
    tf.dispose(Object.values(d).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
  });

  test.each(GHOST_CASES)('BatchNormTrain with $name, called directly: first, second and third order as the tf-ops ghost batches', c => {
    const d = inputs(c);
    const got = higherOrder(direct(d.axes, c.ghosts), d);
    const want = higherOrder(ghostReference(d.axes, c.ghosts), d);
    for (const key of Object.keys(want)) expectClose(got[key], want[key], TOLERANCE, `fallback ${c.name}: ${key}`);
    tf.dispose(Object.values(d).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
  });

  test('the forward still runs the fused kernel', async () => {
    const x = tf.randomNormal([4, 3]);
    const {kernelNames} = await tf.profile(() => tf.tidy(() => tf.grad((xi: tf.Tensor) => tf.sum(tf.square(batchNormTrain(xi, null, null).y)))(x)));
    expect(kernelNames).toContain(BatchNormTrain);
    expect(kernelNames).not.toContain(BatchNormTrainGrad);
    x.dispose();
  });
});

/**
 * The kernels called directly with engine().runKernel and every base input (as a graph executor
 * calling kernels by name would), without the ops' per-call save lists: their gradients save by the
 * registered defaults and must answer as the ops do — to third order for BatchNormTrain, second for
 * BatchNormTrainGrad and BatchNormInfer.
 */
/** The case the direct calls run (a channels-first rank-4 input). */
const DIRECT_CASE = CASES[0];

/** A kernel called with engine().runKernel, with axis and epsilon. */
function runDirect(kernel: string, inputs: tf.NamedTensorMap, axes: number[]): tf.Tensor | tf.Tensor[] {
  return tf.engine().runKernel(kernel, inputs, {axis: axes, epsilon: EPSILON} as unknown as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];
}

/** BatchNormTrain called directly: first, second and third order as the reference. */
function checkDirectTrain(label: string): void {
  const d = inputs(DIRECT_CASE);
  const got = higherOrder(direct(d.axes), d);
  const want = higherOrder(reference(d.axes, null), d);
  for (const key of Object.keys(want)) expectClose(got[key], want[key], TOLERANCE, `${label} direct: ${key}`);
  tf.dispose(Object.values(d).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
}

/**
 * BatchNormTrainGrad called directly: its gradients for dy, x and gamma as those of the op's
 * gradient. With renorm's r and d (constants of the forward): y = x̂·(r·γ) + d·γ + β, so the op's
 * gradient with γ' = r·γ gives dx, and dγ = r·dγ' + d·dβ; r and d, on the tape here, get zero.
 */
function checkDirectTrainGrad(label: string, renorm: boolean): void {
  const d = inputs(DIRECT_CASE);
  const zeros = tf.zeros([d.gamma.size]);
  const [r, dd] = renorm ? [tf.randomUniform([d.gamma.size], 0.7, 1.4, 'float32', 10), tf.randomUniform([d.gamma.size], -0.5, 0.5, 'float32', 11)] : [tf.ones([d.gamma.size]), tf.zeros([d.gamma.size])];
  // The op's side takes copies, so that only the direct call's r and d are differentiated.
  const [rConst, dConst] = [r, dd].map(t => tf.tensor(t.dataSync()));
  const [got, want] = [true, false].map(direct => tf.tidy(() => {
    // Σ wy·dx + Σ wm·dγ + Σ wv·dβ: the gradients of L = Σ dy·y, with dy = v.
    const firstOrder = (dy: tf.Tensor, x: tf.Tensor, gamma: tf.Tensor, ri: tf.Tensor, di: tf.Tensor) => {
      if (direct) {
        const variance = batchNormTrain(x, null, null, {axis: DIRECT_CASE.axis, epsilon: EPSILON}).variance;
        const correction: tf.NamedTensorMap = renorm ? {r: ri, d: di} : {};
        return runDirect(BatchNormTrainGrad, {dy, x, gamma, variance, dmean: zeros, dvariance: zeros, ...correction}, d.axes) as tf.Tensor[];
      }
      const [dx, dg, db] = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.mul(dy, ours(DIRECT_CASE.axis, null)(xi, gi, bi).y)))(
          [x, tf.mul(gamma, rConst), d.beta]);
      return [dx, tf.add(tf.mul(rConst, dg), tf.mul(dConst, db)), db];
    };
    return tf.grads((dy: tf.Tensor, x: tf.Tensor, gamma: tf.Tensor, ri: tf.Tensor, di: tf.Tensor) => {
      const [dx, dgamma, dbeta] = firstOrder(dy, x, gamma, ri, di);
      // Keeps r and d on the tape where the op does not take them.
      const tie = tf.mul(0, tf.add(tf.sum(ri), tf.sum(di)));
      return tf.addN([tf.sum(tf.mul(d.wy, dx)), tf.sum(tf.mul(d.wm, dgamma)), tf.sum(tf.mul(d.wv, dbeta)), tie]);
    })([d.v, d.x, d.gamma, r, dd]).map(t => t.dataSync());
  }));
  ['dy', 'x', 'gamma', 'r', 'd'].forEach((name, i) => expectClose(got[i], want[i], TOLERANCE, `${label} direct: d/d${name}`));
  tf.dispose([zeros, r, dd, rConst, dConst, ...Object.values(d).filter((t): t is tf.Tensor => t instanceof tf.Tensor)]);
}

/** BatchNormInfer called directly: the penalty's gradients as the op's. */
function checkDirectInfer(label: string): void {
  const d = inputs(DIRECT_CASE);
  const mean = tf.randomNormal([d.gamma.size], 1, 0.5, 'float32', 8);
  const variance = tf.add(tf.abs(tf.randomNormal([d.gamma.size], 1, 0.5, 'float32', 9)), 0.1);
  const implementations = [
    (x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => runDirect(BatchNormInfer, {x, mean: m, variance: v, gamma: g, beta: b}, d.axes) as tf.Tensor,
    (x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => batchNormInfer(x, m, v, g, b, {axis: DIRECT_CASE.axis, epsilon: EPSILON}),
  ];
  const [got, want] = implementations.map(f => tf.tidy(() => tf.grads((x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const gx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(d.wy, tf.square(f(xi, m, v, g, b)))))(x);
    return tf.sum(tf.square(gx));
  })([d.x, mean, variance, d.gamma, d.beta]).map(t => t.dataSync())));
  ['x', 'mean', 'variance', 'gamma', 'beta'].forEach((name, i) => expectClose(got[i], want[i], TOLERANCE, `${label} direct: d/d${name}`));
  tf.dispose([mean, variance, ...Object.values(d).filter((t): t is tf.Tensor => t instanceof tf.Tensor)]);
}

describeEachPath('the kernels called directly', (backend, path) => {
  test('BatchNormTrain: first, second and third order as the reference', () => checkDirectTrain(`${backend}/${path}`));

  // The layer never differentiates a ghost step's mean and variance outputs (they feed only the
  // moving statistics); called directly they are differentiated like any other output.
  test.each(GHOST_CASES)('BatchNormTrain with $name: first, second and third order as the tf-ops ghost batches', c => {
    const d = inputs(c);
    const got = higherOrder(direct(d.axes, c.ghosts), d);
    const want = higherOrder(ghostReference(d.axes, c.ghosts), d);
    for (const key of Object.keys(want)) expectClose(got[key], want[key], TOLERANCE, `${backend}/${path} direct ghosts: ${key}`);
    tf.dispose(Object.values(d).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
  });

  test.each([false, true])('BatchNormTrainGrad (renorm: %s): its gradients for dy, x, gamma (r, d) as those of the op\'s gradient',
      renorm => checkDirectTrainGrad(`${backend}/${path}`, renorm));

  test('BatchNormTrain with renorm: first, second and third order as the tf-ops normalization with γ·r and β + d·γ (r, d constant)', () => {
    const d = inputs(DIRECT_CASE);
    const renormInputs = {renormMean: tf.randomNormal([d.gamma.size], 2, 0.5, 'float32', 12), renormStddev: tf.randomUniform([d.gamma.size], 1, 2, 'float32', 13),
      rmax: tf.scalar(1.2), dmax: tf.scalar(0.3)};
    const directRenorm = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) =>
      runDirect(BatchNormTrain, {x, gamma, beta, ...renormInputs}, d.axes) as tf.Tensor[];
    // r and d at d.x, off the tape (every derivative below is taken there).
    const [r, dd] = tf.tidy(() => directRenorm(d.x, d.gamma, d.beta).slice(3).map(t => tf.tensor(t.dataSync())));
    expect(Array.from(r.dataSync()).some(v => Math.abs(v - 1) > 1e-3)).toBe(true);
    const got = higherOrder((x, gamma, beta) => {
      const [y, mean, variance] = directRenorm(x, gamma, beta);
      return {y, mean, variance};
    }, d);
    const want = higherOrder((x, gamma, beta) => reference(d.axes, null)(x, tf.mul(gamma, r), tf.add(beta, tf.mul(dd, gamma))), d);
    for (const key of Object.keys(want)) expectClose(got[key], want[key], TOLERANCE, `${backend}/${path} direct renorm: ${key}`);
    tf.dispose([r, dd, ...Object.values(renormInputs), ...Object.values(d).filter((t): t is tf.Tensor => t instanceof tf.Tensor)]);
  });

  test('BatchNormInfer: the penalty\'s gradients as the op\'s', () => checkDirectInfer(`${backend}/${path}`));
}, ['cpu', 'wasm'], ['fused']);

// Another backend's kernels registered under these names (here cpu's, as they are before register.ts
// wraps them) name nothing when called directly: their gradients save the registered defaults, the
// base interface's inputs.
describe('another backend\'s kernels under these names, called directly with the base inputs', () => {
  beforeAll(async () => {
    await tf.setBackend(cpuCopy('bn-other', cpuKernels));
  });
  afterAll(() => removeCpuCopies('bn-other'));

  test('BatchNormTrain: first, second and third order as the reference', () => checkDirectTrain('bn-other'));
  test('BatchNormTrainGrad: second order as the op\'s', () => checkDirectTrainGrad('bn-other', false));
  test('BatchNormInfer: the penalty\'s gradients as the op\'s', () => checkDirectInfer('bn-other'));
});
