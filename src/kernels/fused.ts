/**
 * The three fused kernels, written once against a `BufferAccess` that says where a backend keeps
 * its float32 data and which loops (plain JS, or SIMD WebAssembly in the wasm backend's heap) run
 * over it. Each kernel reads x at most twice and allocates nothing full-size beyond its
 * outputs; all per-channel arithmetic happens in float64. The forward outputs are
 * y = (x − μ)·(γ/√(σ² + ε)) + β (normalizeChannels: folded into one multiply-add where that loses
 * nothing), so a channel of equal values gives exactly β and non-finite inputs give the IEEE result
 * of that formula, as on the composite path.
 */
import type {KernelFunc, TensorInfo} from '@tensorflow/tfjs-core';
import type {BatchNormAttrs} from '../kernel_names';
import {channelLayout} from '../ops/channel_axes';
import {channelMoments, gradientSums, Loops, normalizeChannels} from './loops';

/** How a backend exposes tensor memory to the kernels, and the loops that run over it. */
export interface BufferAccess {
  /**
   * Allocates the outputs, then calls `body` with float32 views of the inputs and outputs, and
   * returns the outputs. Views are taken after every allocation (a wasm heap may grow and move).
   */
  run(backend: unknown, inputs: TensorInfo[], outputShapes: number[][],
      body: (ins: Float32Array[], outs: Float32Array[]) => void): TensorInfo[];
  /**
   * The loops to run for a problem with `channels` channels. Called before `run`, so any memory
   * they set aside is allocated before views are taken.
   */
  loops(backend: unknown, channels: number): Loops;
}

function attrsOf(attrs: unknown): BatchNormAttrs {
  return attrs as BatchNormAttrs;
}

/** Forward in training mode: y, batch mean and biased batch variance (inputs x, gamma, beta). */
export function trainKernel(access: BufferAccess): KernelFunc {
  return ({inputs, backend, attrs}) => {
    const {x, gamma, beta} = inputs as {x: TensorInfo; gamma: TensorInfo; beta: TensorInfo};
    const {axis, epsilon} = attrsOf(attrs);
    const layout = channelLayout(x.shape, axis);
    const perChannel = [layout.channels];
    const loops = access.loops(backend, layout.channels);
    return access.run(backend, [x, gamma, beta], [x.shape, perChannel, perChannel], ([xs, g, b], [y, mean, variance]) => {
      const moments = channelMoments(loops, xs, layout);
      const scale = new Float64Array(layout.channels);
      for (let c = 0; c < layout.channels; c++) {
        const s = g[c] / Math.sqrt(moments.variance[c] + epsilon);
        // Variance 0: every x equals the mean, so y = 0·s + β exactly (NaN for an infinite s, as IEEE says).
        scale[c] = moments.variance[c] === 0 ? 0 * s : s;
        mean[c] = moments.mean[c];
        variance[c] = moments.variance[c];
      }
      normalizeChannels(loops, xs, y, layout, moments.mean, scale, Float64Array.from(b));
    });
  };
}

/**
 * Closed-form backward of trainKernel (inputs dy, x, gamma, variance, dmean, dvariance):
 *   dx = γ·r·dy − γ·r·Σdy/N − γ·r³·(x−μ)·Σdy(x−μ)/N + dμ/N + 2·dσ²·(x−μ)/N,  r = 1/√(σ²+ε)
 * folded into dx = a·dy + b·x + k per channel, so the second pass is one multiply-add chain.
 */
export function trainGradKernel(access: BufferAccess): KernelFunc {
  return ({inputs, backend, attrs}) => {
    const {dy, x, gamma, variance, dmean, dvariance} =
        inputs as {dy: TensorInfo; x: TensorInfo; gamma: TensorInfo; variance: TensorInfo; dmean: TensorInfo; dvariance: TensorInfo};
    const {axis, epsilon} = attrsOf(attrs);
    const layout = channelLayout(x.shape, axis);
    const perChannel = [layout.channels];
    const n = layout.outer * layout.inner;
    const loops = access.loops(backend, layout.channels);
    return access.run(backend, [dy, x, gamma, variance, dmean, dvariance], [x.shape, perChannel, perChannel],
        ([dys, xs, g, v, dm, dv], [dx, dgamma, dbeta]) => {
          const sums = gradientSums(loops, dys, xs, layout);
          const a = new Float64Array(layout.channels);
          const b = new Float64Array(layout.channels);
          const k = new Float64Array(layout.channels);
          for (let c = 0; c < layout.channels; c++) {
            const r = 1 / Math.sqrt(v[c] + epsilon);
            a[c] = g[c] * r;
            b[c] = -g[c] * r * r * r * sums.sumDyXc[c] / n + 2 * dv[c] / n;
            k[c] = -a[c] * sums.sumDy[c] / n + dm[c] / n - b[c] * sums.mean[c];
            dgamma[c] = r * sums.sumDyXc[c];
            dbeta[c] = sums.sumDy[c];
          }
          loops.gradientApply(dys, xs, dx, layout, a, b, k);
        });
  };
}

/** Forward in inference mode with given statistics (inputs x, mean, variance, gamma, beta). */
export function inferKernel(access: BufferAccess): KernelFunc {
  return ({inputs, backend, attrs}) => {
    const {x, mean, variance, gamma, beta} =
        inputs as {x: TensorInfo; mean: TensorInfo; variance: TensorInfo; gamma: TensorInfo; beta: TensorInfo};
    const {axis, epsilon} = attrsOf(attrs);
    const layout = channelLayout(x.shape, axis);
    const loops = access.loops(backend, layout.channels);
    const [y] = access.run(backend, [x, mean, variance, gamma, beta], [x.shape], ([xs, m, v, g, b], [out]) => {
      const scale = new Float64Array(layout.channels);
      for (let c = 0; c < layout.channels; c++) scale[c] = g[c] / Math.sqrt(v[c] + epsilon);
      normalizeChannels(loops, xs, out, layout, Float64Array.from(m), scale, Float64Array.from(b));
    });
    return y;
  };
}
