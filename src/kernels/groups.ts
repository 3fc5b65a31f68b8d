/**
 * The statistics groups of the fused kernels: (ghost batch, channel) pairs, or the channels alone
 * without ghost batches. x is [outer, channels, inner] in memory (adjacent channel axes); with k
 * ghost batches, ghost batch j holds samples j, j + k, j + 2k, … of the batch axis, so the
 * statistics are taken per (sample mod k, channel), without moving any data:
 *
 * - no ghost batches: one block, the whole of x, with `channels` accumulators (the layout as is);
 * - one sample per `outer` row (dense [B, C], channels-first [B, C, H·W]): x is [B/k, k·C, inner]
 *   in memory, with (ghost, channel) pairs as k·C adjacent channels: one block again;
 * - otherwise (channels-last [B, H·W, C], …): one block per sample, each [rows, channels, inner],
 *   using the accumulators of its ghost batch.
 *
 * Accumulators are indexed ghost·channels + channel. The loops run over each block unchanged
 * (loops.ts, or the SIMD ones), so every layout keeps the tuned loops.
 */
import type {ChannelLayout} from '../ops/channel_axes';
import {channelShift, Loops} from './loops';

/** A run of x that the loops walk as one [outer, channels, inner] problem. */
export interface Block {
  /** Element range of the block in x. */
  start: number;
  end: number;
  layout: ChannelLayout;
  /** Accumulator index of the block's channel 0. */
  first: number;
}

/** How x's statistics split into groups, and the blocks that cover x. */
export interface Groups {
  /** x's channel count C. */
  channels: number;
  /** Ghost batches k (1 without). */
  ghosts: number;
  /** Values per group: N / k. */
  count: number;
  blocks: Block[];
  /** The largest block channel count (what the loops must make room for). */
  blockChannels: number;
}

/** The groups of x (layout = x's [outer, channels, inner], `batch` = x's first dimension) with k ghost batches. */
export function groupsOf(layout: ChannelLayout, batch: number, ghosts: number): Groups {
  const {outer, channels, inner} = layout;
  const size = outer * channels * inner;
  const count = outer * inner / ghosts;
  const single = (blockLayout: ChannelLayout): Groups =>
    ({channels, ghosts, count, blocks: [{start: 0, end: size, layout: blockLayout, first: 0}], blockChannels: blockLayout.channels});
  if (ghosts === 1) return single(layout);
  const rows = outer / batch;
  if (rows === 1) return single({outer: batch / ghosts, channels: ghosts * channels, inner});
  const sampleSize = rows * channels * inner;
  const blocks = Array.from({length: batch}, (_, b) => ({
    start: b * sampleSize, end: (b + 1) * sampleSize, layout: {outer: rows, channels, inner}, first: (b % ghosts) * channels,
  }));
  return {channels, ghosts, count, blocks, blockChannels: channels};
}

/** The part of a per-group array that a block uses. */
function part(a: Float64Array, block: Block): Float64Array {
  return a.subarray(block.first, block.first + block.layout.channels);
}

/**
 * The shift of each group: its first value (0 if not finite), close enough to the mean to keep the
 * sums small; the first block of each ghost batch holds its first values.
 */
function groupShift(x: Float32Array, groups: Groups): Float64Array {
  const shift = new Float64Array(groups.ghosts * groups.channels);
  for (const block of groups.blocks.slice(0, groups.blocks.length === 1 ? 1 : groups.ghosts)) {
    part(shift, block).set(channelShift(x.subarray(block.start, block.end), block.layout));
  }
  return shift;
}

/** Float64 mean and biased variance of every group (statistics pass: one read of x). */
export function groupMoments(loops: Loops, x: Float32Array, groups: Groups): {mean: Float64Array; variance: Float64Array} {
  const size = groups.ghosts * groups.channels;
  const shift = groupShift(x, groups);
  const sum = new Float64Array(size);
  const sumSq = new Float64Array(size);
  for (const block of groups.blocks) {
    loops.momentSums(x.subarray(block.start, block.end), block.layout, part(shift, block), part(sum, block), part(sumSq, block));
  }
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
  const size = groups.ghosts * groups.channels;
  const shift = groupShift(x, groups);
  const sumDy = new Float64Array(size);
  const sumDyXs = new Float64Array(size);
  const sumXs = new Float64Array(size);
  for (const block of groups.blocks) {
    loops.gradientSums(dy.subarray(block.start, block.end), x.subarray(block.start, block.end), block.layout, part(shift, block),
        part(sumDy, block), part(sumDyXs, block), part(sumXs, block));
  }
  const mean = new Float64Array(size);
  const sumDyXc = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const offset = sumXs[i] / groups.count;  // mean − shift, exact enough in float64
    mean[i] = shift[i] + offset;
    sumDyXc[i] = sumDyXs[i] - offset * sumDy[i];
  }
  return {sumDy, sumDyXc, mean};
}

/** Runs `f` over every block with the block's views of x-shaped arrays and per-group arrays. */
export function forEachBlock(groups: Groups, full: Float32Array[], perGroup: Float64Array[],
                             f: (full: Float32Array[], layout: ChannelLayout, perGroup: Float64Array[]) => void): void {
  for (const block of groups.blocks) {
    f(full.map(a => a.subarray(block.start, block.end)), block.layout, perGroup.map(a => part(a, block)));
  }
}
