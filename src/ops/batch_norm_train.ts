/** The training-mode op: batchNormTrain(x, gamma, beta, {axis, epsilon, mask}) → {y, mean, variance}. */
import {broadcastTo, cast, engine, ones, reshape, Tensor, Tensor1D, tidy, zeros} from '@tensorflow/tfjs-core';
import {BatchNormTrain, BatchNormTrainAttrs, BatchNormTrainInputs} from '../kernel_names';
import {batchNormTrainComposite} from './batch_norm_composite';
import {implementationFor} from './dispatch';
import {stopGradient} from './moments';
import {AxisArg, CheckedArgs, checkCommon, checkMask, checkPerChannel} from './validate';

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

/** The fused kernel, with ones/zeros for a null gamma/beta. */
function fusedTrain(args: CheckedArgs, gamma: Tensor | null, beta: Tensor | null): BatchNormTrainResult {
  const perChannel = [args.channels];
  const attrs: BatchNormTrainAttrs = {axis: args.axes, epsilon: args.epsilon};
  const inputs: BatchNormTrainInputs = {
    x: args.x,
    gamma: gamma == null ? ones(perChannel) : reshape(gamma, perChannel),
    beta: beta == null ? zeros(perChannel) : reshape(beta, perChannel),
  };
  const [y, mean, variance] = engine().runKernel(BatchNormTrain, inputs as unknown as Record<string, Tensor>, attrs) as Tensor[];
  return {y, mean: mean as Tensor1D, variance: variance as Tensor1D};
}

/**
 * A Keras mask as one float32 weight per element of x: expanded at the last axis and broadcast. A
 * constant to the tape: the mask says which positions count, it is not differentiated (tf.grad
 * with respect to it fails with tfjs' "Cannot compute gradient" rather than giving a partial answer).
 * Exported for recalibration (deploy/population_moments.ts), which counts the positions it keeps.
 */
export function maskWeights(mask: Tensor, x: Tensor): Tensor {
  return stopGradient(() => broadcastTo(reshape(cast(mask, 'float32'), [...mask.shape, 1]), x.shape));
}

/**
 * Normalizes x with its own batch statistics: y = (x − mean)/√(variance + ε)·γ + β per channel.
 * gamma/beta may be null (scale 1, offset 0). Differentiable to any order, with a closed-form
 * gradient; which code runs on which backend is decided by dispatch.ts.
 */
export function batchNormTrain(
    x: Tensor, gamma: Tensor | null, beta: Tensor | null, options: BatchNormTrainOptions = {}): BatchNormTrainResult {
  const fn = 'batchNormTrain';
  const args = checkCommon(fn, x, options.axis ?? DEFAULT_AXIS, options.epsilon ?? DEFAULT_EPSILON);
  const g = checkPerChannel(fn, 'gamma', gamma, args.channels, true);
  const b = checkPerChannel(fn, 'beta', beta, args.channels, true);
  const mask = checkMask(fn, options.mask, args.x);
  const implementation = implementationFor(mask == null ? 'train' : 'masked', args.x.rank, args.axes);
  return tidy(() => {
    // Spread: tidy takes plain objects (an interface has no index signature).
    if (implementation === 'fused') return {...fusedTrain(args, g, b)};
    return {...batchNormTrainComposite(args.x, g, b, args, mask == null ? null : maskWeights(mask, args.x))};
  });
}
