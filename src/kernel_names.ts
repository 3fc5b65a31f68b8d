/**
 * Names, inputs and attributes of the kernels this package registers, in tfjs-core's kernel_names
 * shape. The names are namespaced so they never collide with a kernel that tfjs (or another plugin)
 * registers. Any backend may register kernels under these names (cpu and wasm here; webgl and
 * webgpu in their own modules): src/ops/dispatch.ts picks a registered kernel up by its name.
 *
 * The base interface (what every kernel registered under these names takes): gamma, beta, mean,
 * variance, dmean, dvariance are float32 tensors of shape [channels]; the ops pass ones/zeros where
 * the caller gave null gamma/beta. Everything marked *optional* below is an extension a kernel
 * declares in its KernelConfig's `features` (BatchNormKernelConfig); the ops pass it only to kernels
 * that declare it, so a kernel written for the base interface keeps working.
 */
import type {KernelConfig, NamedAttrMap, NamedTensorInfoMap} from '@tensorflow/tfjs-core';

/** Attributes every kernel takes. */
export interface BatchNormAttrs extends NamedAttrMap {
  /** Channel axes: sorted, non-negative and adjacent, so x is [outer, channels, inner] in memory. */
  axis: number[];
  /** Added to the variance before the reciprocal square root. */
  epsilon: number;
}

/**
 * Extensions of the base interface a kernel may implement. A kernel declares them on its config
 * (`{kernelName, backendName, kernelFunc, features}`); dispatch.ts reads them with getKernel.
 */
export interface BatchNormKernelFeatures {
  /**
   * gamma and beta may be absent (scale 1, offset 0) and may have any shape holding one value per
   * channel (they are read in row-major order); the `paramShape` attribute, when given, is their
   * shape, which the gradient kernel gives dgamma and dbeta. Per-channel statistics inputs
   * (BatchNormInfer's mean and variance, the moving statistics) may have any such shape too.
   */
  flexibleParams?: boolean;
  /** BatchNormTrain: the moving-statistics update (the `moving*` inputs, `momentum`; updated outputs). */
  movingUpdate?: boolean;
  /** BatchNormTrain and BatchNormTrainGrad: Batch Renormalization (the `renorm*` inputs; r and d). */
  renorm?: boolean;
  /** BatchNormTrain and BatchNormTrainGrad: ghost batches (the `ghosts` attribute). */
  ghosts?: boolean;
}

/** Names of the features, for lists and the dispatch table. */
export type BatchNormFeature = keyof BatchNormKernelFeatures;

/** A kernel config of this package's kernels, with the features the kernel implements. */
export interface BatchNormKernelConfig extends KernelConfig {
  features?: BatchNormKernelFeatures;
}

/**
 * Attributes the extended kernels take beyond BatchNormAttrs (all optional; outside NamedAttrMap,
 * whose values cannot be undefined: pass them `as unknown as NamedAttrMap`).
 */
export interface BatchNormExtendedAttrs {
  axis: number[];
  epsilon: number;
  /** flexibleParams: the shape of gamma and beta (and of dgamma, dbeta); default [channels]. */
  paramShape?: number[];
  /**
   * ghosts: the number k of ghost batches (default 1): x's first axis is the batch, and ghost batch
   * j holds samples j, j + k, j + 2k, … (Keras 2's virtual_batch_size of B / k). Statistics are
   * taken per (ghost batch, channel); the mean and variance outputs are their means over ghost batches.
   */
  ghosts?: number;
}

/**
 * Training-mode forward. Outputs, in this order:
 *   y (x's shape), mean and biased variance ([channels]; means over ghost batches with ghosts);
 *   with `movingMean`: movingMean', movingVariance' (in movingMean's shape);
 *   with `renormMean`: r, d ([channels]; constants to the gradient);
 *   with both: movingStddev', renormMean', renormStddev';
 *   with ghosts: the variance of every (ghost batch, channel) pair ([k·channels], ghost-major), which
 *   the gradient kernel takes as its `variance`.
 * The updated statistics are float32, bit for bit what the tf ops
 *   moving·momentum + value·(1 − momentum)
 * give for the float32 mean and variance outputs (renorm: σ_B = √(variance + ε) in float32, and
 * movingVariance' = max(movingStddev'² − ε, 0)). They are assignments, as in TensorFlow and PyTorch:
 * the gradient treats them as constants (ops/train_step.ts never lets a gradient reach them).
 */
export const BatchNormTrain = 'TfjsBatchNorm_BatchNormTrain';
export type BatchNormTrainInputs = Pick<NamedTensorInfoMap, 'x' | 'gamma' | 'beta'> & Partial<NamedTensorInfoMap>;
export interface BatchNormTrainAttrs extends BatchNormExtendedAttrs {
  /** movingUpdate: with the inputs movingMean and movingVariance (movingStddev with renorm). */
  momentum?: number;
  /** renorm: momentum of renormMean and renormStddev, with inputs renormMean, renormStddev and optional scalars rmin, rmax, dmax. */
  renormMomentum?: number;
}
/** The inputs of BatchNormTrain, in the order the kernels read them. */
export const BATCH_NORM_TRAIN_INPUTS = ['x', 'gamma', 'beta', 'movingMean', 'movingVariance', 'movingStddev', 'renormMean', 'renormStddev',
  'rmin', 'rmax', 'dmax'] as const;

/** The optional parts of a BatchNormTrain call, which decide its outputs. */
export interface BatchNormTrainParts {
  moving: boolean;
  renorm: boolean;
  ghosts: boolean;
}

/** BatchNormTrain's outputs, in order, for a call with these optional parts (see BatchNormTrain). */
export function batchNormTrainOutputs({moving, renorm, ghosts}: BatchNormTrainParts): string[] {
  return ['y', 'mean', 'variance', ...(moving ? ['movingMean', 'movingVariance'] : []), ...(renorm ? ['r', 'd'] : []),
    ...(moving && renorm ? ['movingStddev', 'renormMean', 'renormStddev'] : []), ...(ghosts ? ['groupVariance'] : [])];
}

/**
 * Closed-form backward of BatchNormTrain: the gradients of Σ y·dy + Σ mean·dmean + Σ variance·dvariance.
 * `variance` is BatchNormTrain's variance output (x's biased variance, given to save a pass; the
 * registered gradient of this kernel treats it as that function of x); the mean is recomputed
 * from x (in float64 on cpu/wasm). Outputs dx (x's shape), dgamma and dbeta ([channels], or
 * `paramShape`). renorm (optional inputs r, d): y = x̂·(r·γ) + d·γ + β with r and d constant, so
 * dx uses γ·r and dgamma = r·Σdy·x̂ + d·Σdy. ghosts: as BatchNormTrain's attribute; `variance` is
 * then the per-(ghost batch, channel) variances (BatchNormTrain's last output), and dmean and
 * dvariance reach each ghost batch's statistics divided by k.
 */
export const BatchNormTrainGrad = 'TfjsBatchNorm_BatchNormTrainGrad';
export type BatchNormTrainGradInputs = Pick<NamedTensorInfoMap, 'dy' | 'x' | 'gamma' | 'variance' | 'dmean' | 'dvariance'> & Partial<NamedTensorInfoMap>;
export type BatchNormTrainGradAttrs = BatchNormExtendedAttrs;

/** Inference-mode forward with given statistics. Output y (x's shape). */
export const BatchNormInfer = 'TfjsBatchNorm_BatchNormInfer';
export type BatchNormInferInputs = Pick<NamedTensorInfoMap, 'x' | 'mean' | 'variance' | 'gamma' | 'beta'>;
export type BatchNormInferAttrs = BatchNormAttrs;
