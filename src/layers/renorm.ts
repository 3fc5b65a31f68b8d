/**
 * Batch Renormalization (Ioffe 2017) exactly as Keras 3.14 (and Keras 2) computes it. In training,
 * with batch mean μ_B and biased variance σ²_B, σ_B = √(σ²_B + ε) and s = max(renorm_stddev, √ε):
 *   r = clip(σ_B / s, rmin, rmax),  d = clip((μ_B − renorm_mean) / s, −dmax, dmax)
 * from the statistics *before* this step's update, with no gradient through r and d; then
 *   y = x̂·(r·γ) + (d·γ + β),  x̂ = (x − μ_B)/σ_B
 * which is plain batch normalization with γ' = r·γ and β' = d·γ + β, so the fused op and its
 * closed-form gradient do the work. Then renorm_mean/renorm_stddev move toward μ_B/σ_B with
 * renormMomentum, moving_mean/moving_stddev with momentum, and moving_variance = max(moving_stddev² − ε, 0).
 * Inference is unchanged (moving_mean, moving_variance).
 */
import {add, maximum, minimum, mul, neg, relu, reshape, sqrt, square, sub, div, Tensor, tidy, scalar} from '@tensorflow/tfjs-core';
import type {LayerVariable} from '@tensorflow/tfjs-layers';
import type {Initializer} from '@tensorflow/tfjs-layers/dist/initializers';
import {updateMovingAverage} from './moving_statistics';
import {boundAt, RenormClipping} from './renorm_clipping';
import {withoutGradient} from './stop_gradient';

/** Renorm's extra non-trainable weights, after the usual four and in Keras' order. */
export const RENORM_WEIGHT_NAMES = ['moving_stddev', 'renorm_mean', 'renorm_stddev'] as const;
/** The step counter of a clipping schedule (a scalar; only when renormClipping has a ramp). */
export const RENORM_STEP_WEIGHT_NAME = 'renorm_step';

/** The layer's renorm weights. */
export interface RenormState {
  movingStddev: LayerVariable;
  renormMean: LayerVariable;
  renormStddev: LayerVariable;
  /** Training steps taken (float32, exact to 2^24); null without a schedule. */
  step: LayerVariable | null;
}

/** Renorm's settings, as the layer holds them. */
export interface RenormSettings {
  clipping: RenormClipping;
  renormMomentum: number;
  momentum: number;
  epsilon: number;
}

/**
 * The initializer of moving_stddev and renorm_stddev: √ of the moving-variance initializer's values
 * (Keras). Only `apply` is needed: Layer.addWeight calls nothing else, and it is never serialized.
 */
export function sqrtInitializer(variance: Initializer): Initializer {
  return {apply: (shape: number[], dtype?: 'float32') => tidy(() => sqrt(variance.apply(shape, dtype)))} as unknown as Initializer;
}

/**
 * r and d for this step, per channel, from the batch statistics and the pre-update renorm weights,
 * as constants (no gradient flows back through them or through the statistics they come from).
 * `moments` computes the batch mean and biased variance; it runs off the gradient tape too.
 */
export function renormCorrection(moments: () => {mean: Tensor; variance: Tensor}, state: RenormState,
                                 {clipping, epsilon}: RenormSettings): {r: Tensor; d: Tensor} {
  const [r, d] = withoutGradient(() => {
    const {mean, variance} = moments();
    const perChannel = [mean.size];
    const s = maximum(reshape(state.renormStddev.read(), perChannel), Math.sqrt(epsilon));
    let r = div(sqrt(add(variance, epsilon)), s);
    let d = div(sub(mean, reshape(state.renormMean.read(), perChannel)), s);
    const step = state.step?.read() ?? null;
    const [rmin, rmax, dmax] = [clipping.rmin, clipping.rmax, clipping.dmax].map(bound => boundAt(bound, step));
    if (rmin != null) r = maximum(r, rmin);
    if (rmax != null) r = minimum(r, rmax);
    if (dmax != null) d = minimum(maximum(d, typeof dmax === 'number' ? -dmax : neg(dmax)), dmax);
    return [r, d];
  });
  return {r, d};
}

/** γ' = r·γ and β' = d·γ + β (γ = 1 without scale, β = 0 without center): Keras' _compose_transforms. */
export function composeCorrection({r, d}: {r: Tensor; d: Tensor}, gamma: Tensor | null, beta: Tensor | null): {gamma: Tensor; beta: Tensor} {
  const perChannel = [r.size];
  const g = gamma == null ? null : reshape(gamma, perChannel);
  const offset = g == null ? d : mul(d, g);
  return {gamma: g == null ? r : mul(r, g), beta: beta == null ? offset : add(offset, reshape(beta, perChannel))};
}

/**
 * The training-step updates, from this step's batch mean and biased variance (per channel):
 * renorm_mean, renorm_stddev (renormMomentum); moving_mean, moving_stddev (momentum);
 * moving_variance = max(moving_stddev² − ε, 0); and the step counter, when there is one.
 */
export function updateRenormStatistics(mean: Tensor, variance: Tensor, state: RenormState, movingMean: LayerVariable,
                                       movingVariance: LayerVariable, {renormMomentum, momentum, epsilon}: RenormSettings): void {
  const stddev = sqrt(add(variance, epsilon));
  updateMovingAverage(state.renormMean, mean, renormMomentum);
  updateMovingAverage(state.renormStddev, stddev, renormMomentum);
  updateMovingAverage(movingMean, mean, momentum);
  const movingStddev = updateMovingAverage(state.movingStddev, stddev, momentum);
  // relu: rounding can take stddev² below ε.
  movingVariance.write(relu(sub(square(movingStddev), epsilon)));
  state.step?.write(add(state.step.read(), scalar(1)));
}
