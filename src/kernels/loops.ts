/**
 * The numeric core of the fused kernels: plain loops over typed arrays laid out as
 * [outer, channels, inner]. Backends differ only in where the arrays live (see fused.ts), so the
 * cpu and wasm kernels share these loops.
 *
 * Precision: sums are accumulated in JS numbers (float64) and shifted by the first value of each
 * channel, so the variance never suffers the `E[x²] − E[x]²` cancellation even for inputs like
 * 1e4 ± 0.5. Per-channel coefficients stay in float64; only the final element is rounded to float32.
 */
import type {ChannelLayout} from '../ops/channel_axes';

/** Float64 per-channel mean and biased variance of x (statistics pass: one read of x). */
export function channelMoments(x: Float32Array, {outer, channels, inner}: ChannelLayout): {mean: Float64Array; variance: Float64Array} {
  const n = outer * inner;
  const shift = new Float64Array(channels);
  const sum = new Float64Array(channels);
  const sumSq = new Float64Array(channels);
  for (let c = 0; c < channels; c++) shift[c] = x[c * inner];
  if (inner === 1) {
    // Channels-last: consecutive values belong to consecutive channels.
    for (let o = 0, i = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++, i++) {
        const d = x[i] - shift[c];
        sum[c] += d;
        sumSq[c] += d * d;
      }
    }
  } else {
    // Channels-first (or any inner block): each channel owns runs of `inner` consecutive values.
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++) {
        const k = shift[c];
        let s = 0;
        let s2 = 0;
        for (let i = (o * channels + c) * inner, end = i + inner; i < end; i++) {
          const d = x[i] - k;
          s += d;
          s2 += d * d;
        }
        sum[c] += s;
        sumSq[c] += s2;
      }
    }
  }
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const m = sum[c] / n;
    mean[c] = shift[c] + m;
    // Clamp: rounding can leave a tiny negative number when all values are equal.
    variance[c] = Math.max(0, sumSq[c] / n - m * m);
  }
  return {mean, variance};
}

/** y = x·scale[c] + offset[c] for every element (one read of x, one write of y). */
export function affinePerChannel(
    x: Float32Array, y: Float32Array, {outer, channels, inner}: ChannelLayout, scale: Float64Array, offset: Float64Array): void {
  if (inner === 1) {
    for (let o = 0, i = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++, i++) y[i] = x[i] * scale[c] + offset[c];
    }
  } else {
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++) {
        const a = scale[c];
        const b = offset[c];
        for (let i = (o * channels + c) * inner, end = i + inner; i < end; i++) y[i] = x[i] * a + b;
      }
    }
  }
}

/** out[c] = a·dy + b·x + k folded per channel: dx = scaleDy[c]·dy + scaleX[c]·x + offset[c]. */
export function gradientPerChannel(
    dy: Float32Array, x: Float32Array, dx: Float32Array, {outer, channels, inner}: ChannelLayout,
    scaleDy: Float64Array, scaleX: Float64Array, offset: Float64Array): void {
  if (inner === 1) {
    for (let o = 0, i = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++, i++) dx[i] = scaleDy[c] * dy[i] + scaleX[c] * x[i] + offset[c];
    }
  } else {
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++) {
        const a = scaleDy[c];
        const b = scaleX[c];
        const k = offset[c];
        for (let i = (o * channels + c) * inner, end = i + inner; i < end; i++) dx[i] = a * dy[i] + b * x[i] + k;
      }
    }
  }
}

/**
 * Per-channel Σdy, Σdy·(x − mean) and the float64 mean, in one read of dy and x. The mean is
 * recomputed here (shifted, like channelMoments) instead of taken from the float32 `mean` output,
 * whose rounding (about 1e-3 for values near 1e4) would otherwise leak into every gradient.
 */
export function gradientSums(dy: Float32Array, x: Float32Array, {outer, channels, inner}: ChannelLayout):
    {sumDy: Float64Array; sumDyXc: Float64Array; mean: Float64Array} {
  const n = outer * inner;
  const shift = new Float64Array(channels);
  const sumDy = new Float64Array(channels);
  const sumDyXs = new Float64Array(channels);
  const sumXs = new Float64Array(channels);
  for (let c = 0; c < channels; c++) shift[c] = x[c * inner];
  if (inner === 1) {
    for (let o = 0, i = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++, i++) {
        const g = dy[i];
        const d = x[i] - shift[c];
        sumDy[c] += g;
        sumDyXs[c] += g * d;
        sumXs[c] += d;
      }
    }
  } else {
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++) {
        const k = shift[c];
        let s = 0;
        let sd = 0;
        let sx = 0;
        for (let i = (o * channels + c) * inner, end = i + inner; i < end; i++) {
          const g = dy[i];
          const d = x[i] - k;
          s += g;
          sd += g * d;
          sx += d;
        }
        sumDy[c] += s;
        sumDyXs[c] += sd;
        sumXs[c] += sx;
      }
    }
  }
  const mean = new Float64Array(channels);
  const sumDyXc = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const offset = sumXs[c] / n;  // mean − shift, exact enough in float64
    mean[c] = shift[c] + offset;
    sumDyXc[c] = sumDyXs[c] - offset * sumDy[c];
  }
  return {sumDy, sumDyXc, mean};
}
