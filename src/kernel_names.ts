/**
 * Names and attribute types of the kernels this package registers. The names are namespaced so
 * they can never collide with a kernel that tfjs (or another plugin) registers.
 */
import type {NamedAttrMap} from '@tensorflow/tfjs-core';

/** Training-mode forward: inputs x, gamma, beta; outputs y, mean, variance (biased). */
export const BatchNormTrain = 'TfjsBatchNorm_BatchNormTrain';
/** Closed-form backward of BatchNormTrain: inputs dy, x, gamma, mean, variance, dmean, dvariance; outputs dx, dgamma, dbeta. */
export const BatchNormTrainGrad = 'TfjsBatchNorm_BatchNormTrainGrad';
/** Inference-mode forward with given statistics: inputs x, mean, variance, gamma, beta; output y. */
export const BatchNormInfer = 'TfjsBatchNorm_BatchNormInfer';

/** Attributes shared by all three kernels. */
export interface BatchNormAttrs extends NamedAttrMap {
  /** Channel axes: sorted, non-negative and adjacent, so x is [outer, channels, inner] in memory. */
  axis: number[];
  /** Added to the variance before the reciprocal square root. */
  epsilon: number;
}
