/**
 * How the GPU kernels (webgl/, webgpu/) split the per-channel reductions into parallel work, and
 * the float32 arithmetic they share, written once in words here and twice in shader languages.
 *
 * x is [outer, channels, inner] in memory (channel_axes.ts). Channel c holds count = outer·inner
 * values; value j of channel c (j = o·inner + i) lives at (o·channels + c)·inner + i. Each channel's
 * values are dealt round-robin to `lanes` lanes: lane q visits j = q, q + lanes, q + 2·lanes, … A
 * lane sums its values in float32 *shifted twice*: by the channel's first value s (so a large common
 * offset such as 1e4 ± 0.5 cancels exactly before any sum) and then by the lane's own first value
 * (so the sums stay near zero), and leaves its mean and its biased variance (or, for the gradient,
 * its mean Σdy and Σdy·(x − lane mean) per value). A second pass merges the lanes of a channel with
 * the parallel formulas of Chan, Golub and LeVeque, which never subtract two large sums. Lanes store
 * means rather than sums, so the partial results stay in the range of the data: on half-float
 * textures (WEBGL_FORCE_F16_TEXTURES, many phones) nothing overflows that the data itself does not.
 *
 * The outputs keep the shifted form too: y = ((x − s) − (mean − s))·scale + β, so the float32 mean
 * (which cannot hold 1e4 ± 0.5 to more than ~5e-4) never enters y, and a channel of one value gives
 * exactly β.
 */
import {ChannelLayout, channelLayout} from '../ops/channel_axes';

/** The reduction geometry of one problem. */
export interface LanePlan extends ChannelLayout {
  /** x's shape (backends that address x by its own dimensions need it). */
  shape: number[];
  /** Values per channel: outer · inner. */
  count: number;
  /** Lanes per channel, 1 ≤ lanes ≤ count. */
  lanes: number;
  /** The most values one lane visits: ceil(count / lanes). */
  steps: number;
  /**
   * How threads map to (channel, lane). True: channel = t % channels, lane = t / channels, so
   * neighbouring threads read neighbouring memory when channels are last (inner = 1). False:
   * lane = t % lanes, channel = t / lanes, so neighbouring threads walk a channel's runs.
   */
  channelFastest: boolean;
}

/** Limits a backend sets on the split. */
export interface LaneLimits {
  /** Aim for about this many lanes in total (channels · lanes). */
  threads: number;
  /** Never more lanes per channel than this (the merge pass reads them all). */
  maxLanes: number;
  /** Give every lane at least this many values. */
  minSteps: number;
}

/** The lane split of a problem (x's shape, its sorted adjacent channel axes) under a backend's limits. */
export function lanePlan(shape: number[], axes: number[], limits: LaneLimits): LanePlan {
  const layout = channelLayout(shape, axes);
  const count = layout.outer * layout.inner;
  const wanted = Math.floor(limits.threads / layout.channels);
  const lanes = Math.max(1, Math.min(wanted, limits.maxLanes, Math.floor(count / limits.minSteps)));
  return {...layout, shape, count, lanes, steps: Math.ceil(count / lanes), channelFastest: layout.inner <= 2};
}

/** Number of values lane q visits (the shaders compute the same with integer division). */
export function laneCount(plan: LanePlan, q: number): number {
  return Math.floor((plan.count - 1 - q) / plan.lanes) + 1;
}

/** Index in x of value j of channel c. */
export function valueIndex(plan: ChannelLayout, c: number, j: number): number {
  const o = Math.floor(j / plan.inner);
  return (o * plan.channels + c) * plan.inner + (j - o * plan.inner);
}
