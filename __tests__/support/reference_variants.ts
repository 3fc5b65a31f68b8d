/**
 * Float64 references for the two batch-normalization variants, written from their definitions
 * (issue 11) on top of reference.ts, element by element and without the implementation's tricks
 * (no reshape into a ghost view, no folding r and d into γ and β):
 *
 * Ghost batches (Keras 2 `virtual_batch_size` V): with k = B / V, ghost batch j holds samples
 * j, j + k, j + 2k, …; each is normalized with its own statistics; the batch statistics reported
 * (and moved toward) are the mean over ghost batches of their means and biased variances.
 *
 * Batch Renormalization (Keras 3.14), with batch mean μ and biased variance σ² (per channel; the
 * ghost averages above with ghost batches), σ_B = √(σ² + ε), s = max(renorm_stddev, √ε):
 *   r = clip(σ_B / s, rmin, rmax), d = clip((μ − renorm_mean) / s, −dmax, dmax)  (constants)
 *   y = x̂·r·γ + d·γ + β, x̂ normalized with the (ghost) batch statistics
 *   renorm_mean ← ·m_r + μ·(1 − m_r), renorm_stddev ← ·m_r + σ_B·(1 − m_r),
 *   moving_mean ← ·m + μ·(1 − m), moving_stddev ← ·m + σ_B·(1 − m), moving_variance = max(moving_stddev² − ε, 0).
 */
import {RefProblem, refChannelCount, refChannelOf, refMoments, refTrainGrad} from './reference';

/** Clipping bounds (null/absent: unbounded). */
export interface RefClipping {
  rmin?: number | null;
  rmax?: number | null;
  dmax?: number | null;
}

/** Renorm's per-channel state before a step. */
export interface RefRenormState {
  movingMean: ArrayLike<number>;
  movingStddev: ArrayLike<number>;
  renormMean: ArrayLike<number>;
  renormStddev: ArrayLike<number>;
}

/** What one training step computes. */
export interface RefVariantResult {
  y: Float64Array;
  /** Batch mean and biased variance per channel (means over ghost batches). */
  mean: Float64Array;
  variance: Float64Array;
  /** r and d (all 1 and 0 without renorm). */
  r: ArrayLike<number>;
  d: ArrayLike<number>;
}

/** Elements per sample: every dimension but the batch one. */
function sampleSize(shape: number[]): number {
  return shape.slice(1).reduce((n, d) => n * d, 1);
}

/** The samples of ghost batch j (j, j + k, …), as index lists; k = B / V ghost batches of V samples. */
export function refGhostSamples(batch: number, virtualBatchSize: number): number[][] {
  const k = batch / virtualBatchSize;
  return Array.from({length: k}, (_, j) => Array.from({length: virtualBatchSize}, (_, i) => j + i * k));
}

/** The sub-problem of one ghost batch: those samples in order, same channel axes (batch axis 0 is never one). */
function ghostProblem(p: RefProblem, samples: number[]): RefProblem {
  const size = sampleSize(p.shape);
  const pick = (values: ArrayLike<number>) => Float64Array.from(samples.flatMap(b => Array.from({length: size}, (_, e) => values[b * size + e])));
  return {...p, shape: [samples.length, ...p.shape.slice(1)], x: pick(p.x), weights: p.weights == null ? null : pick(p.weights)};
}

/** Writes a ghost batch's per-element values back at its samples' places. */
function scatter(into: Float64Array, from: ArrayLike<number>, samples: number[], size: number): void {
  samples.forEach((b, i) => { for (let e = 0; e < size; e++) into[b * size + e] = from[i * size + e]; });
}

function clip(value: number, lo: number | null | undefined, hi: number | null | undefined): number {
  return Math.min(Math.max(value, lo ?? -Infinity), hi ?? Infinity);
}

/** The ghost batches of a problem (one, the whole batch, when virtualBatchSize is null). */
function ghosts(p: RefProblem, virtualBatchSize: number | null): number[][] {
  return virtualBatchSize == null ? [Array.from({length: p.shape[0]}, (_, b) => b)] : refGhostSamples(p.shape[0], virtualBatchSize);
}

/** Batch statistics: per ghost batch, then averaged over them. */
function averagedMoments(p: RefProblem, groups: number[][]): {mean: Float64Array; variance: Float64Array} {
  const channels = refChannelCount(p.shape, p.axes);
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  for (const samples of groups) {
    const m = refMoments(ghostProblem(p, samples));
    for (let c = 0; c < channels; c++) {
      mean[c] += m.mean[c] / groups.length;
      variance[c] += m.variance[c] / groups.length;
    }
  }
  return {mean, variance};
}

/** r and d from the batch statistics and the renorm state before the step. */
export function refRenormCorrection(mean: ArrayLike<number>, variance: ArrayLike<number>, state: RefRenormState,
                                    clipping: RefClipping, epsilon: number): {r: Float64Array; d: Float64Array} {
  const r = new Float64Array(mean.length);
  const d = new Float64Array(mean.length);
  for (let c = 0; c < mean.length; c++) {
    const s = Math.max(state.renormStddev[c], Math.sqrt(epsilon));
    r[c] = clip(Math.sqrt(variance[c] + epsilon) / s, clipping.rmin, clipping.rmax);
    d[c] = clip((mean[c] - state.renormMean[c]) / s, clipping.dmax == null ? null : -clipping.dmax, clipping.dmax);
  }
  return {r, d};
}

/** Which variant refVariantTrain computes. */
export interface RefVariantOptions {
  /** Ghost batches of this many samples; null/absent: none. */
  virtualBatchSize?: number | null;
  /** Batch Renormalization from this state and clipping; null/absent: plain (r = 1, d = 0). */
  renorm?: {state: RefRenormState; clipping: RefClipping} | null;
  /** r and d given rather than computed (finite differences of the forward with r and d held constant). */
  fixedCorrection?: {r: ArrayLike<number>; d: ArrayLike<number>};
}

/** One training-mode forward step with ghost batches (virtualBatchSize) and/or renorm (state given). */
export function refVariantTrain(p: RefProblem, options: RefVariantOptions): RefVariantResult {
  const channels = refChannelCount(p.shape, p.axes);
  const groups = ghosts(p, options.virtualBatchSize ?? null);
  const {mean, variance} = averagedMoments(p, groups);
  const {r, d} = options.fixedCorrection ?? (options.renorm == null ?
      {r: new Float64Array(channels).fill(1), d: new Float64Array(channels)} :
      refRenormCorrection(mean, variance, options.renorm.state, options.renorm.clipping, p.epsilon));
  const y = new Float64Array(p.x.length);
  const size = sampleSize(p.shape);
  for (const samples of groups) {
    const ghost = ghostProblem(p, samples);
    const m = refMoments(ghost);
    const channelOf = refChannelOf(ghost.shape, ghost.axes);
    const out = new Float64Array(ghost.x.length);
    for (let i = 0; i < out.length; i++) {
      const c = channelOf[i];
      const xhat = (ghost.x[i] - m.mean[c]) / Math.sqrt(m.variance[c] + p.epsilon);
      const g = p.gamma == null ? 1 : p.gamma[c];
      const b = p.beta == null ? 0 : p.beta[c];
      out[i] = xhat * r[c] * g + d[c] * g + b;
    }
    scatter(y, out, samples, size);
  }
  return {y, mean, variance, r, d};
}

/**
 * Gradients of Σ y·dy for refVariantTrain with r and d held constant (no gradient through them):
 * per ghost batch, y = x̂·(rγ) + (dγ + β) is plain batch normalization with γ' = rγ, β' = dγ + β, so
 * dx is reference.ts's training gradient with γ', and dγ = r·Σdy·x̂ + d·Σdy, dβ = Σdy, summed over
 * ghost batches.
 */
export function refVariantGrad(p: RefProblem, dy: ArrayLike<number>, r: ArrayLike<number>, d: ArrayLike<number>,
                               virtualBatchSize: number | null): {dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array} {
  const channels = refChannelCount(p.shape, p.axes);
  const size = sampleSize(p.shape);
  const dx = new Float64Array(p.x.length);
  const dgamma = new Float64Array(channels);
  const dbeta = new Float64Array(channels);
  for (const samples of ghosts(p, virtualBatchSize)) {
    const ghost = ghostProblem(p, samples);
    const gammaPrime = Float64Array.from({length: channels}, (_, c) => r[c] * (p.gamma == null ? 1 : p.gamma[c]));
    const dyGhost = ghostProblem({...p, x: dy}, samples).x;
    const grads = refTrainGrad({...ghost, gamma: gammaPrime}, dyGhost);
    scatter(dx, grads.dx, samples, size);
    for (let c = 0; c < channels; c++) {
      // grads.dgamma is Σdy·x̂ (the gradient for γ'); grads.dbeta is Σdy.
      dgamma[c] += r[c] * grads.dgamma[c] + d[c] * grads.dbeta[c];
      dbeta[c] += grads.dbeta[c];
    }
  }
  return {dx, dgamma, dbeta};
}

/** The renorm state after a step with batch statistics (mean, variance), in float64. */
export function refRenormUpdate(state: RefRenormState, mean: ArrayLike<number>, variance: ArrayLike<number>,
                                momentum: number, renormMomentum: number, epsilon: number): RefRenormState & {movingVariance: Float64Array} {
  const n = mean.length;
  const stddev = Float64Array.from({length: n}, (_, c) => Math.sqrt(variance[c] + epsilon));
  const move = (old: ArrayLike<number>, value: ArrayLike<number>, m: number) => Float64Array.from({length: n}, (_, c) => old[c] * m + value[c] * (1 - m));
  const movingStddev = move(state.movingStddev, stddev, momentum);
  return {
    renormMean: move(state.renormMean, mean, renormMomentum),
    renormStddev: move(state.renormStddev, stddev, renormMomentum),
    movingMean: move(state.movingMean, mean, momentum),
    movingStddev,
    movingVariance: Float64Array.from(movingStddev, s => Math.max(s * s - epsilon, 0)),
  };
}
