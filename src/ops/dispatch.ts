/**
 * Which code runs, in one table. Every op and gradient of this package asks `implementationFor`
 * and runs what it answers:
 *
 *   'fused'      this package's kernel registered for the current backend under the mode's kernel
 *                name (kernel_names.ts): cpu and wasm here, any backend that registers one (webgl,
 *                webgpu) is picked up the same way;
 *   'backend'    the backend's own FusedBatchNorm kernel (tf.batchNorm), inference only;
 *   'composite'  tf ops (batch_norm_composite.ts) with the closed-form gradient in tf ops.
 *
 * | mode                  | first matching row                                                        | runs      |
 * |-----------------------|---------------------------------------------------------------------------|-----------|
 * | masked                | always (no fused masked kernel)                                           | composite |
 * | train, infer, trainGrad| kernel registered for the backend, axes adjacent, composite not forced    | fused     |
 * | infer                 | rank <= 4 and the backend's FusedBatchNorm broadcasts per channel         | backend   |
 * | train, infer, trainGrad| otherwise                                                                 | composite |
 *
 * What that gives today (rank = x's rank; "adjacent" = the channel axes are consecutive):
 *
 * | backend                      | axes         | train     | infer                                    | masked    |
 * |------------------------------|--------------|-----------|------------------------------------------|-----------|
 * | cpu, wasm                    | adjacent     | fused     | fused                                    | composite |
 * | cpu, wasm                    | not adjacent | composite | composite                                | composite |
 * | webgl, webgpu, tensorflow    | any          | composite | backend (rank <= 4), else composite      | composite |
 * | cpu, wasm + FORCE_COMPOSITE  | any          | composite | backend (rank <= 4, channels last), else composite | composite |
 *
 * 'trainGrad' is the gradient of a fused training forward: the fused gradient kernel where the
 * backend registers one, else the closed form in tf ops (a backend may register the forward first).
 */
import {env, getBackend, getKernel} from '@tensorflow/tfjs-core';
import {BatchNormInfer, BatchNormTrain, BatchNormTrainGrad} from '../kernel_names';
import {axesAreAdjacent} from './channel_axes';

/**
 * tf.env() flag for tests: true makes cpu and wasm behave as a backend without this package's
 * kernels (webgl, webgpu, tensorflow today), so that the tf-ops paths those backends take run and
 * are checked on any machine. Default false.
 */
export const FORCE_COMPOSITE_FLAG = 'TFJS_BATCHNORM_FORCE_COMPOSITE';
env().registerFlag(FORCE_COMPOSITE_FLAG, () => false);

/** What is being computed: a training forward (with or without a mask), its gradient, or inference. */
export type Mode = 'train' | 'masked' | 'trainGrad' | 'infer';

/** Which code computes it. */
export type Implementation = 'fused' | 'backend' | 'composite';

/** Everything the choice depends on. */
export interface Situation {
  mode: Mode;
  /** This package's kernel for the mode is registered for the current backend, and composite is not forced. */
  fusedKernel: boolean;
  /** The channel axes are consecutive, so x is [outer, channels, inner] in memory (what the kernels take). */
  adjacentAxes: boolean;
  rank: number;
  /** The backend's own FusedBatchNorm kernel normalizes each channel with its own statistics here. */
  backendKernelBroadcasts: boolean;
}

/** One row of the table: the modes it applies to, the condition (said and tested), the result. */
export interface DispatchRule {
  modes: readonly Mode[];
  when: string;
  holds: (s: Situation) => boolean;
  run: Implementation;
}

/** The dispatch table: the first row whose mode and condition match decides. */
export const DISPATCH_TABLE: readonly DispatchRule[] = [
  {modes: ['masked'], when: 'always (no fused masked kernel)', holds: () => true, run: 'composite'},
  {modes: ['train', 'infer', 'trainGrad'], when: 'kernel registered for the backend, axes adjacent, composite not forced',
    holds: s => s.fusedKernel && s.adjacentAxes, run: 'fused'},
  {modes: ['infer'], when: 'rank <= 4 and the backend\'s FusedBatchNorm broadcasts per channel',
    holds: s => s.rank <= 4 && s.backendKernelBroadcasts, run: 'backend'},
  {modes: ['train', 'infer', 'trainGrad'], when: 'otherwise', holds: () => true, run: 'composite'},
];

/** The kernel each mode would run on the fused path. */
const KERNEL_OF: Record<Mode, string | null> = {train: BatchNormTrain, trainGrad: BatchNormTrainGrad, infer: BatchNormInfer, masked: null};

/**
 * Backends whose FusedBatchNorm indexes the statistics by the flat element index modulo their size,
 * which is per channel only when the channel axes are the last ones, adjacent (tfjs #1106).
 */
const TRAILING_CHANNELS_ONLY = ['cpu', 'wasm'];

/** The situation of a call on the current backend (exported for tests and for the record). */
export function situationOf(mode: Mode, rank: number, axes: number[]): Situation {
  const backend = getBackend();
  const kernel = KERNEL_OF[mode];
  const adjacentAxes = axesAreAdjacent(axes);
  return {
    mode,
    fusedKernel: kernel != null && !env().getBool(FORCE_COMPOSITE_FLAG) && getKernel(kernel, backend) != null,
    adjacentAxes,
    rank,
    backendKernelBroadcasts: !TRAILING_CHANNELS_ONLY.includes(backend) || (adjacentAxes && axes[axes.length - 1] === rank - 1),
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
export function implementationFor(mode: Mode, rank: number, axes: number[]): Implementation {
  return decide(situationOf(mode, rank, axes));
}
