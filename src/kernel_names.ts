/**
 * Names, inputs and attributes of the kernels this package registers, in tfjs-core's kernel_names
 * shape. The names are namespaced so they never collide with a kernel that tfjs (or another plugin)
 * registers. Any backend may register kernels under these names (cpu and wasm here; webgl and
 * webgpu in their own modules): src/ops/dispatch.ts picks a registered kernel up by its name.
 *
 * Per-channel inputs (gamma, beta, mean, variance, dmean, dvariance) are float32 tensors of shape
 * [channels]; the ops pass ones/zeros where the caller gave null gamma/beta.
 */
import type {NamedAttrMap, NamedTensorInfoMap} from '@tensorflow/tfjs-core';

/** Attributes every kernel takes. */
export interface BatchNormAttrs extends NamedAttrMap {
  /** Channel axes: sorted, non-negative and adjacent, so x is [outer, channels, inner] in memory. */
  axis: number[];
  /** Added to the variance before the reciprocal square root. */
  epsilon: number;
}

/** Training-mode forward. Outputs y (x's shape), mean and biased variance ([channels]). */
export const BatchNormTrain = 'TfjsBatchNorm_BatchNormTrain';
export type BatchNormTrainInputs = Pick<NamedTensorInfoMap, 'x' | 'gamma' | 'beta'>;
export type BatchNormTrainAttrs = BatchNormAttrs;

/**
 * Closed-form backward of BatchNormTrain: the gradients of Σ y·dy + Σ mean·dmean + Σ variance·dvariance.
 * `variance` is BatchNormTrain's variance output (x's biased variance, given to save a pass; the
 * registered gradient of this kernel treats it as that function of x); the mean is recomputed
 * from x (in float64 on cpu/wasm). Outputs dx (x's shape), dgamma and dbeta ([channels]).
 */
export const BatchNormTrainGrad = 'TfjsBatchNorm_BatchNormTrainGrad';
export type BatchNormTrainGradInputs = Pick<NamedTensorInfoMap, 'dy' | 'x' | 'gamma' | 'variance' | 'dmean' | 'dvariance'>;
export type BatchNormTrainGradAttrs = BatchNormAttrs;

/** Inference-mode forward with given statistics. Output y (x's shape). */
export const BatchNormInfer = 'TfjsBatchNorm_BatchNormInfer';
export type BatchNormInferInputs = Pick<NamedTensorInfoMap, 'x' | 'mean' | 'variance' | 'gamma' | 'beta'>;
export type BatchNormInferAttrs = BatchNormAttrs;
