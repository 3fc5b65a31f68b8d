/**
 * The float64 reference for every numeric test: batch normalization written out element by element
 * in plain JS numbers (float64), straight from the formulas, with no tfjs and no cleverness (no
 * shifted sums, no folding), so that it is easy to check by reading. Inputs are taken as given
 * (callers pass float32-rounded values when comparing with a float32 implementation).
 *
 * Geometry: x is row-major with shape `shape`; `axes` are the channel axes (sorted, non-negative,
 * adjacent or not); channel c of an element is its row-major index over the channel axes.
 * Optional `weights` (one per element of x, 0 or 1 for a mask) weight the statistics as Keras 3's
 * masked `_moments`: mean = Σw·x / (Σw + 1e-7), variance = Σw·(x − mean)² / (Σw + 1e-7).
 */

/** Keras' backend epsilon, added to the sum of mask weights (only when weights are given). */
export const KERAS_BACKEND_EPSILON = 1e-7;

/** One batch-normalization problem in float64. */
export interface RefProblem {
  shape: number[];
  /** Channel axes, sorted and non-negative. */
  axes: number[];
  x: ArrayLike<number>;
  /** Per channel; null or absent means 1. */
  gamma?: ArrayLike<number> | null;
  /** Per channel; null or absent means 0. */
  beta?: ArrayLike<number> | null;
  epsilon: number;
  /** One weight per element of x (a mask broadcast to x's shape); absent means unmasked. */
  weights?: ArrayLike<number> | null;
}

/** Training-mode forward: the output and the per-channel batch statistics. */
export interface RefTrainResult {
  y: Float64Array;
  mean: Float64Array;
  /** Biased (divided by N, or by Σw + 1e-7 when weighted). */
  variance: Float64Array;
}

/** Gradients of Σ y·dy + Σ mean·dmean + Σ variance·dvariance. */
export interface RefTrainGrads {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

/** Gradients of Σ y·dy for the inference-mode output, for every input. */
export interface RefInferGrads {
  dx: Float64Array;
  dmean: Float64Array;
  dvariance: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

/** Number of channels: the product of the channel dimensions. */
export function refChannelCount(shape: number[], axes: number[]): number {
  return axes.reduce((n, a) => n * shape[a], 1);
}

/** The channel index of every element of x (row-major over the channel axes). */
export function refChannelOf(shape: number[], axes: number[]): Int32Array {
  const size = shape.reduce((n, d) => n * d, 1);
  const result = new Int32Array(size);
  const index = shape.map(() => 0);
  for (let i = 0; i < size; i++) {
    let c = 0;
    for (const a of axes) c = c * shape[a] + index[a];
    result[i] = c;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return result;
}

function param(values: ArrayLike<number> | null | undefined, c: number, fallback: number): number {
  return values == null ? fallback : values[c];
}

/** Per-channel Σw (N when unweighted, Σw + 1e-7 when weighted) and the weight of each element. */
function weightsOf(p: RefProblem, channelOf: Int32Array, channels: number): {w: (i: number) => number; total: Float64Array} {
  const total = new Float64Array(channels);
  const w = p.weights == null ? () => 1 : (i: number) => (p.weights as ArrayLike<number>)[i];
  for (let i = 0; i < channelOf.length; i++) total[channelOf[i]] += w(i);
  if (p.weights != null) for (let c = 0; c < channels; c++) total[c] += KERAS_BACKEND_EPSILON;
  return {w, total};
}

/** Batch mean and biased variance per channel (weighted when `weights` is given). */
export function refMoments(p: RefProblem): {mean: Float64Array; variance: Float64Array} {
  const channels = refChannelCount(p.shape, p.axes);
  const channelOf = refChannelOf(p.shape, p.axes);
  const {w, total} = weightsOf(p, channelOf, channels);
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  for (let i = 0; i < channelOf.length; i++) mean[channelOf[i]] += w(i) * p.x[i];
  for (let c = 0; c < channels; c++) mean[c] /= total[c];
  for (let i = 0; i < channelOf.length; i++) {
    const d = p.x[i] - mean[channelOf[i]];
    variance[channelOf[i]] += w(i) * d * d;
  }
  for (let c = 0; c < channels; c++) variance[c] /= total[c];
  return {mean, variance};
}

/** y = (x − mean)/√(variance + ε)·γ + β with given per-channel statistics. */
export function refInfer(p: RefProblem, mean: ArrayLike<number>, variance: ArrayLike<number>): Float64Array {
  const channelOf = refChannelOf(p.shape, p.axes);
  const y = new Float64Array(channelOf.length);
  for (let i = 0; i < y.length; i++) {
    const c = channelOf[i];
    y[i] = (p.x[i] - mean[c]) / Math.sqrt(variance[c] + p.epsilon) * param(p.gamma, c, 1) + param(p.beta, c, 0);
  }
  return y;
}

/** Training-mode forward: normalizes with the batch statistics. */
export function refTrain(p: RefProblem): RefTrainResult {
  const {mean, variance} = refMoments(p);
  return {y: refInfer(p, mean, variance), mean, variance};
}

/**
 * Gradients of L = Σ y·dy + Σ mean·dmean + Σ variance·dvariance for the training-mode forward,
 * by the chain rule through the (weighted) moments, term by term:
 *   ∂L/∂var_c  = dvariance_c + Σ dy·γ·(x − μ)·(−½)(var + ε)^(−3/2)
 *   ∂L/∂μ_c    = dmean_c − Σ dy·γ/√(var + ε) + ∂L/∂var_c · (−2 Σ w·(x − μ) / W)
 *   ∂L/∂x_i    = dy_i·γ/√(var + ε) + ∂L/∂μ_c · w_i / W + ∂L/∂var_c · 2 w_i (x_i − μ) / W
 * with W = Σw (+ 1e-7 when weighted). dmean/dvariance absent means zero.
 */
export function refTrainGrad(p: RefProblem, dy: ArrayLike<number>, dmean?: ArrayLike<number> | null,
                             dvariance?: ArrayLike<number> | null): RefTrainGrads {
  const channels = refChannelCount(p.shape, p.axes);
  const channelOf = refChannelOf(p.shape, p.axes);
  const {w, total} = weightsOf(p, channelOf, channels);
  const {mean, variance} = refMoments(p);
  const dVar = new Float64Array(channels);
  const dMu = new Float64Array(channels);
  const sumWXc = new Float64Array(channels);
  const dgamma = new Float64Array(channels);
  const dbeta = new Float64Array(channels);
  for (let i = 0; i < channelOf.length; i++) {
    const c = channelOf[i];
    const xc = p.x[i] - mean[c];
    const rstd = 1 / Math.sqrt(variance[c] + p.epsilon);
    const g = param(p.gamma, c, 1);
    dVar[c] += dy[i] * g * xc * -0.5 * rstd * rstd * rstd;
    dMu[c] -= dy[i] * g * rstd;
    sumWXc[c] += w(i) * xc;
    dgamma[c] += dy[i] * xc * rstd;
    dbeta[c] += dy[i];
  }
  for (let c = 0; c < channels; c++) {
    dVar[c] += param(dvariance, c, 0);
    dMu[c] += param(dmean, c, 0) + dVar[c] * (-2 * sumWXc[c] / total[c]);
  }
  const dx = new Float64Array(channelOf.length);
  for (let i = 0; i < dx.length; i++) {
    const c = channelOf[i];
    const rstd = 1 / Math.sqrt(variance[c] + p.epsilon);
    dx[i] = dy[i] * param(p.gamma, c, 1) * rstd + dMu[c] * w(i) / total[c] + dVar[c] * 2 * w(i) * (p.x[i] - mean[c]) / total[c];
  }
  return {dx, dgamma, dbeta};
}

/** Gradients of Σ y·dy for the inference-mode output y = (x − mean)/√(variance + ε)·γ + β. */
export function refInferGrad(p: RefProblem, mean: ArrayLike<number>, variance: ArrayLike<number>,
                             dy: ArrayLike<number>): RefInferGrads {
  const channels = refChannelCount(p.shape, p.axes);
  const channelOf = refChannelOf(p.shape, p.axes);
  const dx = new Float64Array(channelOf.length);
  const dmean = new Float64Array(channels);
  const dvariance = new Float64Array(channels);
  const dgamma = new Float64Array(channels);
  const dbeta = new Float64Array(channels);
  for (let i = 0; i < dx.length; i++) {
    const c = channelOf[i];
    const rstd = 1 / Math.sqrt(variance[c] + p.epsilon);
    const g = param(p.gamma, c, 1);
    const xc = p.x[i] - mean[c];
    dx[i] = dy[i] * g * rstd;
    dmean[c] -= dy[i] * g * rstd;
    dvariance[c] += dy[i] * g * xc * -0.5 * rstd * rstd * rstd;
    dgamma[c] += dy[i] * xc * rstd;
    dbeta[c] += dy[i];
  }
  return {dx, dmean, dvariance, dgamma, dbeta};
}

/**
 * The moving-statistics update exactly as tfjs computes it in float32 today:
 * fround(fround(moving·fround(m)) + fround(batch·fround(1 − m))), element by element.
 */
export function refMovingUpdateFloat32(moving: ArrayLike<number>, batch: ArrayLike<number>, momentum: number): Float32Array {
  const m = Math.fround(momentum);
  const oneMinus = Math.fround(1 - momentum);
  return Float32Array.from({length: moving.length},
      (_, i) => Math.fround(Math.fround(Math.fround(moving[i]) * m) + Math.fround(Math.fround(batch[i]) * oneMinus)));
}

/** The moving-statistics update in float64: moving·m + batch·(1 − m). */
export function refMovingUpdate(moving: ArrayLike<number>, batch: ArrayLike<number>, momentum: number): Float64Array {
  return Float64Array.from({length: moving.length}, (_, i) => moving[i] * momentum + batch[i] * (1 - momentum));
}

/**
 * Central finite differences of a float64 scalar function of a vector: the tool second-order tests
 * use on the reference's own first-order gradients (float64 throughout, so h = 1e-5 leaves errors
 * near 1e-9 on well-scaled problems).
 */
export function refNumericGradient(f: (v: Float64Array) => number, at: ArrayLike<number>, h = 1e-5): Float64Array {
  const v = Float64Array.from(at);
  const grad = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i];
    v[i] = keep + h;
    const up = f(v);
    v[i] = keep - h;
    const down = f(v);
    v[i] = keep;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}
