/**
 * The numeric core of the fused kernels: loops over float32 arrays laid out as `Blocks` of
 * [outer, channels, inner] (one block, or one per sample with ghost batches: groups.ts). Backends
 * differ only in where the arrays live (see fused.ts) and in which `Loops` run over them: the plain
 * JS loops here everywhere, or the SIMD WebAssembly loops of simd.ts inside the wasm backend's
 * heap. Both do the same float64 arithmetic.
 *
 * Precision: sums are accumulated in float64 and shifted by the first value of each channel, so
 * the variance never suffers the `E[x²] − E[x]²` cancellation even for inputs like 1e4 ± 0.5.
 * Per-channel coefficients stay in float64; only the final element is rounded to float32.
 */
import type {ChannelLayout} from '../ops/channel_axes';

/**
 * Full-size arrays as `count` consecutive blocks, each laid out as `layout`; block b reads and
 * writes set b mod `sets` of the per-channel arrays, which hold `sets` sets of layout.channels
 * values one after the other.
 */
export interface Blocks {
  layout: ChannelLayout;
  count: number;
  sets: number;
}

/** One block of this layout: the arrays as they are. */
export function oneBlock(layout: ChannelLayout): Blocks {
  return {layout, count: 1, sets: 1};
}

/**
 * The four passes over full-size data, per channel c of a block (per-channel arrays are float64,
 * `sets` × channels entries; see Blocks).
 */
export interface Loops {
  /** sum[c] += Σ(x − shift[c]) and sumSq[c] += Σ(x − shift[c])² over channel c (one read of x). */
  momentSums(x: Float32Array, blocks: Blocks, shift: Float64Array, sum: Float64Array, sumSq: Float64Array): void;
  /** y = x·scale[c] + offset[c] for every element (one read of x, one write of y). */
  affine(x: Float32Array, y: Float32Array, blocks: Blocks, scale: Float64Array, offset: Float64Array): void;
  /** sumDy[c] += Σdy, sumDyXs[c] += Σdy·(x − shift[c]), sumXs[c] += Σ(x − shift[c]) (one read of dy and x). */
  gradientSums(dy: Float32Array, x: Float32Array, blocks: Blocks, shift: Float64Array,
               sumDy: Float64Array, sumDyXs: Float64Array, sumXs: Float64Array): void;
  /** dx = a[c]·dy + b[c]·x + k[c] for every element (one read of dy and x, one write of dx). */
  gradientApply(dy: Float32Array, x: Float32Array, dx: Float32Array, blocks: Blocks,
                a: Float64Array, b: Float64Array, k: Float64Array): void;
}

/** The same passes over one [outer, channels, inner] block. */
type BlockLoops = {[K in keyof Loops]: Loops[K] extends (...args: infer A) => void ?
  (...args: {[I in keyof A]: A[I] extends Blocks ? ChannelLayout : A[I]}) => void : never};

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

/** The plain JS loops over one block. */
const blockLoops: BlockLoops = {
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
 * Runs `f` on each block: the views of the full-size arrays and of the block's set of per-channel
 * arrays (subarrays, no copies).
 */
export function eachBlock(blocks: Blocks, full: Float32Array[], perChannel: Float64Array[],
                          f: (full: Float32Array[], layout: ChannelLayout, perChannel: Float64Array[]) => void): void {
  const {layout, count, sets} = blocks;
  if (count === 1) return f(full, layout, perChannel);
  const size = layout.outer * layout.channels * layout.inner;
  for (let b = 0; b < count; b++) {
    const set = (b % sets) * layout.channels;
    f(full.map(a => a.subarray(b * size, (b + 1) * size)), layout, perChannel.map(a => a.subarray(set, set + layout.channels)));
  }
}

/** The plain JS loops: run on every backend whose data JS can see (cpu, and wasm as fallback). */
export const jsLoops: Loops = {
  momentSums: (x, blocks, shift, sum, sumSq) =>
    eachBlock(blocks, [x], [shift, sum, sumSq], ([xb], layout, [p, q, r]) => blockLoops.momentSums(xb, layout, p, q, r)),
  affine: (x, y, blocks, scale, offset) =>
    eachBlock(blocks, [x, y], [scale, offset], ([xb, yb], layout, [p, q]) => blockLoops.affine(xb, yb, layout, p, q)),
  gradientSums: (dy, x, blocks, shift, sumDy, sumDyXs, sumXs) =>
    eachBlock(blocks, [dy, x], [shift, sumDy, sumDyXs, sumXs], ([dyb, xb], layout, [p, q, r, t]) => blockLoops.gradientSums(dyb, xb, layout, p, q, r, t)),
  gradientApply: (dy, x, dx, blocks, a, b, k) =>
    eachBlock(blocks, [dy, x, dx], [a, b, k], ([dyb, xb, dxb], layout, [p, q, r]) => blockLoops.gradientApply(dyb, xb, dxb, layout, p, q, r)),
};

/**
 * y = (x − center[c])·scale[c] + offset[c], element by element in memory order: the exact form of
 * the normalization, for the rare problems where the fast affine's folded offset (offset −
 * center·scale) would cancel digits away or be ∞ − ∞ (see normalizeChannels). Not tuned: it runs
 * only for channels of equal values with a small epsilon, huge values, or infinite scales.
 */
export function affineCentered(x: Float32Array, y: Float32Array, blocks: Blocks,
                               center: Float64Array, scale: Float64Array, offset: Float64Array): void {
  eachBlock(blocks, [x, y], [center, scale, offset], ([xb, yb], {outer, channels, inner}, [m, s, o]) => {
    for (let j = 0, i = 0; j < outer; j++) {
      for (let c = 0; c < channels; c++) {
        for (const end = i + inner; i < end; i++) yb[i] = (xb[i] - m[c]) * s[c] + o[c];
      }
    }
  });
}

/**
 * The largest |center·scale| for which the fast affine x·scale + (offset − center·scale) is used:
 * its float64 rounding is then below 2^24·2^-53 = 2^-29 in absolute terms, far below float32's
 * resolution of any output that is not itself tiny. Beyond it (a channel of equal values with a
 * small epsilon, or values like 3e13) the terms cancel and affineCentered runs.
 */
const MAX_FOLDED = 2 ** 24;

/**
 * y = (x − center)·scale + offset per channel (per set of channels: see Blocks): through the loops' fast affine when every channel
 * folds safely (finite scale, |center·scale| <= 2^24), else through affineCentered, so that a
 * channel of equal values gives exactly `offset` (β) and infinite scales give the IEEE value of the
 * formula, as on the tf-ops path.
 */
export function normalizeChannels(loops: Loops, x: Float32Array, y: Float32Array, blocks: Blocks,
                                  center: Float64Array, scale: Float64Array, offset: Float64Array): void {
  const folded = new Float64Array(scale.length);
  for (let c = 0; c < scale.length; c++) {
    const shift = center[c] * scale[c];
    if (!(Number.isFinite(scale[c]) && Math.abs(shift) <= MAX_FOLDED)) return affineCentered(x, y, blocks, center, scale, offset);
    folded[c] = offset[c] - shift;
  }
  loops.affine(x, y, blocks, scale, folded);
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
