/**
 * The three fused kernels on GPU backends (webgl, webgpu), written once as a sequence of passes;
 * each backend supplies the shader program of every pass (webgl/programs.ts in GLSL,
 * webgpu/programs.ts in WGSL) and the way to run it (`GpuAccess`). The arithmetic is described in
 * gpu_plan.ts.
 *
 *   BatchNormTrain      momentPartials → momentMerge → normalize (y), pick (mean), pick (variance)
 *                       [with the moving update: movingAverage (mean), movingAverage (variance)]
 *   BatchNormTrainGrad  gradientPartials → gradientMerge → gradientApply (dx), pick (dγ), pick (dβ)
 *   BatchNormInfer      infer (y)
 *
 * x and dy are read twice in training (the partial pass and the elementwise pass); every other
 * pass touches per-lane or per-channel data only.
 *
 * Beyond the base interface they implement `flexibleParams` (gamma and beta absent or of any
 * per-channel shape, read as flat views; the statistics inputs likewise) and `movingUpdate` (the
 * moving statistics updated inside BatchNormTrain from the merge's float32 mean and variance).
 * Renorm and ghost batches are not implemented here: dispatch.ts composes them in tf ops.
 */
import type {KernelFunc, TensorInfo} from '@tensorflow/tfjs-core';
import {BatchNormExtendedAttrs, BatchNormInfer, BatchNormKernelConfig, BatchNormKernelFeatures, BatchNormTrain, BatchNormTrainAttrs,
  BatchNormTrainGrad} from '../kernel_names';
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
  | {kind: 'infer'; plan: LanePlan; epsilon: number}
  /**
   * out[c] = moving[c]·m + stats[c·MOMENT_STATS + column]·(1 − m), m = momentum, each operand
   * float32 (as tfjs's Multiply and Add compute it; a GPU compiler may fuse a product and the sum,
   * see MOVING_UPDATE_ULPS). Inputs: moving (flat), stats.
   */
  | {kind: 'movingAverage'; plan: LanePlan; column: number; momentum: number};

/**
 * The moving update's largest difference from the cpu kernel's (and the tf ops') float32 result,
 * in units in the last place of the larger of the two rounded products |old·m|, |batch·(1 − m)|:
 * GLSL ES 3.00 and WGSL let a compiler contract a·b + c into one fused multiply-add, which rounds
 * once where tfjs rounds twice, and the languages have no way to forbid it. Measured on
 * SwiftShader: 0 (bit for bit) on webgl and webgpu; real GPUs may fuse, hence the bound of 1, which
 * __tests__/browser_kernels.test.ts checks.
 */
export const MOVING_UPDATE_ULPS = 1;

/** Columns of the moment merge's stats that hold the float32 batch mean and variance (the outputs). */
const MEAN_COLUMN = 4;
const VARIANCE_COLUMN = 1;

/** One kernel call's access to the backend: x and dy as the passes read them, and a way to run passes. */
export interface GpuRun {
  /** x or dy as every pass reads them (flat on webgpu; on webgl in the layout they came in, see webgl/programs.ts). */
  views: TensorInfo[];
  /** Runs one pass; the result is a new tensor of the pass's own shape (flat or backend-specific). */
  run(pass: Pass, inputs: TensorInfo[]): TensorInfo;
  /**
   * A per-channel input (any shape holding one value per channel) as a flat [size] view the passes
   * read by channel; may allocate (webgl unpacks a packed texture of rank ≠ 1): free it with dispose.
   */
  vector(t: TensorInfo): {view: TensorInfo; allocated: boolean};
  /** A new float32 [size] tensor filled with `value` (uploaded, no shader). */
  fill(size: number, value: number): TensorInfo;
  /** Frees an intermediate result of `run`, `vector` or `fill`. */
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

function attrsOf(attrs: unknown): BatchNormTrainAttrs {
  return attrs as BatchNormTrainAttrs;
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

/**
 * A per-channel input as the passes read it (flexibleParams): a flat view of any per-channel shape,
 * or `fill` values where it is absent (gamma 1, beta 0).
 */
function perChannel(gpu: GpuRun, temp: (t: TensorInfo) => TensorInfo, t: TensorInfo | undefined, channels: number, fill: number): TensorInfo {
  if (t == null) return temp(gpu.fill(channels, fill));
  const {view, allocated} = gpu.vector(t);
  return allocated ? temp(view) : view;
}

/**
 * Training-mode forward (inputs x, gamma?, beta?, and with the moving update movingMean,
 * movingVariance; outputs y, mean, variance, and movingMean', movingVariance' in the moving
 * statistics' shapes) on a GPU backend.
 */
export function gpuTrainKernel(access: GpuAccess): KernelFunc {
  return ({inputs, backend, attrs}) => {
    const {x, gamma, beta, movingMean, movingVariance} = inputs as Record<string, TensorInfo | undefined> & {x: TensorInfo};
    const {plan, epsilon} = planOf(x, attrs, access);
    const {momentum} = attrsOf(attrs);
    return withRun(access, backend, [x], plan, (gpu, temp, out) => {
      const [xs] = gpu.views;
      const vector = (t: TensorInfo | undefined, fill: number) => perChannel(gpu, temp, t, plan.channels, fill);
      const partials = temp(gpu.run({kind: 'momentPartials', plan}, [xs]));
      const stats = temp(gpu.run({kind: 'momentMerge', plan, epsilon}, [partials, vector(gamma, 1), vector(beta, 0)]));
      const y = out(gpu.run({kind: 'normalize', plan}, [xs, stats]));
      const pick = (column: number) => out(gpu.run({kind: 'pick', plan, width: MOMENT_STATS, column}, [stats]));
      const results = [withShape(y, x.shape), pick(MEAN_COLUMN), pick(VARIANCE_COLUMN)];
      if (movingMean == null) return results;
      // From the stats the mean and variance outputs were picked from: the same float32 values.
      const update = (moving: TensorInfo, column: number) => withShape(out(gpu.run({kind: 'movingAverage', plan, column,
        momentum: momentum as number}, [vector(moving, 0), stats])), moving.shape);
      return [...results, update(movingMean, MEAN_COLUMN), update(movingVariance as TensorInfo, VARIANCE_COLUMN)];
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
        inputs as Record<string, TensorInfo | undefined> & {dy: TensorInfo; x: TensorInfo};
    const {plan, epsilon} = planOf(x, attrs, access);
    // flexibleParams: dgamma and dbeta in gamma's shape, else paramShape's, else [channels].
    const paramShape = gamma?.shape ?? (attrs as unknown as BatchNormExtendedAttrs).paramShape ?? [plan.channels];
    return withRun(access, backend, [x, dy], plan, (gpu, temp, out) => {
      const [xs, dys] = gpu.views;
      const vector = (t: TensorInfo | undefined, fill: number) => perChannel(gpu, temp, t, plan.channels, fill);
      const partials = temp(gpu.run({kind: 'gradientPartials', plan}, [dys, xs]));
      const stats = temp(gpu.run({kind: 'gradientMerge', plan, epsilon},
          [partials, vector(gamma, 1), vector(variance, 0), vector(dmean, 0), vector(dvariance, 0)]));
      const dx = out(gpu.run({kind: 'gradientApply', plan}, [dys, xs, stats]));
      const pick = (column: number) => withShape(out(gpu.run({kind: 'pick', plan, width: GRADIENT_STATS, column}, [stats])), paramShape);
      return [withShape(dx, x.shape), pick(4), pick(5)];
    });
  };
}

/** Inference-mode forward (inputs x, mean, variance, gamma, beta; output y): one pass. */
export function gpuInferKernel(access: GpuAccess): KernelFunc {
  return ({inputs, backend, attrs}) => {
    const {x, mean, variance, gamma, beta} = inputs as Record<string, TensorInfo | undefined> & {x: TensorInfo};
    const {plan, epsilon} = planOf(x, attrs, access);
    const [y] = withRun(access, backend, [x], plan, (gpu, temp) => {
      const vector = (t: TensorInfo | undefined, fill: number) => perChannel(gpu, temp, t, plan.channels, fill);
      return [gpu.run({kind: 'infer', plan, epsilon}, [gpu.views[0], vector(mean, 0), vector(variance, 0), vector(gamma, 1), vector(beta, 0)])];
    });
    return withShape(y, x.shape);
  };
}

/**
 * The extensions of kernel_names.ts these kernels implement (declared on their configs, read by
 * dispatch.ts): renorm and ghost batches are composed around them in tf ops.
 */
export const GPU_FEATURES: BatchNormKernelFeatures = {flexibleParams: true, movingUpdate: true};

/** The three kernel configs for a GPU backend. */
export function gpuKernelConfigs(backendName: string, access: GpuAccess): BatchNormKernelConfig[] {
  return [
    {kernelName: BatchNormTrain, backendName, kernelFunc: gpuTrainKernel(access), features: GPU_FEATURES},
    {kernelName: BatchNormTrainGrad, backendName, kernelFunc: gpuTrainGradKernel(access), features: GPU_FEATURES},
    {kernelName: BatchNormInfer, backendName, kernelFunc: gpuInferKernel(access), features: GPU_FEATURES},
  ];
}
