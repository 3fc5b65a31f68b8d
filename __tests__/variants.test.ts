/**
 * Batch Renormalization and ghost batches through the layer, against the float64 reference written
 * from their definitions (support/reference_variants.ts): the output, r and d through it, every
 * weight after two training steps, the gradients for x, gamma and beta (with r and d held
 * constant), and second-order gradients; the reference's own gradients against finite differences
 * of its forward.
 *
 * Every case runs on every path (support/backends.ts): 'fused' (the training kernel does renorm,
 * ghost batches and the updates itself, for adjacent channel axes), 'base' (the kernels through
 * their base interface, as a GPU backend's kernels without the extensions: renorm through corrected
 * γ and β, ghost batches through a view — transposed for channels-last — and updates in tf ops),
 * and 'composite' (tf ops); cases with non-adjacent axes (axis lists) or masks take tf ops on every path.
 *
 * Tolerance: 1e-4 in |got − want|/(1 + |want|) against float64, the project's bar; the largest
 * error measured over these cases was 2.3e-6 (second order against central differences of the
 * float64 reference's penalty, h = 1e-5; first order below 1e-6) on cpu and wasm, every path (the
 * suite prints it), a margin of over 40×. Reference vs finite differences (float64, h = 1e-5): 1e-6;
 * measured ≤ 5e-10.
 */
import * as tf from '@tensorflow/tfjs';
import {describeEachPath} from './support/backends';
import {expectClose, maxRelativeError} from './support/golden';
import {refMovingUpdate, refNumericGradient} from './support/reference';
import {refRenormUpdate, refVariantGrad, refVariantTrain, RefVariantOptions} from './support/reference_variants';
import {MOMENTUM, setUpVariant, VariantCase, VariantSetup, weightsByName} from './support/variant_cases';

const TOLERANCE = 1e-4;
const FD_TOLERANCE = 1e-6;

// Bounds that bind in these cases: some r at rmin and at rmax, some d at ±dmax (checked by hand on the reference).
const binding = {rmin: 1, rmax: 1.1, dmax: 0.15};
const CASES: VariantCase[] = [
  {name: 'renorm, dense [6,5], unclipped', shape: [6, 5], axis: -1, renorm: {clipping: {}, renormMomentum: 0.8}},
  {name: 'renorm, channels-last [4,3,3,5], clipping binding', shape: [4, 3, 3, 5], axis: -1, renorm: {clipping: binding, renormMomentum: 0.8}},
  {name: 'renorm, channels-first [4,5,3,3], scale false', shape: [4, 5, 3, 3], axis: 1, scale: false, renorm: {clipping: {rmax: 1.4}, renormMomentum: 0.9}},
  {name: 'renorm, rank 5 [3,2,2,2,4], center false', shape: [3, 2, 2, 2, 4], axis: -1, center: false, renorm: {clipping: {dmax: 0.2}, renormMomentum: 0.8}},
  {name: 'renorm, axis [1,3] (not adjacent) [3,4,2,3]', shape: [3, 4, 2, 3], axis: [1, 3], renorm: {clipping: binding, renormMomentum: 0.8}},
  {name: 'renorm, masked [4,5,3]', shape: [4, 5, 3], axis: -1, masked: true, renorm: {clipping: {rmin: 1.1}, renormMomentum: 0.8}},
  {name: 'ghost, dense [8,5], 2 per ghost batch', shape: [8, 5], axis: -1, virtualBatchSize: 2},
  {name: 'ghost, channels-last [6,3,3,4], 3 per ghost batch (transposed to fused)', shape: [6, 3, 3, 4], axis: -1, virtualBatchSize: 3},
  {name: 'ghost, one ghost batch (virtualBatchSize = batch size) [4,3,2]', shape: [4, 3, 2], axis: -1, virtualBatchSize: 4},
  {name: 'ghost, channels-first [6,4,3,3], 2 per ghost batch (fused)', shape: [6, 4, 3, 3], axis: 1, virtualBatchSize: 2},
  {name: 'ghost, rank 5 [4,2,2,3,3], scale and center false', shape: [4, 2, 2, 3, 3], axis: -1, virtualBatchSize: 2, scale: false, center: false},
  {name: 'ghost, axis [1,3] [4,3,2,2] (composite)', shape: [4, 3, 2, 2], axis: [1, 3], virtualBatchSize: 2},
  {name: 'ghost, masked [6,4,3]', shape: [6, 4, 3], axis: -1, virtualBatchSize: 3, masked: true},
  {name: 'ghost + renorm, channels-last [6,3,3,4]', shape: [6, 3, 3, 4], axis: -1, virtualBatchSize: 2, renorm: {clipping: binding, renormMomentum: 0.8}},
  {name: 'ghost + renorm, channels-first [4,3,2,2]', shape: [4, 3, 2, 2], axis: 1, virtualBatchSize: 2, renorm: {clipping: {}, renormMomentum: 0.8}},
  {name: 'ghost + renorm, masked [6,4,3]', shape: [6, 4, 3], axis: -1, virtualBatchSize: 2, masked: true, renorm: {clipping: {rmax: 1.3}, renormMomentum: 0.8}},
  {name: 'ghost, axes [2,3] [4,2,3,2], 2 per ghost batch (transposed to fused)', shape: [4, 2, 3, 2], axis: [2, 3], virtualBatchSize: 2},
];

/** Cases for second-order gradients: each layout of the fused kernels (one block, merged ghost channels, per-sample blocks). */
const SECOND_ORDER = CASES.filter(c => [0, 1, 6, 7, 9, 13].includes(CASES.indexOf(c)));

function options(c: VariantCase, setup: VariantSetup, state = setup.state): RefVariantOptions {
  return {virtualBatchSize: c.virtualBatchSize ?? null, renorm: c.renorm == null || state == null ? null : {state, clipping: c.renorm.clipping}};
}

function apply(setup: VariantSetup, x: tf.Tensor): tf.Tensor {
  return setup.layer.apply(x, {training: true, ...(setup.mask ? {mask: setup.mask} : {})}) as tf.Tensor;
}

/** Upstream gradient for Σ y·dy: fixed, non-uniform values. */
function upstream(size: number): Float64Array {
  return Float64Array.from({length: size}, (_, i) => Math.fround(Math.sin(0.37 * i + 0.2) + 0.1));
}

describeEachPath('Batch Renormalization and ghost batches vs the float64 reference', (backend, path) => {
  let worst = 0;
  afterAll(() => console.log(`${backend}/${path}: largest relative error against float64: ${worst.toExponential(2)}`));
  const check = (got: ArrayLike<number>, want: ArrayLike<number>, what: string) => {
    worst = Math.max(worst, maxRelativeError(got, want));
    expectClose(got, want, TOLERANCE, `${backend}/${path}/${what}`);
  };

  test.each(CASES.map(c => [c.name, c] as [string, VariantCase]))('%s: y and every weight over two training steps', (_, c) => {
    const setup = setUpVariant(c);
    // A second batch with other statistics, so that step 2 starts from the state step 1 left.
    const x2 = tf.tidy(() => setup.x.mul(1.5).add(-1));
    const before = tf.memory().numTensors;
    let state = setup.state;
    let movingMean = setup.movingMean;
    let movingVariance = setup.movingVariance;
    for (const [step, x] of [setup.x, x2].entries()) {
      const problem = {...setup.problem, x: Float64Array.from(x.dataSync())};
      const want = refVariantTrain(problem, options(c, setup, state));
      const y = apply(setup, x);
      check(y.dataSync(), want.y, `${c.name} step ${step} y`);
      y.dispose();
      const w = weightsByName(setup.layer);
      if (c.renorm != null && state != null) {
        const next = refRenormUpdate(state, want.mean, want.variance, MOMENTUM, c.renorm.renormMomentum, problem.epsilon);
        for (const name of ['moving_stddev', 'renorm_mean', 'renorm_stddev'] as const) {
          const key = {moving_stddev: 'movingStddev', renorm_mean: 'renormMean', renorm_stddev: 'renormStddev'}[name] as 'movingStddev';
          check(w[name], next[key], `${c.name} step ${step} ${name}`);
        }
        check(w.moving_mean, next.movingMean, `${c.name} step ${step} moving_mean`);
        check(w.moving_variance, next.movingVariance, `${c.name} step ${step} moving_variance (from moving_stddev)`);
        state = next;
      } else {
        movingMean = refMovingUpdate(movingMean, want.mean, MOMENTUM);
        movingVariance = refMovingUpdate(movingVariance, want.variance, MOMENTUM);
        check(w.moving_mean, movingMean, `${c.name} step ${step} moving_mean`);
        check(w.moving_variance, movingVariance, `${c.name} step ${step} moving_variance`);
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    x2.dispose();
    setup.layer.dispose();
    setup.dispose();
  });

  test.each(CASES.map(c => [c.name, c] as [string, VariantCase]))('%s: gradients for x, gamma, beta (r and d constant)', (_, c) => {
    const setup = setUpVariant(c, 2);
    const {layer, problem, x} = setup;
    const want = refVariantTrain(problem, options(c, setup));
    const dyValues = upstream(x.size);
    const dy = tf.tensor(Float32Array.from(dyValues), c.shape);
    const params = layer.trainableWeights.map(w => w.read());
    const before = tf.memory().numTensors;
    const grads = tf.grads(() => apply(setup, x))([x, ...params], dy);
    const ref = refVariantGrad(problem, dyValues, want.r, want.d, c.virtualBatchSize ?? null);
    check(grads[0].dataSync(), ref.dx, `${c.name} dx`);
    const names = [...(c.scale ?? true ? ['dgamma'] : []), ...(c.center ?? true ? ['dbeta'] : [])] as Array<'dgamma' | 'dbeta'>;
    names.forEach((name, i) => check(grads[i + 1].dataSync(), ref[name], `${c.name} ${name}`));
    tf.dispose(grads);
    expect(tf.memory().numTensors).toBe(before);
    dy.dispose();
    layer.dispose();
    setup.dispose();
  });

  // Second order through the loss L = Σ w·y (a constant upstream gradient) and L = Σ w·y² (dy = 2w·y
  // depends on x and γ, so the double backward's paths through dy count too): the gradient for x and
  // γ of the penalty Σ v·∂L/∂x + Σ wγ·∂L/∂γ + Σ wβ·∂L/∂β (wγ, wβ bring in the paths from dγ and dβ),
  // against central differences of the float64 reference's penalty, with r and d held constant at
  // their values for the unperturbed problem (computed once, from the state before the step).
  test.each(SECOND_ORDER.flatMap(c => ([1, 2] as const).map(power => [c.name, power === 1 ? 'Σ w·y' : 'Σ w·y²', c, power] as const)))(
      '%s: second order of L = %s (penalty Σ v·dx + Σ wγ·dγ + Σ wβ·dβ, for x and gamma)', (_, lossName, c, power) => {
    const setup = setUpVariant(c, 3 + power);
    const {layer, problem, x} = setup;
    const wValues = upstream(x.size);
    const vValues = Float64Array.from({length: x.size}, (_, i) => Math.fround(Math.cos(0.23 * i) - 0.2));
    const [w, v] = [wValues, vValues].map(values => tf.tensor(Float32Array.from(values), c.shape));
    const [gamma, beta] = layer.trainableWeights.map(weight => weight.read());
    const wgValues = Float64Array.from({length: gamma.size}, (_, i) => Math.fround(0.7 - 0.3 * i));
    const wbValues = Float64Array.from({length: gamma.size}, (_, i) => Math.fround(0.4 + 0.2 * i));
    const [wg, wb] = [wgValues, wbValues].map(values => tf.tensor(Float32Array.from(values), gamma.shape));
    const loss = (y: tf.Tensor) => tf.mul(power === 1 ? y : tf.square(y), w).sum() as tf.Scalar;
    const before = tf.memory().numTensors;
    // The layer reads gamma and beta itself: passing the same tensors differentiates with respect to them.
    const penalty = (xi: tf.Tensor, gi: tf.Tensor) => {
      const [gx, gg, gb] = tf.grads((...xs: tf.Tensor[]) => loss(apply(setup, xs[0])))([xi, gi, beta]);
      return tf.addN([tf.sum(tf.mul(gx, v)), tf.sum(tf.mul(gg, wg)), tf.sum(tf.mul(gb, wb))]) as tf.Scalar;
    };
    const [dx2, dgamma2] = tf.grads(penalty)([x, gamma]);
    const {r, d} = refVariantTrain(problem, options(c, setup));
    const vbs = c.virtualBatchSize ?? null;
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((sum, g, i) => sum + g * b[i], 0);
    const refPenalty = (p: typeof problem) => {
      const y = refVariantTrain(p, {virtualBatchSize: vbs, fixedCorrection: {r, d}}).y;
      const g = refVariantGrad(p, y.map((yi, i) => (power === 1 ? wValues[i] : 2 * wValues[i] * yi)), r, d, vbs);
      return dot(g.dx, vValues) + dot(g.dgamma, wgValues) + dot(g.dbeta, wbValues);
    };
    check(dx2.dataSync(), refNumericGradient(values => refPenalty({...problem, x: values}), problem.x), `${c.name} second order of ${lossName}, x`);
    check(dgamma2.dataSync(), refNumericGradient(values => refPenalty({...problem, gamma: values}), problem.gamma as Float64Array),
        `${c.name} second order of ${lossName}, gamma`);
    tf.dispose([dx2, dgamma2]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([w, v, wg, wb]);
    layer.dispose();
    setup.dispose();
  });
}, undefined, ['fused', 'base', 'composite']);

describe('the float64 reference: gradients vs finite differences of its forward (r and d held constant)', () => {
  test.each(CASES.map(c => [c.name, c] as [string, VariantCase]))('%s', (_, c) => {
    const setup = setUpVariant(c, 3);
    const {problem} = setup;
    const base = refVariantTrain(problem, options(c, setup));
    const fixed = {...options(c, setup), fixedCorrection: {r: base.r, d: base.d}};
    const dy = upstream(problem.x.length);
    const loss = (p: typeof problem) => refVariantTrain(p, fixed).y.reduce((s, y, i) => s + y * dy[i], 0);
    const ref = refVariantGrad(problem, dy, base.r, base.d, c.virtualBatchSize ?? null);
    expectClose(ref.dx, refNumericGradient(v => loss({...problem, x: v}), problem.x), FD_TOLERANCE, `${c.name} dx`);
    if (problem.gamma != null) {
      expectClose(ref.dgamma, refNumericGradient(v => loss({...problem, gamma: v}), problem.gamma), FD_TOLERANCE, `${c.name} dgamma`);
    }
    if (problem.beta != null) {
      expectClose(ref.dbeta, refNumericGradient(v => loss({...problem, beta: v}), problem.beta), FD_TOLERANCE, `${c.name} dbeta`);
    }
    setup.layer.dispose();
    setup.dispose();
  });
});
