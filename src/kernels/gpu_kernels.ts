/**
 * The three fused kernels on GPU backends (webgl, webgpu), written once as a sequence of passes;
 * each backend supplies the shader program of every pass (webgl/programs.ts in GLSL,
 * webgpu/programs.ts in WGSL) and the way to run it (`GpuAccess`). The arithmetic is described in
 * gpu_plan.ts.
 *
 *   BatchNormTrain      momentPartials → momentMerge → normalize (y), pick (mean), pick (variance)
 *   BatchNormTrainGrad  gradientPartials → gradientMerge → gradientApply (dx), pick (dγ), pick (dβ)
 *   BatchNormInfer      infer (y)
 *
 * x and dy are read twice in training (the partial pass and the elementwise pass); every other
 * pass touches per-lane or per-channel data only.
 */
import type {KernelConfig, KernelFunc, TensorInfo} from '@tensorflow/tfjs-core';
import {BatchNormAttrs, BatchNormInfer, BatchNormTrain, BatchNormTrainGrad} from '../kernel_names';
import {LaneLimits, LanePlan, lanePlan} from './gpu_plan';

/**
 * Per-channel values the moment merge leaves, in this order: (mean − s, variance, scale, β, mean).
 * The mean is written by the merge, where mean − s is still a float32 register: on half-float
 * textures, s + (mean − s) read back from the stats would round twice.
 */
export const MOMENT_STATS = 5;
/** Per-channel values the gradient merge leaves: (a, b, k, mean − s, dγ, dβ), dx = a·dy + b·(x − mean) + k. */
export const GRADIENT_STATS = 6;

/** One pass of a kernel; each backend turns it into a shader program. */
export type Pass =
  /** Per lane: the mean of x − s and x's spread (variance, or on webgl its root); per channel: s. Inputs: x. */
  | {kind: 'momentPartials'; plan: LanePlan}
  /** Per channel: MOMENT_STATS values. Inputs: partials, gamma, beta. */
  | {kind: 'momentMerge'; plan: LanePlan; epsilon: number}
  /** y = ((x − s) − (mean − s))·scale + β. Inputs: x, stats. */
  | {kind: 'normalize'; plan: LanePlan}
  /** Per lane: means of x − s, dy and dy·(x − lane mean) (and on half-float webgl x's spread). Inputs: dy, x. */
  | {kind: 'gradientPartials'; plan: LanePlan}
  /** Per channel: GRADIENT_STATS values. Inputs: partials, gamma, variance, dmean, dvariance. */
  | {kind: 'gradientMerge'; plan: LanePlan; epsilon: number}
  /** dx = a·dy + b·((x − s) − (mean − s)) + k. Inputs: dy, x, stats. */
  | {kind: 'gradientApply'; plan: LanePlan}
  /** out[c] = stats[c·width + column]. Inputs: stats. */
  | {kind: 'pick'; plan: LanePlan; width: number; column: number}
  /** y = (x − mean)·γ/√(variance + ε) + β with given statistics. Inputs: x, mean, variance, gamma, beta. */
  | {kind: 'infer'; plan: LanePlan; epsilon: number};

/** One kernel call's access to the backend: x and dy as the passes read them, and a way to run passes. */
export interface GpuRun {
  /** x or dy as every pass reads them (flat on webgpu; on webgl in the layout they came in, see webgl/programs.ts). */
  views: TensorInfo[];
  /** Runs one pass; the result is a new tensor of the pass's own shape (flat or backend-specific). */
  run(pass: Pass, inputs: TensorInfo[]): TensorInfo;
  /** Frees an intermediate result of `run`. */
  dispose(t: TensorInfo): void;
  /** Frees what preparing the views allocated, if anything. */
  release(): void;
}

/** What the kernels need from a GPU backend. */
export interface GpuAccess {
  /** How this backend splits the reductions (gpu_plan.ts). */
  limits: LaneLimits;
  /** Prepares a kernel call on `backend` (the backend object the kernel was given) with x and dy. */
  begin(backend: unknown, fullSize: TensorInfo[], plan: LanePlan): GpuRun;
}

function attrsOf(attrs: unknown): BatchNormAttrs {
  return attrs as BatchNormAttrs;
}

function withShape(t: TensorInfo, shape: number[]): TensorInfo {
  return {dataId: t.dataId, shape, dtype: t.dtype};
}

/**
 * Runs `body` with a GpuRun for the full-size inputs, a list for intermediates (`temp`) and one for
 * outputs (`out`); frees the intermediates and the views whatever happens, and the outputs too if
 * `body` throws, so no texture or buffer outlives a kernel.
 */
function withRun(access: GpuAccess, backend: unknown, fullSize: TensorInfo[], plan: LanePlan,
                 body: (gpu: GpuRun, temp: (t: TensorInfo) => TensorInfo, out: (t: TensorInfo) => TensorInfo) => TensorInfo[]): TensorInfo[] {
  const gpu = access.begin(backend, fullSize, plan);
  const temps: TensorInfo[] = [];
  const outs: TensorInfo[] = [];
  const keep = (list: TensorInfo[]) => (t: TensorInfo) => { list.push(t); return t; };
  let ok = false;
  try {
    const result = body(gpu, keep(temps), keep(outs));
    ok = true;
    return result;
  } finally {
    for (const t of ok ? temps : [...temps, ...outs]) gpu.dispose(t);
    gpu.release();
  }
}

function planOf(x: TensorInfo, attrs: unknown, access: GpuAccess): {plan: LanePlan; epsilon: number} {
  const {axis, epsilon} = attrsOf(attrs);
  return {plan: lanePlan(x.shape, axis, access.limits), epsilon};
}

/** Training-mode forward (inputs x, gamma, beta; outputs y, mean, variance) on a GPU backend. */
export function gpuTrainKernel(access: GpuAccess): KernelFunc {
  return ({inputs, backend, attrs}) => {
    const {x, gamma, beta} = inputs as {x: TensorInfo; gamma: TensorInfo; beta: TensorInfo};
    const {plan, epsilon} = planOf(x, attrs, access);
    return withRun(access, backend, [x], plan, (gpu, temp, out) => {
      const [xs] = gpu.views;
      const partials = temp(gpu.run({kind: 'momentPartials', plan}, [xs]));
      const stats = temp(gpu.run({kind: 'momentMerge', plan, epsilon}, [partials, gamma, beta]));
      const y = out(gpu.run({kind: 'normalize', plan}, [xs, stats]));
      const pick = (column: number) => out(gpu.run({kind: 'pick', plan, width: MOMENT_STATS, column}, [stats]));
      return [withShape(y, x.shape), pick(4), pick(1)];
    });
  };
}

/**
 * Closed-form backward (inputs dy, x, gamma, variance, dmean, dvariance; outputs dx, dgamma, dbeta),
 * the same formula as fused.ts: dx = a·dy + b·(x − mean) + k per channel, with the batch mean
 * recomputed from x and the given variance.
 */
export function gpuTrainGradKernel(access: GpuAccess): KernelFunc {
  return ({inputs, backend, attrs}) => {
    const {dy, x, gamma, variance, dmean, dvariance} =
        inputs as {dy: TensorInfo; x: TensorInfo; gamma: TensorInfo; variance: TensorInfo; dmean: TensorInfo; dvariance: TensorInfo};
    const {plan, epsilon} = planOf(x, attrs, access);
    return withRun(access, backend, [x, dy], plan, (gpu, temp, out) => {
      const [xs, dys] = gpu.views;
      const partials = temp(gpu.run({kind: 'gradientPartials', plan}, [dys, xs]));
      const stats = temp(gpu.run({kind: 'gradientMerge', plan, epsilon}, [partials, gamma, variance, dmean, dvariance]));
      const dx = out(gpu.run({kind: 'gradientApply', plan}, [dys, xs, stats]));
      const pick = (column: number) => out(gpu.run({kind: 'pick', plan, width: GRADIENT_STATS, column}, [stats]));
      return [withShape(dx, x.shape), pick(4), pick(5)];
    });
  };
}

/** Inference-mode forward (inputs x, mean, variance, gamma, beta; output y): one pass. */
export function gpuInferKernel(access: GpuAccess): KernelFunc {
  return ({inputs, backend, attrs}) => {
    const {x, mean, variance, gamma, beta} =
        inputs as {x: TensorInfo; mean: TensorInfo; variance: TensorInfo; gamma: TensorInfo; beta: TensorInfo};
    const {plan, epsilon} = planOf(x, attrs, access);
    const [y] = withRun(access, backend, [x], plan, gpu => [gpu.run({kind: 'infer', plan, epsilon}, [gpu.views[0], mean, variance, gamma, beta])]);
    return withShape(y, x.shape);
  };
}

/** The three kernel configs for a GPU backend. */
export function gpuKernelConfigs(backendName: string, access: GpuAccess): KernelConfig[] {
  return [
    {kernelName: BatchNormTrain, backendName, kernelFunc: gpuTrainKernel(access)},
    {kernelName: BatchNormTrainGrad, backendName, kernelFunc: gpuTrainGradKernel(access)},
    {kernelName: BatchNormInfer, backendName, kernelFunc: gpuInferKernel(access)},
  ];
}
