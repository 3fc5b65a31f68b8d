/**
 * The statistics groups of the fused kernels: (ghost batch, channel) pairs, or the channels alone
 * without ghost batches. x is [outer, channels, inner] in memory (adjacent channel axes); with k
 * ghost batches, ghost batch j holds samples j, j + k, j + 2k, … of the batch axis, so the
 * statistics are taken per (sample mod k, channel), without moving any data:
 *
 * - no ghost batches: one block, the whole of x (the layout as is);
 * - one sample per `outer` row (dense [B, C], channels-first [B, C, H·W]): x is [B/k, k·C, inner]
 *   in memory, with (ghost, channel) pairs as k·C adjacent channels: one block again;
 * - otherwise (channels-last [B, H·W, C], …): one block per sample, [rows, channels, inner], each
 *   with the per-channel arrays of its ghost batch (loops.ts, Blocks).
 *
 * Per-group arrays are indexed ghost·channels + channel in every case, and the loops (loops.ts, or
 * the SIMD ones) walk every layout in one call.
 */
import type {ChannelLayout} from '../ops/channel_axes';
import {Blocks, channelShift, Loops, oneBlock} from './loops';

/** How x's statistics split into groups, and the blocks the loops walk. */
export interface Groups {
  /** x's channel count C. */
  channels: number;
  /** Ghost batches k (1 without). */
  ghosts: number;
  /** Values per group: N / k. */
  count: number;
  blocks: Blocks;
}

/** The groups of x (layout = x's [outer, channels, inner], `batch` = x's first dimension) with k ghost batches. */
export function groupsOf(layout: ChannelLayout, batch: number, ghosts: number): Groups {
  const {outer, channels, inner} = layout;
  const count = outer * inner / ghosts;
  if (ghosts === 1) return {channels, ghosts, count, blocks: oneBlock(layout)};
  const rows = outer / batch;
  const blocks = rows === 1 ? oneBlock({outer: batch / ghosts, channels: ghosts * channels, inner}) :
    {layout: {outer: rows, channels, inner}, count: batch, sets: ghosts};
  return {channels, ghosts, count, blocks};
}

/** Values in each per-group array. */
export function groupValues(groups: Groups): number {
  return groups.ghosts * groups.channels;
}

/**
 * The shift of each group: its first value (0 if not finite), close enough to the mean to keep the
 * sums small; the first block of each set holds its first values.
 */
function groupShift(x: Float32Array, {blocks}: Groups): Float64Array {
  const {layout, sets} = blocks;
  const blockSize = layout.outer * layout.channels * layout.inner;
  const shift = new Float64Array(sets * layout.channels);
  for (let s = 0; s < sets; s++) shift.set(channelShift(x.subarray(s * blockSize), layout), s * layout.channels);
  return shift;
}

/** Float64 mean and biased variance of every group (statistics pass: one read of x). */
export function groupMoments(loops: Loops, x: Float32Array, groups: Groups): {mean: Float64Array; variance: Float64Array} {
  const size = groupValues(groups);
  const shift = groupShift(x, groups);
  const sum = new Float64Array(size);
  const sumSq = new Float64Array(size);
  loops.momentSums(x, groups.blocks, shift, sum, sumSq);
  const mean = new Float64Array(size);
  const variance = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const m = sum[i] / groups.count;
    mean[i] = shift[i] + m;
    // Clamp: rounding can leave a tiny negative number when all values are equal.
    variance[i] = Math.max(0, sumSq[i] / groups.count - m * m);
  }
  return {mean, variance};
}

/**
 * Per-group Σdy, Σdy·(x − mean) and the float64 mean, in one read of dy and x. The mean is
 * recomputed here (shifted, like groupMoments) instead of taken from the float32 `mean` output,
 * whose rounding (about 1e-3 for values near 1e4) would otherwise leak into every gradient.
 */
export function groupGradientSums(loops: Loops, dy: Float32Array, x: Float32Array, groups: Groups):
    {sumDy: Float64Array; sumDyXc: Float64Array; mean: Float64Array} {
  const size = groupValues(groups);
  const shift = groupShift(x, groups);
  const sumDy = new Float64Array(size);
  const sumDyXs = new Float64Array(size);
  const sumXs = new Float64Array(size);
  loops.gradientSums(dy, x, groups.blocks, shift, sumDy, sumDyXs, sumXs);
  const mean = new Float64Array(size);
  const sumDyXc = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const offset = sumXs[i] / groups.count;  // mean − shift, exact enough in float64
    mean[i] = shift[i] + offset;
    sumDyXc[i] = sumDyXs[i] - offset * sumDy[i];
  }
  return {sumDy, sumDyXc, mean};
}
