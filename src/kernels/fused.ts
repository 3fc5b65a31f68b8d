/**
 * The three fused kernels, written once against a `BufferAccess` that says where a backend keeps
 * its float32 data and which loops (plain JS, or SIMD WebAssembly in the wasm backend's heap) run
 * over it. Each kernel reads x at most twice and allocates nothing full-size beyond its
 * outputs; all per-channel arithmetic happens in float64 (coefficients.ts). The forward outputs are
 * y = (x − μ)·(γ/√(σ² + ε)) + β (normalizeChannels: folded into one multiply-add where that loses
 * nothing), so a channel of equal values gives exactly β and non-finite inputs give the IEEE result
 * of that formula, as on the composite path.
 *
 * They implement every extension of kernel_names.ts (FUSED_FEATURES): optional and any-shaped
 * gamma/beta, the moving-statistics update inside the training kernel, Batch Renormalization's r
 * and d between the statistics pass and the output pass, and ghost batches (groups.ts).
 */
import type {KernelFunc, TensorInfo} from '@tensorflow/tfjs-core';
import {BATCH_NORM_TRAIN_INPUTS, batchNormTrainOutputs} from '../kernel_names';
import type {BatchNormExtendedAttrs, BatchNormKernelFeatures, BatchNormTrainAttrs} from '../kernel_names';
import {channelLayout} from '../ops/channel_axes';
import {batchStatistics, gradientCoefficients, movingAverage, RenormInputs, renormCorrection, stddevFloat32,
  trainCoefficients, varianceFromStddev} from './coefficients';
import {groupGradientSums, groupMoments, Groups, groupsOf, groupValues} from './groups';
import {Loops, normalizeChannels, oneBlock} from './loops';

/** What the kernels of this file implement beyond the base interface (declared on their configs). */
export const FUSED_FEATURES: BatchNormKernelFeatures = {flexibleParams: true, movingUpdate: true, renorm: true, ghosts: true};

/** How a backend exposes tensor memory to the kernels, and the loops that run over it. */
export interface BufferAccess {
  /**
   * Allocates the outputs, then calls `body` with float32 views of the inputs (null for an absent
   * one) and outputs, and returns the outputs. Views are taken after every allocation (a wasm heap
   * may grow and move).
   */
  run(backend: unknown, inputs: Array<TensorInfo | undefined>, outputShapes: number[][],
      body: (ins: Array<Float32Array | null>, outs: Float32Array[]) => void): TensorInfo[];
  /**
   * The loops to run with per-channel arrays of `values` values (loops.ts, Blocks). Called before
   * `run`, so any memory they set aside is allocated before views are taken.
   */
  loops(backend: unknown, values: number): Loops;
}

type Inputs = Record<string, TensorInfo | undefined>;

/** The groups of x for these attributes (ghosts default 1). */
function groupsFor(x: TensorInfo, {axis, ghosts}: BatchNormExtendedAttrs): Groups {
  return groupsOf(channelLayout(x.shape, axis), x.shape[0], ghosts ?? 1);
}

/** The shape of dgamma and dbeta: gamma's, else the paramShape attribute, else [channels]. */
function paramShape(gamma: TensorInfo | undefined, attrs: BatchNormExtendedAttrs, channels: number): number[] {
  return gamma?.shape ?? attrs.paramShape ?? [channels];
}

/** A scalar input's value, or null when absent. */
function scalarOf(values: Float32Array | null): number | null {
  return values == null ? null : values[0];
}

/** The shape of each output a BatchNormTrain call can have (kernel_names.ts). */
function trainOutputShapes(ins: Inputs, groups: Groups): Record<string, number[]> {
  const perChannel = [groups.channels];
  const shapeOf = (name: string, fallback: string) => (ins[name] ?? ins[fallback])?.shape ?? [];
  return {y: (ins.x as TensorInfo).shape, mean: perChannel, variance: perChannel, r: perChannel, d: perChannel,
    movingMean: shapeOf('movingMean', 'movingMean'), movingVariance: shapeOf('movingVariance', 'movingMean'),
    movingStddev: shapeOf('movingStddev', 'movingStddev'), renormMean: shapeOf('renormMean', 'renormMean'),
    renormStddev: shapeOf('renormStddev', 'renormStddev'), groupVariance: [groupValues(groups)]};
}

/**
 * Forward in training mode (inputs x, gamma?, beta?; with the moving update movingMean,
 * movingVariance or, with renorm, movingStddev; with renorm renormMean, renormStddev and the scalars
 * rmin?, rmax?, dmax?). Outputs as kernel_names.ts's BatchNormTrain says: statistics pass, the
 * per-channel step (r and d, scale and offset, the updates), output pass.
 */
export function trainKernel(access: BufferAccess): KernelFunc {
  return ({inputs, backend, attrs}) => {
    const ins = inputs as Inputs;
    const a = attrs as unknown as BatchNormTrainAttrs;
    const groups = groupsFor(ins.x as TensorInfo, a);
    const parts = {moving: ins.movingMean != null, renorm: ins.renormMean != null, ghosts: groups.ghosts > 1};
    const names = batchNormTrainOutputs(parts);
    const shapes = trainOutputShapes(ins, groups);
    const loops = access.loops(backend, groupValues(groups));
    return access.run(backend, BATCH_NORM_TRAIN_INPUTS.map(n => ins[n]), names.map(n => shapes[n]), (views, outs) => {
      const v = Object.fromEntries(BATCH_NORM_TRAIN_INPUTS.map((n, i) => [n, views[i]]));
      const out = Object.fromEntries(names.map((n, i) => [n, outs[i]]));
      const x = v.x as Float32Array;
      const moments = groupMoments(loops, x, groups);
      const batch = batchStatistics(moments, groups);
      out.mean.set(batch.mean);
      out.variance.set(batch.variance);
      out.groupVariance?.set(moments.variance);
      const correction = parts.renorm ? renormCorrection(batch.mean, batch.variance, {renormMean: v.renormMean, renormStddev: v.renormStddev,
        rmin: scalarOf(v.rmin), rmax: scalarOf(v.rmax), dmax: scalarOf(v.dmax)} as RenormInputs, a.epsilon) : null;
      const {scale, offset} = trainCoefficients(moments.variance, groups, v.gamma, v.beta, a.epsilon, correction);
      normalizeChannels(loops, x, out.y, groups.blocks, moments.mean, scale, offset);
      if (correction != null) {
        out.r.set(correction.r);
        out.d.set(correction.d);
      }
      if (parts.moving) writeUpdates(v as Record<string, Float32Array>, out, a);
    });
  };
}

/**
 * The updated statistics, from the float32 mean and variance outputs, as the tf ops of
 * ops/renorm_ops.ts compute them: moving mean and variance toward them; with renorm, renorm mean
 * and stddev (renormMomentum) and moving stddev toward them and σ_B, and the moving variance from
 * the new moving stddev.
 */
function writeUpdates(v: Record<string, Float32Array>, out: Record<string, Float32Array>,
                      {epsilon, momentum, renormMomentum}: BatchNormTrainAttrs): void {
  const m = momentum as number;
  movingAverage(v.movingMean, out.mean, m, out.movingMean);
  if (out.renormMean == null) {
    movingAverage(v.movingVariance, out.variance, m, out.movingVariance);
    return;
  }
  const stddev = stddevFloat32(out.variance, epsilon);
  movingAverage(v.renormMean, out.mean, renormMomentum as number, out.renormMean);
  movingAverage(v.renormStddev, stddev, renormMomentum as number, out.renormStddev);
  movingAverage(v.movingStddev, stddev, m, out.movingStddev);
  varianceFromStddev(out.movingStddev, epsilon, out.movingVariance);
}

/**
 * Closed-form backward of trainKernel (inputs dy, x, gamma?, variance, dmean, dvariance; with renorm
 * r, d), folded into dx = a·dy + b·x + k per group (coefficients.ts), so the second pass is one
 * multiply-add chain. With ghost batches `variance` holds the per-group variances (the training
 * kernel's last output).
 */
export function trainGradKernel(access: BufferAccess): KernelFunc {
  return ({inputs, backend, attrs}) => {
    const ins = inputs as Inputs;
    const a = attrs as unknown as BatchNormExtendedAttrs;
    const x = ins.x as TensorInfo;
    const groups = groupsFor(x, a);
    const params = paramShape(ins.gamma, a, groups.channels);
    const loops = access.loops(backend, groupValues(groups));
    const names = ['dy', 'x', 'gamma', 'variance', 'dmean', 'dvariance', 'r', 'd'];
    return access.run(backend, names.map(n => ins[n]), [x.shape, params, params], (views, [dx, dgamma, dbeta]) => {
      const [dys, xs, gamma, variance, dmean, dvariance, r, d] = views as Float32Array[];
      const sums = groupGradientSums(loops, dys, xs, groups);
      const correction = r == null ? null : {r: Float64Array.from(r), d: Float64Array.from(d)};
      const c = gradientCoefficients({...sums, variance, gamma, correction, dmean, dvariance}, groups, a.epsilon);
      dgamma.set(c.dgamma);
      dbeta.set(c.dbeta);
      loops.gradientApply(dys, xs, dx, groups.blocks, c.a, c.b, c.k);
    });
  };
}

/** Forward in inference mode with given statistics (inputs x, mean, variance, gamma?, beta?; any per-channel shapes). */
export function inferKernel(access: BufferAccess): KernelFunc {
  return ({inputs, backend, attrs}) => {
    const ins = inputs as Inputs;
    const {axis, epsilon} = attrs as unknown as BatchNormExtendedAttrs;
    const x = ins.x as TensorInfo;
    const layout = channelLayout(x.shape, axis);
    const loops = access.loops(backend, layout.channels);
    const [y] = access.run(backend, [x, ins.mean, ins.variance, ins.gamma, ins.beta], [x.shape], ([xs, m, v, g, b], [out]) => {
      const scale = new Float64Array(layout.channels);
      const offset = new Float64Array(layout.channels);
      for (let c = 0; c < layout.channels; c++) {
        scale[c] = (g == null ? 1 : g[c]) / Math.sqrt((v as Float32Array)[c] + epsilon);
        offset[c] = b == null ? 0 : b[c];
      }
      normalizeChannels(loops, xs as Float32Array, out, oneBlock(layout), Float64Array.from(m as Float32Array), scale, offset);
    });
    return y;
  };
}
