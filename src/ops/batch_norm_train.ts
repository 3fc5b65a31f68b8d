/** The training-mode op: batchNormTrain(x, gamma, beta, {axis, epsilon, mask}) → {y, mean, variance}. */
import {Tensor, Tensor1D} from '@tensorflow/tfjs-core';
import {trainStep} from './train_step';
import {AxisArg, checkCommon, checkMask, checkPerChannel} from './validate';

export {maskWeights} from './mask';

/** Options shared by batchNormTrain and batchNormInfer. */
export interface BatchNormOptions {
  /** Channel axis, or list of axes (negative counts from the end). Default -1 (channels-last). */
  axis?: AxisArg;
  /** Added to the variance before the reciprocal square root; must be >= 2^-126 (see MIN_EPSILON). Default 1e-3. */
  epsilon?: number;
}

/** Options of batchNormTrain. */
export interface BatchNormTrainOptions extends BatchNormOptions {
  /**
   * A Keras mask: x's shape without its last axis, broadcast over that axis. Positions where it is
   * 0 (false) are left out of the batch statistics, as in Keras 3; every position is normalized.
   * Any dtype (bool, or 0/1 numbers); it is not differentiated.
   */
  mask?: Tensor | null;
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

/**
 * Normalizes x with its own batch statistics: y = (x − mean)/√(variance + ε)·γ + β per channel.
 * gamma/beta may be null (scale 1, offset 0) and may have any shape holding one value per channel
 * (row-major). Differentiable to any order, with a closed-form gradient; which code runs on which
 * backend is decided by dispatch.ts.
 */
export function batchNormTrain(
    x: Tensor, gamma: Tensor | null, beta: Tensor | null, options: BatchNormTrainOptions = {}): BatchNormTrainResult {
  const fn = 'batchNormTrain';
  const args = checkCommon(fn, x, options.axis ?? DEFAULT_AXIS, options.epsilon ?? DEFAULT_EPSILON);
  const g = checkPerChannel(fn, 'gamma', gamma, args.channels, true);
  const b = checkPerChannel(fn, 'beta', beta, args.channels, true);
  const mask = checkMask(fn, options.mask, args.x);
  const {y, mean, variance} = trainStep(args, g, b, {mask, fn});
  return {y, mean, variance};
}
