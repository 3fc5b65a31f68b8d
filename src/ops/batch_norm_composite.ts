/**
 * Batch normalization as a composite of tf ops, for backends without a fused kernel (webgl,
 * webgpu, tensorflow from tfjs-node) and for channel axes that are not adjacent. Same meaning and
 * same closed-form gradient (through tf.customGrad) as the fused kernels.
 */
import {add, batchNorm, customGrad, div, getBackend, getKernel, GradSaveFunc, mean, mul, reshape, rsqrt, ones, scalar, slice, square, sub, sum, Tensor, Tensor1D, tidy, zeros} from '@tensorflow/tfjs-core';
import {BatchNormInfer} from '../kernel_names';
import {broadcastShape, reductionAxes} from './channel_axes';
import type {BatchNormTrainResult} from './batch_norm_train';

/** Validated geometry the composite functions need. */
export interface CompositeArgs {
  axes: number[];
  channels: number;
  epsilon: number;
}

/** Training-mode batch normalization from tf ops; gamma/beta may be null. */
export function batchNormTrainComposite(
    x: Tensor, gamma: Tensor | null, beta: Tensor | null, {axes, channels, epsilon}: CompositeArgs): BatchNormTrainResult {
  return tidy(() => {
    const shape = broadcastShape(x.shape, axes);
    const reduce = reductionAxes(x.rank, axes);
    const n = x.size / channels;
    // Shift by one sample per channel so float32 sums keep the spread under a large offset.
    const shift = slice(x, x.shape.map(() => 0), shape);
    const shiftedMean = mean(sub(x, shift), reduce, true);
    const centered = sub(sub(x, shift), shiftedMean);
    const variance = mean(square(centered), reduce, true);
    const rstd = rsqrt(add(variance, scalar(epsilon)));

    // y's gradient in closed form; the statistics above stay differentiable by autodiff for
    // callers who differentiate through the mean and variance outputs.
    const normalize = customGrad((...args: Array<Tensor | GradSaveFunc>) => {
      // args: x (its value enters through `centered`), gamma, beta, save.
      const [g, b] = args.slice(1, 3) as Tensor[];
      const save = args[3] as GradSaveFunc;
      const xhat = mul(centered, rstd);
      save([xhat, mul(g, rstd)]);
      return {
        value: add(mul(xhat, g), b),
        gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
          const grad = dy as Tensor;
          const [xh, scale] = saved;
          const sumDy = sum(grad, reduce, true);
          const sumDyXhat = sum(mul(grad, xh), reduce, true);
          const dx = mul(scale, sub(grad, div(add(sumDy, mul(xh, sumDyXhat)), scalar(n))));
          return [dx, sumDyXhat, sumDy];
        },
      };
    });
    const g = gamma == null ? ones(shape) : reshape(gamma, shape);
    const b = beta == null ? zeros(shape) : reshape(beta, shape);
    const y = normalize(x, g, b);
    return {
      y,
      mean: reshape(add(shift, shiftedMean), [channels]) as Tensor1D,
      variance: reshape(variance, [channels]) as Tensor1D,
    };
  });
}

/**
 * Inference-mode batch normalization from tf ops with given statistics; gamma/beta may be null.
 * On backends without this package's kernels (webgl, webgpu, tensorflow) and rank <= 4 it is the
 * backend's own FusedBatchNorm kernel, which broadcasts correctly there: one kernel rounds the same
 * however the backend stored its inputs (webgl's packed and unpacked programs round a chain of
 * elementwise ops differently, so a reloaded model would not predict bit for bit the same). cpu and
 * wasm reach this function only for non-adjacent channel axes, and their FusedBatchNorm kernels
 * broadcast along trailing axes only (tfjs #1106), so they get the elementwise chain.
 */
export function batchNormInferComposite(
    x: Tensor, movingMean: Tensor, movingVariance: Tensor, gamma: Tensor | null, beta: Tensor | null,
    {axes, epsilon}: CompositeArgs): Tensor {
  return tidy(() => {
    const shape = broadcastShape(x.shape, axes);
    const perChannel = (t: Tensor) => reshape(t, shape);
    if (x.rank <= 4 && getKernel(BatchNormInfer, getBackend()) == null) {
      return batchNorm(x, perChannel(movingMean), perChannel(movingVariance), beta == null ? undefined : perChannel(beta),
                       gamma == null ? undefined : perChannel(gamma), epsilon);
    }
    let scale = rsqrt(add(perChannel(movingVariance), scalar(epsilon)));
    if (gamma != null) scale = mul(scale, perChannel(gamma));
    const y = mul(sub(x, perChannel(movingMean)), scale);
    return beta == null ? y : add(y, perChannel(beta));
  });
}
