/** The training-mode op: batchNormTrain(x, gamma, beta, {axis, epsilon}) → {y, mean, variance}. */
import {engine, getBackend, getKernel, ones, reshape, Tensor, Tensor1D, tidy, zeros} from '@tensorflow/tfjs-core';
import {BatchNormAttrs, BatchNormTrain} from '../kernel_names';
import {batchNormTrainComposite} from './batch_norm_composite';
import {axesAreAdjacent} from './channel_axes';
import {AxisArg, checkCommon, checkPerChannel} from './validate';

/** Options shared by batchNormTrain and batchNormInfer. */
export interface BatchNormOptions {
  /** Channel axis, or list of axes (negative counts from the end). Default -1 (channels-last). */
  axis?: AxisArg;
  /** Added to the variance before the reciprocal square root; must be > 0. Default 1e-3. */
  epsilon?: number;
}

/** Result of batchNormTrain: the output and the per-channel batch statistics (shape [channels]). */
export interface BatchNormTrainResult {
  y: Tensor;
  mean: Tensor1D;
  /** Biased batch variance: divided by the number of values per channel, not that minus one. */
  variance: Tensor1D;
}

/** Default options, the same as tf.layers.batchNormalization's. */
export const DEFAULT_AXIS = -1;
export const DEFAULT_EPSILON = 1e-3;

/** Whether the current backend has a fused kernel for `kernelName` that can handle these axes. */
export function hasFusedKernel(kernelName: string, axes: number[]): boolean {
  return axesAreAdjacent(axes) && getKernel(kernelName, getBackend()) != null;
}

/**
 * Normalizes x with its own batch statistics: y = (x − mean)/√(variance + ε)·γ + β per channel.
 * gamma/beta may be null (scale 1, offset 0). Differentiable with a closed-form gradient.
 */
export function batchNormTrain(
    x: Tensor, gamma: Tensor | null, beta: Tensor | null, options: BatchNormOptions = {}): BatchNormTrainResult {
  const fn = 'batchNormTrain';
  const args = checkCommon(fn, x, options.axis ?? DEFAULT_AXIS, options.epsilon ?? DEFAULT_EPSILON);
  const g = checkPerChannel(fn, 'gamma', gamma, args.channels, true);
  const b = checkPerChannel(fn, 'beta', beta, args.channels, true);
  if (!hasFusedKernel(BatchNormTrain, args.axes)) return batchNormTrainComposite(args.x, g, b, args);
  return tidy(() => {
    const perChannel = [args.channels];
    const attrs: BatchNormAttrs = {axis: args.axes, epsilon: args.epsilon};
    const inputs = {
      x: args.x,
      gamma: g == null ? ones(perChannel) : reshape(g, perChannel),
      beta: b == null ? zeros(perChannel) : reshape(b, perChannel),
    };
    const [y, mean, variance] = engine().runKernel(BatchNormTrain, inputs, attrs) as Tensor[];
    return {y, mean: mean as Tensor1D, variance: variance as Tensor1D};
  });
}
