/**
 * The numeric core of the fused kernels: loops over float32 arrays laid out as
 * [outer, channels, inner]. Backends differ only in where the arrays live (see fused.ts) and in
 * which `Loops` run over them: the plain JS loops here everywhere, or the SIMD WebAssembly loops
 * of simd.ts inside the wasm backend's heap. Both do the same float64 arithmetic.
 *
 * Precision: sums are accumulated in float64 and shifted by the first value of each channel, so
 * the variance never suffers the `E[x²] − E[x]²` cancellation even for inputs like 1e4 ± 0.5.
 * Per-channel coefficients stay in float64; only the final element is rounded to float32.
 */
import type {ChannelLayout} from '../ops/channel_axes';

/** The four passes over full-size data. Per-channel arrays are float64 with `channels` entries. */
export interface Loops {
  /** sum[c] += Σ(x − shift[c]) and sumSq[c] += Σ(x − shift[c])² over channel c (one read of x). */
  momentSums(x: Float32Array, layout: ChannelLayout, shift: Float64Array, sum: Float64Array, sumSq: Float64Array): void;
  /** y = x·scale[c] + offset[c] for every element (one read of x, one write of y). */
  affine(x: Float32Array, y: Float32Array, layout: ChannelLayout, scale: Float64Array, offset: Float64Array): void;
  /** sumDy[c] += Σdy, sumDyXs[c] += Σdy·(x − shift[c]), sumXs[c] += Σ(x − shift[c]) (one read of dy and x). */
  gradientSums(dy: Float32Array, x: Float32Array, layout: ChannelLayout, shift: Float64Array,
               sumDy: Float64Array, sumDyXs: Float64Array, sumXs: Float64Array): void;
  /** dx = a[c]·dy + b[c]·x + k[c] for every element (one read of dy and x, one write of dx). */
  gradientApply(dy: Float32Array, x: Float32Array, dx: Float32Array, layout: ChannelLayout,
                a: Float64Array, b: Float64Array, k: Float64Array): void;
}

/**
 * Rows per block in the channels-last JS loops: about 16 KB of float32, so a block stays in the L1
 * cache while each channel walks its column of it (measured about 2× faster than visiting every
 * value in memory order, which reads and writes a per-channel sum for every value).
 *
 * The four passes below share their loop shape on purpose: walking the pieces through a shared
 * callback, or a shared stride variable, measured 10–60% slower (affine 3.9 → 6.4 ms at
 * [32,32,32,64]) because V8 then no longer specializes each inner loop.
 */
function blockRows(channels: number): number {
  return Math.max(8, Math.floor(4096 / channels));
}

/** The plain JS loops: run on every backend whose data JS can see (cpu, and wasm as fallback). */
export const jsLoops: Loops = {
  momentSums(x, {outer, channels, inner}, shift, sum, sumSq) {
    if (inner === 1) {
      // Channels-last: channel c is every channels-th value. Walk it block by block (see blockRows),
      // so the sums stay in registers instead of being read and written back for every value.
      const rows = blockRows(channels);
      for (let o = 0; o < outer; o += rows) {
        const end = Math.min(outer, o + rows) * channels;
        for (let c = 0; c < channels; c++) {
          const k = shift[c];
          let s = 0;
          let s2 = 0;
          for (let i = o * channels + c; i < end; i += channels) {
            const d = x[i] - k;
            s += d;
            s2 += d * d;
          }
          sum[c] += s;
          sumSq[c] += s2;
        }
      }
      return;
    }
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
  },

  affine(x, y, {outer, channels, inner}, scale, offset) {
    if (inner === 1) {
      const rows = blockRows(channels);
      for (let o = 0; o < outer; o += rows) {
        const end = Math.min(outer, o + rows) * channels;
        for (let c = 0; c < channels; c++) {
          const a = scale[c];
          const b = offset[c];
          for (let i = o * channels + c; i < end; i += channels) y[i] = x[i] * a + b;
        }
      }
      return;
    }
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++) {
        const a = scale[c];
        const b = offset[c];
        for (let i = (o * channels + c) * inner, end = i + inner; i < end; i++) y[i] = x[i] * a + b;
      }
    }
  },

  gradientSums(dy, x, {outer, channels, inner}, shift, sumDy, sumDyXs, sumXs) {
    if (inner === 1) {
      const rows = blockRows(channels);
      for (let o = 0; o < outer; o += rows) {
        const end = Math.min(outer, o + rows) * channels;
        for (let c = 0; c < channels; c++) {
          const k = shift[c];
          let s = 0;
          let sd = 0;
          let sx = 0;
          for (let i = o * channels + c; i < end; i += channels) {
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
      return;
    }
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
  },

  gradientApply(dy, x, dx, {outer, channels, inner}, a, b, k) {
    if (inner === 1) {
      const rows = blockRows(channels);
      for (let o = 0; o < outer; o += rows) {
        const end = Math.min(outer, o + rows) * channels;
        for (let c = 0; c < channels; c++) {
          const ac = a[c];
          const bc = b[c];
          const kc = k[c];
          for (let i = o * channels + c; i < end; i += channels) dx[i] = ac * dy[i] + bc * x[i] + kc;
        }
      }
      return;
    }
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++) {
        const ac = a[c];
        const bc = b[c];
        const kc = k[c];
        for (let i = (o * channels + c) * inner, end = i + inner; i < end; i++) dx[i] = ac * dy[i] + bc * x[i] + kc;
      }
    }
  },
};

/**
 * y = (x − center[c])·scale[c] + offset[c], element by element in memory order: the exact form of
 * the normalization, for the rare problems where the fast affine's folded offset (offset −
 * center·scale) would cancel digits away or be ∞ − ∞ (see normalizeChannels). Not tuned: it runs
 * only for channels of equal values with a small epsilon, huge values, or infinite scales.
 */
export function affineCentered(x: Float32Array, y: Float32Array, {outer, channels, inner}: ChannelLayout,
                               center: Float64Array, scale: Float64Array, offset: Float64Array): void {
  for (let o = 0, i = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      for (const end = i + inner; i < end; i++) y[i] = (x[i] - center[c]) * scale[c] + offset[c];
    }
  }
}

/**
 * The largest |center·scale| for which the fast affine x·scale + (offset − center·scale) is used:
 * its float64 rounding is then below 2^24·2^-53 = 2^-29 in absolute terms, far below float32's
 * resolution of any output that is not itself tiny. Beyond it (a channel of equal values with a
 * small epsilon, or values like 3e13) the terms cancel and affineCentered runs.
 */
const MAX_FOLDED = 2 ** 24;

/**
 * y = (x − center)·scale + offset per channel: through the loops' fast affine when every channel
 * folds safely (finite scale, |center·scale| <= 2^24), else through affineCentered, so that a
 * channel of equal values gives exactly `offset` (β) and infinite scales give the IEEE value of the
 * formula, as on the tf-ops path.
 */
export function normalizeChannels(loops: Loops, x: Float32Array, y: Float32Array, layout: ChannelLayout,
                                  center: Float64Array, scale: Float64Array, offset: Float64Array): void {
  const folded = new Float64Array(layout.channels);
  for (let c = 0; c < layout.channels; c++) {
    const shift = center[c] * scale[c];
    if (!(Number.isFinite(scale[c]) && Math.abs(shift) <= MAX_FOLDED)) return affineCentered(x, y, layout, center, scale, offset);
    folded[c] = offset[c] - shift;
  }
  loops.affine(x, y, layout, scale, folded);
}

/**
 * The shift of each channel: its first value, close enough to the mean to keep the sums small; 0
 * when that value is not finite, so that an infinite value gives the IEEE mean (±Infinity, or NaN
 * for both signs) wherever it sits in the channel, as on the composite path.
 */
export function channelShift(x: Float32Array, {channels, inner}: ChannelLayout): Float64Array {
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const first = x[c * inner];
    shift[c] = Number.isFinite(first) ? first : 0;
  }
  return shift;
}
