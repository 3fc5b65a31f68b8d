/**
 * The per-channel arithmetic of the fused kernels, between their passes over full-size data: batch
 * statistics (means over ghost batches), Batch Renormalization's r and d, the normalization's
 * scale and offset, the gradient's coefficients (float64), and the moving-statistics updates
 * (float32, bit for bit the tf ops they replace).
 *
 * Per-group arrays are indexed ghost·C + c (groups.ts); per-channel ones c. gamma/beta are read
 * row-major whatever their shape (null: 1 and 0).
 */
import type {Groups} from './groups';

/** Renormalization's inputs: the pre-update renorm statistics and the clipping bounds (null: unbounded). */
export interface RenormInputs {
  renormMean: Float32Array;
  renormStddev: Float32Array;
  rmin: number | null;
  rmax: number | null;
  dmax: number | null;
}

/** r and d per channel (constants to the gradient). */
export interface Correction {
  r: Float64Array;
  d: Float64Array;
}

/** The batch mean and biased variance per channel: means over ghost batches of the groups' statistics. */
export function batchStatistics({mean, variance}: {mean: Float64Array; variance: Float64Array}, {channels, ghosts}: Groups):
    {mean: Float64Array; variance: Float64Array} {
  if (ghosts === 1) return {mean, variance};
  const average = (perGroup: Float64Array) => Float64Array.from({length: channels}, (_, c) => {
    let s = 0;
    for (let g = 0; g < ghosts; g++) s += perGroup[g * channels + c];
    return s / ghosts;
  });
  return {mean: average(mean), variance: average(variance)};
}

/**
 * Keras' r = clip(σ_B / s, rmin, rmax) and d = clip((μ_B − renorm_mean) / s, −dmax, dmax), with
 * σ_B = √(σ²_B + ε) and s = max(renorm_stddev, √ε), in float64 from the float64 batch statistics.
 */
export function renormCorrection(mean: Float64Array, variance: Float64Array, inputs: RenormInputs, epsilon: number): Correction {
  const {renormMean, renormStddev, rmin, rmax, dmax} = inputs;
  const channels = mean.length;
  const r = new Float64Array(channels);
  const d = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const s = Math.max(renormStddev[c], Math.sqrt(epsilon));
    let rc = Math.sqrt(variance[c] + epsilon) / s;
    let dc = (mean[c] - renormMean[c]) / s;
    if (rmin != null) rc = Math.max(rc, rmin);
    if (rmax != null) rc = Math.min(rc, rmax);
    if (dmax != null) dc = Math.min(Math.max(dc, -dmax), dmax);
    r[c] = rc;
    d[c] = dc;
  }
  return {r, d};
}

/**
 * Scale and offset of every group: y = (x − μ_g)·scale + offset with scale = γ·r/√(σ²_g + ε) and
 * offset = β + γ·d (r = 1, d = 0 without renorm). A group of equal values (σ²_g = 0) gets scale 0,
 * so y = offset exactly (NaN for an infinite scale, as IEEE says of 0·∞).
 */
export function trainCoefficients(variance: Float64Array, groups: Groups, gamma: Float32Array | null, beta: Float32Array | null,
                                  epsilon: number, correction: Correction | null): {scale: Float64Array; offset: Float64Array} {
  const {channels, ghosts} = groups;
  const scale = new Float64Array(ghosts * channels);
  const offset = new Float64Array(ghosts * channels);
  for (let c = 0; c < channels; c++) {
    const g = gamma == null ? 1 : gamma[c];
    const gr = correction == null ? g : g * correction.r[c];
    const b = beta == null ? 0 : beta[c];
    const o = correction == null ? b : b + g * correction.d[c];
    for (let i = c; i < ghosts * channels; i += channels) {
      const s = gr / Math.sqrt(variance[i] + epsilon);
      scale[i] = variance[i] === 0 ? 0 * s : s;
      offset[i] = o;
    }
  }
  return {scale, offset};
}

/** What the gradient kernel's coefficients come from (per group unless said otherwise). */
export interface GradientInputs {
  sumDy: Float64Array;
  sumDyXc: Float64Array;
  mean: Float64Array;
  variance: ArrayLike<number>;
  gamma: Float32Array | null;
  correction: Correction | null;
  /** Gradients arriving at the mean and variance outputs, per channel. */
  dmean: Float32Array;
  dvariance: Float32Array;
}

/**
 * dx = a·dy + b·x + k per group, the closed form
 *   dx = γ'·ρ·dy − γ'·ρ·Σdy/n − γ'·ρ³·(x−μ)·Σdy(x−μ)/n + dμ/n + 2·dσ²·(x−μ)/n,  ρ = 1/√(σ²+ε), γ' = γ·r
 * with n values per group and dμ, dσ² the gradients reaching the group's statistics (the outputs'
 * over k: the outputs are means over ghost batches); and per channel dγ = Σ_g ρ·r·Σdy(x−μ) + d·Σdy,
 * dβ = Σ_g Σdy.
 */
export function gradientCoefficients(inputs: GradientInputs, groups: Groups, epsilon: number):
    {a: Float64Array; b: Float64Array; k: Float64Array; dgamma: Float64Array; dbeta: Float64Array} {
  const {sumDy, sumDyXc, mean, variance, gamma, correction, dmean, dvariance} = inputs;
  const {channels, ghosts, count: n} = groups;
  const size = ghosts * channels;
  const [a, b, k] = [new Float64Array(size), new Float64Array(size), new Float64Array(size)];
  const dgamma = new Float64Array(channels);
  const dbeta = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const g = (gamma == null ? 1 : gamma[c]) * (correction == null ? 1 : correction.r[c]);
    const dm = dmean[c] / ghosts;
    const dv = dvariance[c] / ghosts;
    for (let i = c; i < size; i += channels) {
      const rho = 1 / Math.sqrt(variance[i] + epsilon);
      a[i] = g * rho;
      b[i] = -g * rho * rho * rho * sumDyXc[i] / n + 2 * dv / n;
      k[i] = -a[i] * sumDy[i] / n + dm / n - b[i] * mean[i];
      dgamma[c] += rho * sumDyXc[i];
      dbeta[c] += sumDy[i];
    }
    if (correction != null) dgamma[c] = correction.r[c] * dgamma[c] + correction.d[c] * dbeta[c];
  }
  return {a, b, k, dgamma, dbeta};
}

/**
 * out = old·momentum + value·(1 − momentum), in float32 exactly as tfjs's Multiply and Add kernels
 * compute it (each product and the sum rounded to float32; float64 products of float32 values are
 * exact, and rounding a float64 sum of two float32 values to float32 equals float32 addition).
 */
export function movingAverage(old: Float32Array, value: Float32Array, momentum: number, out: Float32Array): void {
  const m = Math.fround(momentum);
  const rest = Math.fround(1 - momentum);
  for (let c = 0; c < out.length; c++) out[c] = Math.fround(Math.fround(old[c] * m) + Math.fround(value[c] * rest));
}

/** σ_B = √(variance + ε) in float32, as tf.sqrt(tf.add(variance, ε)) gives it. */
export function stddevFloat32(variance: Float32Array, epsilon: number): Float32Array {
  const e = Math.fround(epsilon);
  return variance.map(v => Math.fround(Math.sqrt(Math.fround(v + e))));
}

/** max(stddev² − ε, 0) in float32, as tf.relu(tf.sub(tf.square(stddev), ε)) gives it (NaN stays NaN). */
export function varianceFromStddev(stddev: Float32Array, epsilon: number, out: Float32Array): void {
  const e = Math.fround(epsilon);
  for (let c = 0; c < out.length; c++) {
    const v = Math.fround(Math.fround(stddev[c] * stddev[c]) - e);
    out[c] = v < 0 ? 0 : v;
  }
}
