/**
 * Batch statistics from tf ops, for every path without a fused kernel (any backend, any channel
 * axes, masked or not). float32 sums of values like 1e4 ± 0.5 lose the spread, so the statistics
 * are taken in two passes: a rough mean (the shift), then sums of x − shift. The shift is a
 * constant to the tape: the statistics do not depend on it, and its gradient, which cancels exactly
 * in real arithmetic, would cancel only approximately in float32 (about 6e-4 off at the first
 * element of a channel of 48000 values).
 */
import {add, cast, div, fill, isFinite, max, mean, mul, slice, square, sub, sum, Tensor, where, zerosLike} from '@tensorflow/tfjs-core';
import type {BroadcastGeometry} from './channel_axes';
import {stopGradient} from './stop_gradient';

/**
 * Keras' backend epsilon (1e-7), which Keras 3 adds to the sum of mask weights so that a channel
 * whose positions are all masked gets mean 0 and variance 0 instead of NaN.
 */
export const KERAS_BACKEND_EPSILON = 1e-7;

/** Per-channel statistics (in the broadcast shape) and what their gradients need. */
export interface Moments {
  mean: Tensor;
  /** Biased: divided by `count`. */
  variance: Tensor;
  /** x − mean, computed as (x − shift) − (mean − shift) so that it keeps its digits. */
  centered: Tensor;
  /** One weight per element of x (a mask broadcast to x's shape), or null when unmasked. */
  weights: Tensor | null;
  /** What the sums are divided by: N values per channel, or Σw + 1e-7 per channel when masked. */
  count: Tensor | number;
}

/** t with its non-finite values replaced by 0. */
function finiteOrZero(t: Tensor): Tensor {
  return where(isFinite(t), t, zerosLike(t));
}

/** Mask weights and their per-channel sums: Σw, and Σw + 1e-7 (what Keras divides by). */
interface Weighting {
  weights: Tensor;
  total: Tensor;
  count: Tensor;
}

/**
 * The shift: a first float32 pass of the (weighted) mean, itself taken around one value of each
 * channel that counts, its anchor. It only has to land within a few spreads of the true mean for
 * the second pass to keep every digit. The first pass errs by about |anchor − mean|·√n·2⁻²⁴ on a
 * backend that sums in float32 (wasm, webgl, webgpu), and a value that counts is never more than
 * √n spreads from the mean, so that error stays below n·2⁻²⁴ spreads.
 * Unmasked, the anchor is the channel's first value. Masked, it is the largest value the mask keeps:
 * the first value may be a masked-out position holding anything (1e7 among data of 1e4 ± 0.5 put
 * wasm's shift 118 off, and y 1e-3 off), and the mask leaves it out of the spread.
 * Weighted, the shift is (anchor·Σw + Σw·(x − anchor))/(Σw + 1e-7), so a channel with every
 * position masked gets the shift 0 (and mean 0, as Keras). Non-finite values become 0, so an
 * infinite value gives the IEEE mean (±Infinity) wherever it sits, as on the fused path.
 */
function shiftOf(x: Tensor, {reduce, perChannelShape}: BroadcastGeometry, weighting: Weighting | null): Tensor {
  return stopGradient(() => {
    if (weighting == null) {
      const first = finiteOrZero(slice(x, x.shape.map(() => 0), perChannelShape));
      return finiteOrZero(add(first, mean(sub(x, first), reduce, true)));
    }
    const {weights, total, count} = weighting;
    // A full-size -Infinity, not a scalar: where() would broadcast the scalar with a tile (wasm: 16 ms
    // against 3 ms for [64, 50, 64]).
    const anchor = finiteOrZero(max(where(cast(weights, 'bool'), x, fill(x.shape, -Infinity)), reduce, true));
    return finiteOrZero(div(add(mul(anchor, total), sum(mul(weights, sub(x, anchor)), reduce, true)), count));
  });
}

/**
 * Mean and biased variance per channel. With `weights` (a 0/1 mask broadcast to x's shape) they are
 * Keras 3's masked `_moments`: mean = Σw·x / (Σw + 1e-7), variance = Σw·(x − mean)² / (Σw + 1e-7).
 */
export function compositeMoments(x: Tensor, geometry: BroadcastGeometry, weights: Tensor | null): Moments {
  const {reduce} = geometry;
  if (weights == null) {
    const count = x.size / geometry.perChannelShape.reduce((n, d) => n * d, 1);
    const shift = shiftOf(x, geometry, null);
    const shifted = sub(x, shift);
    const meanShifted = mean(shifted, reduce, true);
    const centered = sub(shifted, meanShifted);
    return {mean: add(shift, meanShifted), variance: mean(square(centered), reduce, true), centered, weights, count};
  }
  const total = sum(weights, reduce, true);
  const count = add(total, KERAS_BACKEND_EPSILON);
  const shift = shiftOf(x, geometry, {weights, total, count});
  const shifted = sub(x, shift);
  // Σw·x/count = shift·Σw/count + Σw·(x − shift)/count, and shift·Σw/count − shift = −shift·1e-7/count.
  const meanShifted = sub(div(sum(mul(weights, shifted), reduce, true), count), div(mul(shift, KERAS_BACKEND_EPSILON), count));
  const centered = sub(shifted, meanShifted);
  const variance = div(sum(mul(weights, square(centered)), reduce, true), count);
  return {mean: add(shift, meanShifted), variance, centered, weights, count};
}
