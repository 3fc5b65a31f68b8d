/**
 * Batch Renormalization (Ioffe 2017, as Keras 3.14) and the moving-statistics updates in tf ops, for
 * the training steps whose kernel does not do them itself (dispatch.ts, modes 'renorm' and
 * 'movingUpdate'; the fused kernels compute the same in kernels/coefficients.ts). With batch mean
 * μ_B and biased variance σ²_B, σ_B = √(σ²_B + ε) and s = max(renorm_stddev, √ε):
 *   r = clip(σ_B / s, rmin, rmax),  d = clip((μ_B − renorm_mean) / s, −dmax, dmax)
 * from the statistics *before* this step's update, with no gradient through r and d; then
 *   y = x̂·(r·γ) + (d·γ + β)
 * which is plain batch normalization with γ' = r·γ and β' = d·γ + β. The updates:
 *   moving ← moving·momentum + batch·(1 − momentum) (plain), or renorm_mean, renorm_stddev
 *   (renormMomentum), moving_mean, moving_stddev (momentum) toward μ_B, σ_B and
 *   moving_variance = max(moving_stddev² − ε, 0).
 * All of it runs off the gradient tape (stop_gradient.ts): the corrections are constants and the
 * updates assignments, and tfjs then saves nothing for a gradient (no Identity kernels).
 */
import {add, div, maximum, minimum, mul, neg, relu, reshape, sqrt, square, sub, Tensor} from '@tensorflow/tfjs-core';
import {withoutGradient} from './stop_gradient';

/** A clipping bound: a number, a scalar tensor (a schedule's value at this step), or null (unbounded). */
export type Bound = number | Tensor | null;

/** What Batch Renormalization takes: the renorm statistics before the step, the bounds, renormMomentum. */
export interface RenormInputs {
  renormMean: Tensor;
  renormStddev: Tensor;
  rmin: Bound;
  rmax: Bound;
  dmax: Bound;
  renormMomentum: number;
}

/** The moving statistics before the step and their momentum; movingStddev with renorm. */
export interface MovingInputs {
  mean: Tensor;
  variance: Tensor;
  momentum: number;
  /** Renorm's moving_stddev (moving_variance is then derived from it). */
  stddev?: Tensor | null;
}

/** The statistics after the step, each in the shape of the one it replaces. */
export interface UpdatedStatistics {
  movingMean: Tensor;
  movingVariance: Tensor;
  /** With renorm. */
  movingStddev?: Tensor;
  renormMean?: Tensor;
  renormStddev?: Tensor;
}

/** r and d per channel ([channels]), as constants, from the batch mean and biased variance ([channels]). */
export function renormCorrection(moments: () => {mean: Tensor; variance: Tensor}, inputs: RenormInputs, epsilon: number): {r: Tensor; d: Tensor} {
  const [r, d] = withoutGradient(() => {
    const {mean, variance} = moments();
    const perChannel = [mean.size];
    const s = maximum(reshape(inputs.renormStddev, perChannel), Math.sqrt(epsilon));
    let r = div(sqrt(add(variance, epsilon)), s);
    let d = div(sub(mean, reshape(inputs.renormMean, perChannel)), s);
    const {rmin, rmax, dmax} = inputs;
    if (rmin != null) r = maximum(r, rmin);
    if (rmax != null) r = minimum(r, rmax);
    if (dmax != null) d = minimum(maximum(d, typeof dmax === 'number' ? -dmax : neg(dmax)), dmax);
    return [r, d];
  });
  return {r, d};
}

/** γ' = r·γ and β' = d·γ + β ([channels]; γ = 1 without scale, β = 0 without center): Keras' _compose_transforms. */
export function composeCorrection({r, d}: {r: Tensor; d: Tensor}, gamma: Tensor | null, beta: Tensor | null): {gamma: Tensor; beta: Tensor} {
  const perChannel = [r.size];
  const g = gamma == null ? null : reshape(gamma, perChannel);
  const offset = g == null ? d : mul(d, g);
  return {gamma: g == null ? r : mul(r, g), beta: beta == null ? offset : add(offset, reshape(beta, perChannel))};
}

/** old·momentum + value·(1 − momentum), in old's shape (value holds one number per channel). */
function movingAverage(old: Tensor, value: Tensor, momentum: number): Tensor {
  return add(mul(old, momentum), mul(reshape(value, old.shape), 1 - momentum));
}

/** The moving statistics (and renorm's, with `renorm`) after a step with this batch mean and variance ([channels]). */
export function updatedStatistics(mean: Tensor, variance: Tensor, moving: MovingInputs, renorm: RenormInputs | null,
                                  epsilon: number): UpdatedStatistics {
  if (renorm == null) {
    const [movingMean, movingVariance] = withoutGradient(() =>
      [movingAverage(moving.mean, mean, moving.momentum), movingAverage(moving.variance, variance, moving.momentum)]);
    return {movingMean, movingVariance};
  }
  const [movingMean, movingVariance, movingStddev, renormMean, renormStddev] = withoutGradient(() => {
    const stddev = sqrt(add(variance, epsilon));
    const newStddev = movingAverage(moving.stddev as Tensor, stddev, moving.momentum);
    return [
      movingAverage(moving.mean, mean, moving.momentum),
      // relu: rounding can take stddev² below ε.
      relu(sub(square(newStddev), epsilon)),
      newStddev,
      movingAverage(renorm.renormMean, mean, renorm.renormMomentum),
      movingAverage(renorm.renormStddev, stddev, renorm.renormMomentum),
    ];
  });
  return {movingMean, movingVariance, movingStddev, renormMean, renormStddev};
}
