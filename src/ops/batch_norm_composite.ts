/**
 * Batch normalization from tf ops, for every case the dispatch table (dispatch.ts) gives no fused
 * kernel: backends without one (webgl, webgpu and tensorflow today), channel axes that are not
 * adjacent, and masks. Statistics come from moments.ts; the output's gradient is the closed form of
 * gradients/closed_form.ts through tf.customGrad, whose gradient function saves only tensors the
 * tape knows (x's centered values, the variance, gamma), so its own tf ops are differentiable again
 * by autodiff: second-order gradients are exact on these paths.
 */
import {add, batchNorm, customGrad, GradSaveFunc, mul, reshape, rsqrt, scalar, sub, Tensor, Tensor1D} from '@tensorflow/tfjs-core';
import {inferenceGrads, trainingGrads} from '../gradients/closed_form';
import {broadcastGeometry, BroadcastGeometry} from './channel_axes';
import type {BatchNormTrainResult} from './batch_norm_train';
import {compositeMoments, Moments} from './moments';

/** Validated geometry the composite functions need. */
export interface CompositeArgs {
  axes: number[];
  channels: number;
  epsilon: number;
}

/** gamma and beta (each possibly null) as the inputs of a custom-gradient function, and back. */
function optionalInputs(gamma: Tensor | null, beta: Tensor | null) {
  return {
    tensors: [gamma, beta].filter((t): t is Tensor => t != null),
    /** Picks gamma and beta out of the function's arguments after its fixed ones. */
    pick(rest: Tensor[]): [Tensor | null, Tensor | null] {
      return [gamma == null ? null : rest[0], beta == null ? null : rest[gamma == null ? 0 : 1]];
    },
    /** The gradients to return for the inputs that exist. */
    grads(dgamma: () => Tensor, dbeta: () => Tensor): Tensor[] {
      return [...(gamma == null ? [] : [dgamma()]), ...(beta == null ? [] : [dbeta()])];
    },
  };
}

/** y = centered·γ/√(σ² + ε) + β, from per-channel tensors in the broadcast shape. */
function affine(centered: Tensor, variance: Tensor, gamma: Tensor | null, beta: Tensor | null, epsilon: number): Tensor {
  const rstd = rsqrt(add(variance, scalar(epsilon)));
  const y = mul(centered, gamma == null ? rstd : mul(gamma, rstd));
  return beta == null ? y : add(y, beta);
}

/** The training-mode output from given moments, with trainingGrads as its gradient for x, γ and β. */
function normalizeWithBatchStatistics(x: Tensor, gamma: Tensor | null, beta: Tensor | null, moments: Moments,
                                      geometry: BroadcastGeometry, epsilon: number): Tensor {
  const params = optionalInputs(gamma, beta);
  const {weights, count} = moments;
  const normalize = customGrad((...args: Array<Tensor | GradSaveFunc>) => {
    const save = args[args.length - 1] as GradSaveFunc;
    const [g, b] = params.pick(args.slice(1, -1) as Tensor[]);
    // Saved: tensors the tape can trace back to x and gamma, so the gradient is differentiable.
    save([moments.centered, moments.variance, ...(g == null ? [] : [g]), ...(weights == null ? [] : [weights]),
      ...(typeof count === 'number' ? [] : [count])]);
    return {
      value: affine(moments.centered, moments.variance, g, b, epsilon),
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
        const [centered, variance, ...rest] = saved;
        const savedGamma = g == null ? null : rest.shift() as Tensor;
        const savedWeights = weights == null ? null : rest.shift() as Tensor;
        const savedCount = typeof count === 'number' ? count : rest.shift() as Tensor;
        const grads = trainingGrads(dy as Tensor, centered, savedGamma, variance, geometry, epsilon,
            {weights: savedWeights, count: savedCount});
        return [grads.dx, ...params.grads(() => grads.dgamma, () => grads.dbeta)];
      },
    };
  });
  return normalize(x, ...params.tensors);
}

/**
 * Training-mode batch normalization from tf ops; gamma/beta may be null. With `weights` (a 0/1 mask
 * broadcast to x's shape) the statistics leave masked positions out, as Keras 3 does; every position
 * is normalized. The mean and variance outputs are differentiated by autodiff of moments.ts.
 */
export function batchNormTrainComposite(x: Tensor, gamma: Tensor | null, beta: Tensor | null, {axes, channels, epsilon}: CompositeArgs,
                                        weights: Tensor | null = null): BatchNormTrainResult {
  const geometry = broadcastGeometry(x.shape, axes);
  const perChannel = (t: Tensor | null) => (t == null ? null : reshape(t, geometry.perChannelShape));
  const moments = compositeMoments(x, geometry, weights);
  return {
    y: normalizeWithBatchStatistics(x, perChannel(gamma), perChannel(beta), moments, geometry, epsilon),
    mean: reshape(moments.mean, [channels]) as Tensor1D,
    variance: reshape(moments.variance, [channels]) as Tensor1D,
  };
}

/** How the inference-mode output is computed: the backend's own FusedBatchNorm kernel, or tf ops. */
export type InferenceForward = 'backend' | 'composite';

/**
 * Inference-mode batch normalization with given statistics; gamma/beta may be null. 'backend' runs
 * the backend's own FusedBatchNorm kernel (tf.batchNorm, rank <= 4) with [1, …, C, …]-shaped
 * statistics: on webgl one kernel rounds the same however the backend stored its inputs (its packed
 * and unpacked programs round a chain of elementwise ops differently, so a reloaded model would
 * not predict bit for bit the same). 'composite' is the elementwise chain. Either way the gradient
 * is inferenceGrads (tf.batchNorm's own gradient handles rank-1 statistics only).
 */
export function batchNormInferComposite(x: Tensor, mean: Tensor, variance: Tensor, gamma: Tensor | null, beta: Tensor | null,
                                        {axes, epsilon}: CompositeArgs, forward: InferenceForward = 'composite'): Tensor {
  const geometry = broadcastGeometry(x.shape, axes);
  const perChannel = (t: Tensor) => reshape(t, geometry.perChannelShape);
  const params = optionalInputs(gamma == null ? null : perChannel(gamma), beta == null ? null : perChannel(beta));
  const normalize = customGrad((...args: Array<Tensor | GradSaveFunc>) => {
    const save = args[args.length - 1] as GradSaveFunc;
    const [xs, m, v, ...rest] = args.slice(0, -1) as Tensor[];
    const [g, b] = params.pick(rest);
    save([xs, m, v, ...(g == null ? [] : [g])]);
    return {
      value: forward === 'backend' ? batchNorm(xs, m, v, b ?? undefined, g ?? undefined, epsilon) : affine(sub(xs, m), v, g, b, epsilon),
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
        const [savedX, savedMean, savedVariance, savedGamma] = saved;
        const grads = inferenceGrads(dy as Tensor, sub(savedX, savedMean), savedGamma ?? null, savedVariance, geometry, epsilon);
        return [grads.dx(), grads.dmean(), grads.dvariance(), ...params.grads(grads.dgamma, grads.dbeta)];
      },
    };
  });
  return normalize(x, perChannel(mean), perChannel(variance), ...params.tensors);
}
