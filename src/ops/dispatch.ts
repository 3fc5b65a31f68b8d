/**
 * Which code runs, in one table. Every op and gradient of this package asks `implementationFor`
 * and runs what it answers:
 *
 *   'fused'      this package's kernel registered for the current backend under the mode's kernel
 *                name (kernel_names.ts): cpu, wasm, webgl and webgpu here (kernels/), any other
 *                backend that registers one is picked up the same way; for a feature mode, the training kernel does it;
 *   'backend'    the backend's own FusedBatchNorm kernel (tf.batchNorm), inference only;
 *   'composite'  tf ops (batch_norm_composite.ts) with the closed-form gradient in tf ops; for a
 *                feature mode, tf ops around the training forward (train_step.ts).
 *
 * The feature modes are the parts of a layer's training step that a training kernel may do itself
 * when it declares the feature (kernel_names.ts, BatchNormKernelFeatures): 'movingUpdate' (the moving
 * statistics), 'renorm' (Batch Renormalization's r and d and its updates), 'ghosts' (ghost batches).
 *
 * | mode                    | first matching row                                                                 | runs      |
 * |-------------------------|------------------------------------------------------------------------------------|-----------|
 * | masked                  | always (no fused masked kernel)                                                    | composite |
 * | train, infer, trainGrad | kernel registered for the backend, axes adjacent, composite not forced, the features the call uses declared | fused |
 * | infer                   | rank <= 4 and the backend's FusedBatchNorm broadcasts per channel                  | backend   |
 * | train, infer, trainGrad | otherwise                                                                          | composite |
 * | movingUpdate, renorm, ghosts | unmasked, training kernel registered, axes adjacent, composite not forced, this feature and every other the step uses declared | fused |
 * | movingUpdate, renorm, ghosts | otherwise                                                                     | composite |
 *
 * What that gives today (rank = x's rank; "adjacent" = the channel axes are consecutive):
 *
 * | backend                      | axes         | train     | infer                                    | masked    | moving update, renorm, ghosts |
 * |------------------------------|--------------|-----------|------------------------------------------|-----------|-------------------------------|
 * | cpu, wasm                    | adjacent     | fused     | fused                                    | composite | in the training kernel        |
 * | cpu, wasm                    | not adjacent | composite | composite                                | composite | tf ops                        |
 * | webgl, webgpu                | adjacent     | fused     | fused                                    | composite | moving update in the training kernel; renorm, ghosts: tf ops around it |
 * | webgl, webgpu                | not adjacent | composite | backend (rank <= 4), else composite      | composite | tf ops                        |
 * | tensorflow                   | any          | composite | backend (rank <= 4), else composite      | composite | tf ops                        |
 * | cpu, wasm + FORCE_COMPOSITE  | any          | composite | backend (rank <= 4, channels last), else composite | composite | tf ops                |
 * | a backend whose kernels declare no features (the base interface) | adjacent | fused | fused | composite | tf ops around the fused kernel |
 *
 * 'trainGrad' is the gradient of a fused training forward: the fused gradient kernel where the
 * backend registers one that declares what the forward used (renorm, ghosts, flexible parameters),
 * else the closed form in tf ops (a backend may register the forward first).
 */
import {env, getBackend, getKernel} from '@tensorflow/tfjs-core';
import {BatchNormFeature, BatchNormInfer, BatchNormKernelConfig, BatchNormTrain, BatchNormTrainGrad} from '../kernel_names';
import {axesAreAdjacent} from './channel_axes';

/**
 * tf.env() flag for tests: true makes cpu and wasm (and webgl, webgpu) behave as a backend
 * without this package's kernels (tensorflow today), so that the tf-ops paths those backends take run and
 * are checked on any machine. Default false.
 */
export const FORCE_COMPOSITE_FLAG = 'TFJS_BATCHNORM_FORCE_COMPOSITE';
env().registerFlag(FORCE_COMPOSITE_FLAG, () => false);

/**
 * tf.env() flag for tests: true makes every registered kernel of this package count as one written
 * for the base interface (it declares no features), as a GPU backend's kernels may be, so that the
 * ops pass it only base inputs and compose the rest around it; checked on cpu and wasm. Default false.
 */
export const BASE_INTERFACE_FLAG = 'TFJS_BATCHNORM_BASE_INTERFACE';
env().registerFlag(BASE_INTERFACE_FLAG, () => false);

/** The parts of a training step a training kernel may do itself. */
export type FeatureMode = 'movingUpdate' | 'renorm' | 'ghosts';

/** What is being computed: a training forward (with or without a mask), its gradient, inference, or a part of a training step. */
export type Mode = 'train' | 'masked' | 'trainGrad' | 'infer' | FeatureMode;

/** Which code computes it. */
export type Implementation = 'fused' | 'backend' | 'composite';

/** Everything the choice depends on. */
export interface Situation {
  mode: Mode;
  /** This package's kernel for the mode is registered for the current backend, and composite is not forced. */
  fusedKernel: boolean;
  /** The features that kernel declares. */
  features: BatchNormFeature[];
  /** The features the call uses (trainGrad: those its forward used); a fused kernel must declare them. */
  uses: BatchNormFeature[];
  /** The channel axes are consecutive, so x is [outer, channels, inner] in memory (what the kernels take). */
  adjacentAxes: boolean;
  rank: number;
  /** The backend's own FusedBatchNorm kernel normalizes each channel with its own statistics here. */
  backendKernelBroadcasts: boolean;
  /** The training step has a mask (feature modes). */
  masked: boolean;
}

/** One row of the table: the modes it applies to, the condition (said and tested), the result. */
export interface DispatchRule {
  modes: readonly Mode[];
  when: string;
  holds: (s: Situation) => boolean;
  run: Implementation;
}

const FEATURE_MODES: readonly FeatureMode[] = ['movingUpdate', 'renorm', 'ghosts'];

/** The dispatch table: the first row whose mode and condition match decides. */
export const DISPATCH_TABLE: readonly DispatchRule[] = [
  {modes: ['masked'], when: 'always (no fused masked kernel)', holds: () => true, run: 'composite'},
  {modes: ['train', 'infer', 'trainGrad'], when: 'kernel registered for the backend, axes adjacent, composite not forced, the features the call uses declared',
    holds: s => s.fusedKernel && s.adjacentAxes && s.uses.every(f => s.features.includes(f)), run: 'fused'},
  {modes: ['infer'], when: 'rank <= 4 and the backend\'s FusedBatchNorm broadcasts per channel',
    holds: s => s.rank <= 4 && s.backendKernelBroadcasts, run: 'backend'},
  {modes: ['train', 'infer', 'trainGrad'], when: 'otherwise', holds: () => true, run: 'composite'},
  {modes: FEATURE_MODES, when: 'unmasked, training kernel registered, axes adjacent, composite not forced, this feature and every other the step uses declared',
    holds: s => !s.masked && s.fusedKernel && s.adjacentAxes && [s.mode as FeatureMode, ...s.uses].every(f => s.features.includes(f)), run: 'fused'},
  {modes: FEATURE_MODES, when: 'otherwise', holds: () => true, run: 'composite'},
];

/** The kernel each mode would run on the fused path (feature modes: the training kernel). */
const KERNEL_OF: Record<Mode, string | null> = {train: BatchNormTrain, trainGrad: BatchNormTrainGrad, infer: BatchNormInfer, masked: null,
  movingUpdate: BatchNormTrain, renorm: BatchNormTrain, ghosts: BatchNormTrain};

/**
 * Backends whose FusedBatchNorm indexes the statistics by the flat element index modulo their size,
 * which is per channel only when the channel axes are the last ones, adjacent (tfjs #1106).
 */
const TRAILING_CHANNELS_ONLY = ['cpu', 'wasm'];

/** The features a registered kernel declares (none for a kernel written for the base interface). */
export function kernelFeatures(kernelName: string, backend: string): BatchNormFeature[] {
  const config = getKernel(kernelName, backend) as BatchNormKernelConfig | undefined;
  const features = env().getBool(BASE_INTERFACE_FLAG) ? {} : config?.features ?? {};
  return (Object.keys(features) as BatchNormFeature[]).filter(f => features[f] === true);
}

/** What a call adds to the situation beyond its mode and geometry. */
export interface CallDetails {
  /** Features the call uses (see Situation.uses). */
  uses?: BatchNormFeature[];
  /** Feature modes: the training step is masked. */
  masked?: boolean;
}

/** The situation of a call on the current backend (exported for tests and for the record). */
export function situationOf(mode: Mode, rank: number, axes: number[], details: CallDetails = {}): Situation {
  const backend = getBackend();
  const kernel = KERNEL_OF[mode];
  const adjacentAxes = axesAreAdjacent(axes);
  const fusedKernel = kernel != null && !env().getBool(FORCE_COMPOSITE_FLAG) && getKernel(kernel, backend) != null;
  return {
    mode,
    fusedKernel,
    features: fusedKernel ? kernelFeatures(kernel as string, backend) : [],
    uses: details.uses ?? [],
    adjacentAxes,
    rank,
    backendKernelBroadcasts: !TRAILING_CHANNELS_ONLY.includes(backend) || (adjacentAxes && axes[axes.length - 1] === rank - 1),
    masked: details.masked === true,
  };
}

/** The first matching row's implementation. */
export function decide(situation: Situation): Implementation {
  const rule = DISPATCH_TABLE.find(r => r.modes.includes(situation.mode) && r.holds(situation));
  // The last rows match every mode; reaching here means the table lost a row.
  if (rule == null) throw new Error(`tfjs-batchnorm: no dispatch rule for ${JSON.stringify(situation)}`);
  return rule.run;
}

/** Which implementation runs `mode` for an input of this rank and these (sorted) channel axes, on the current backend. */
export function implementationFor(mode: Mode, rank: number, axes: number[], details?: CallDetails): Implementation {
  return decide(situationOf(mode, rank, axes, details));
}
