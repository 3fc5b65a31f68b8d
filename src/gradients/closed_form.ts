/**
 * The closed-form gradient of batch normalization, written once in tf ops and shared by every path
 * that has no fused gradient kernel: the composite training path (masked or not), the inference op
 * on every backend, and a backend whose fused forward kernel lacks the fused gradient kernel. Being
 * tf ops recorded on the tape, it is differentiable by autodiff: that is how second-order gradients
 * reach every non-fused path. The double backward of the fused gradient kernel is here too.
 *
 * Notation, per channel: xc = x − μ, r = 1/√(σ² + ε), x̂ = xc·r, s = γ·r, sums Σ over every position
 * of the channel. With mask weights w, W = Σw + 1e-7 (Keras), μ = Σw·x/W and σ² = Σw·xc²/W;
 * unmasked, w = 1 and W = N.
 *
 * y = x̂·γ + β with μ and σ² held fixed (inference) has the partial derivatives
 *   ∂/∂x = dy·s,  ∂/∂μ = −s·Σdy,  ∂/∂σ² = −½·s·r·Σdy·x̂,  ∂/∂γ = Σdy·x̂,  ∂/∂β = Σdy.
 * In training μ and σ² are functions of x (∂μ/∂x = w/W, ∂σ²/∂x = 2w·(xc − Σw·xc/W)/W); the chain
 * rule folds into
 *   dx = s·dy + w/W·(dmean − s·(Σdy + x̄·Σdy·x̂) + 2·x̃·dvariance),  dγ = Σdy·x̂,  dβ = Σdy,
 * with x̄ = x̂ − Σw·x̂/W and x̃ = xc − Σw·xc/W (x̂ and xc themselves when unmasked, where Σxc = 0),
 * and dmean, dvariance the gradients arriving at the mean and variance outputs. Written with x̂
 * rather than r³·xc, so nothing overflows float32 for a constant channel and a tiny ε.
 *
 * Tensors are in x's shape or the per-channel broadcast shape (BroadcastGeometry).
 */
import {add, div, mean, mul, neg, rsqrt, scalar, sub, sum, Tensor} from '@tensorflow/tfjs-core';
import type {BroadcastGeometry} from '../ops/channel_axes';

/** r = 1/√(σ² + ε), s = γ·r (r when there is no γ), x̂ = xc·r. */
function normalization(centered: Tensor, gamma: Tensor | null, variance: Tensor, epsilon: number) {
  const rstd = rsqrt(add(variance, scalar(epsilon)));
  return {rstd, scale: gamma == null ? rstd : mul(gamma, rstd), xhat: mul(centered, rstd)};
}

/** Gradients by name, each computed only when asked for (tfjs asks only for the inputs on the path). */
export type LazyGrads<Name extends string> = Record<Name, () => Tensor>;

/** Gradients of Σ y·dy for y = (x − μ)·γ/√(σ² + ε) + β with given statistics (the inference mode). */
export function inferenceGrads(dy: Tensor, centered: Tensor, gamma: Tensor | null, variance: Tensor,
                               {reduce}: BroadcastGeometry, epsilon: number): LazyGrads<'dx' | 'dmean' | 'dvariance' | 'dgamma' | 'dbeta'> {
  const {rstd, scale, xhat} = normalization(centered, gamma, variance, epsilon);
  const sumDy = () => sum(dy, reduce, true);
  const sumDyXhat = () => sum(mul(dy, xhat), reduce, true);
  return {
    dx: () => mul(dy, scale),
    dmean: () => neg(mul(sumDy(), scale)),
    dvariance: () => mul(mul(sumDyXhat(), scale), mul(rstd, scalar(-0.5))),
    dgamma: sumDyXhat,
    dbeta: sumDy,
  };
}

/** How the batch statistics were taken (see ops/moments.ts), and the gradients arriving at them. */
export interface TrainingStatistics {
  /** Mask weights broadcast to x's shape, or null (unmasked). */
  weights: Tensor | null;
  /** W per channel: N unmasked, Σw + 1e-7 masked. */
  count: Tensor | number;
  /** Gradients arriving at the mean and variance outputs (per channel), or null for none. */
  dmean?: Tensor | null;
  dvariance?: Tensor | null;
}

/** Gradients of Σ y·dy + Σ mean·dmean + Σ variance·dvariance in training mode (the batch statistics). */
export function trainingGrads(dy: Tensor, centered: Tensor, gamma: Tensor | null, variance: Tensor,
                              {reduce}: BroadcastGeometry, epsilon: number, statistics: TrainingStatistics):
    {dx: Tensor; dgamma: Tensor; dbeta: Tensor} {
  const {weights, count, dmean, dvariance} = statistics;
  const {scale, xhat} = normalization(centered, gamma, variance, epsilon);
  const sumDy = sum(dy, reduce, true);
  const sumDyXhat = sum(mul(dy, xhat), reduce, true);
  // With weights, Σw·xc = μ·1e-7 is not 0 (Keras' 1e-7 in W): ∂σ²/∂μ = −2·Σw·xc/W then matters (it
  // is amplified by r² for a small ε), and folds into centering x̂ and xc by their weighted means.
  const centeredByWeight = (t: Tensor) => (weights == null ? t : sub(t, div(sum(mul(weights, t), reduce, true), count)));
  // Everything that reaches x through μ and σ², before the ·w/W of ∂μ/∂x and ∂σ²/∂x.
  let throughStatistics = neg(mul(scale, add(sumDy, mul(centeredByWeight(xhat), sumDyXhat))));
  if (dmean != null) throughStatistics = add(throughStatistics, dmean);
  if (dvariance != null) throughStatistics = add(throughStatistics, mul(mul(centeredByWeight(centered), scalar(2)), dvariance));
  const perPosition = div(throughStatistics, count);
  const dx = add(mul(dy, scale), weights == null ? perPosition : mul(weights, perPosition));
  return {dx, dgamma: sumDyXhat, dbeta: sumDy};
}

/** Gradients arriving at the outputs of the fused gradient kernel (dx, dgamma, dbeta). */
export interface UpstreamOfGrad {
  ddx: Tensor;
  ddgamma: Tensor;
  ddbeta: Tensor;
}

/**
 * The double backward: the gradient of the unmasked trainingGrads with respect to its inputs dy, x,
 * γ, dmean and dvariance. μ and σ² are the statistics of x (the fused kernel recomputes μ and is
 * given σ² only to save a pass), so both count as functions of x. With upstream gradients g = ddx,
 * gγ = ddgamma, gβ = ddbeta and n = N:
 *   ∂/∂dmean = Σg/n,  ∂/∂dvariance = 2·Σg·xc/n,  ∂/∂γ = r·(Σg·dy − Σdy·Σg/n − Σdy·x̂·Σg·x̂/n)
 *   ∂/∂dy = s·(g − Σg/n − x̂·Σg·x̂/n) + gγ·x̂ + gβ
 *   ∂/∂x = P(r·(gγ·dy − s·(Σdy·x̂·g + Σg·x̂·dy)/n) + 2·dvariance·g/n + 2·xc·G/n),  P(z) = z − mean(z)
 * where P is the gradient of xc = x − mean(x) and G the gradient with respect to σ²:
 *   G = −½·r²·(s·(Σg·dy − Σg·Σdy/n) − 3·s·Σg·x̂·Σdy·x̂/n + gγ·Σdy·x̂),
 * which grows like ε^(−3/2) on a channel of equal values: as large as the true derivative, which
 * exceeds float32 there for ε below about 1e-26.
 */
export function trainingGradGrads(upstream: UpstreamOfGrad, dy: Tensor, centered: Tensor, gamma: Tensor | null, variance: Tensor,
                                  dvariance: Tensor, {reduce}: BroadcastGeometry, epsilon: number, n: number):
    LazyGrads<'dy' | 'x' | 'gamma' | 'dmean' | 'dvariance'> {
  const {ddx: g, ddgamma: gGamma, ddbeta: gBeta} = upstream;
  const {rstd, scale, xhat} = normalization(centered, gamma, variance, epsilon);
  const perN = (t: Tensor) => div(t, scalar(n));
  const sumG = sum(g, reduce, true);
  const sumGXhat = sum(mul(g, xhat), reduce, true);
  const sumDy = sum(dy, reduce, true);
  const sumDyXhat = sum(mul(dy, xhat), reduce, true);
  const sumGDy = () => sum(mul(g, dy), reduce, true);
  const byVariance = () => mul(mul(scalar(-0.5), mul(rstd, rstd)),
      add(sub(mul(scale, sub(sumGDy(), perN(mul(sumG, sumDy)))), perN(mul(scalar(3), mul(scale, mul(sumGXhat, sumDyXhat))))),
          mul(gGamma, sumDyXhat)));
  return {
    dmean: () => perN(sumG),
    dvariance: () => perN(mul(sum(mul(g, centered), reduce, true), scalar(2))),
    gamma: () => mul(rstd, sub(sub(sumGDy(), perN(mul(sumDy, sumG))), perN(mul(sumDyXhat, sumGXhat)))),
    dy: () => add(add(mul(scale, sub(sub(g, perN(sumG)), perN(mul(xhat, sumGXhat)))), mul(gGamma, xhat)), gBeta),
    x: () => {
      const throughCentered = add(add(mul(rstd, sub(mul(gGamma, dy), perN(mul(scale, add(mul(sumDyXhat, g), mul(sumGXhat, dy)))))),
          perN(mul(mul(dvariance, scalar(2)), g))), perN(mul(mul(centered, scalar(2)), byVariance())));
      return sub(throughCentered, mean(throughCentered, reduce, true));
    },
  };
}
