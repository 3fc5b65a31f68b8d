/**
 * The geometry of a batch-normalization problem: which axes hold channels, how many channels there
 * are, and how x is laid out around them. Every op, kernel and layer derives its shapes from here.
 */

/** x seen as [outer, channels, inner] in row-major memory; valid when the channel axes are adjacent. */
export interface ChannelLayout {
  outer: number;
  channels: number;
  inner: number;
}

/** Sorted, non-negative channel axes from an axis or list of axes (validated by validate.ts first). */
export function normalizeAxes(axis: number | number[], rank: number): number[] {
  const list = Array.isArray(axis) ? axis : [axis];
  return list.map(a => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
}

/** Whether sorted axes are adjacent, which the fused kernels need ([outer, channels, inner]). */
export function axesAreAdjacent(axes: number[]): boolean {
  return axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
}

/** Number of channels: the product of the channel dimensions. */
export function channelCount(shape: number[], axes: number[]): number {
  return axes.reduce((n, a) => n * shape[a], 1);
}

/** The axes statistics are reduced over: every axis that is not a channel axis. */
export function reductionAxes(rank: number, axes: number[]): number[] {
  const result: number[] = [];
  for (let i = 0; i < rank; i++) {
    if (!axes.includes(i)) result.push(i);
  }
  return result;
}

/** Shape that broadcasts a per-channel vector against x: channel dims kept, every other dim 1. */
export function broadcastShape(shape: number[], axes: number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? d : 1));
}

/** What code written with tf ops needs: the broadcast shape of per-channel tensors and the reduction axes. */
export interface BroadcastGeometry {
  /** x's shape with every non-channel dimension set to 1 (see broadcastShape). */
  perChannelShape: number[];
  /** The axes statistics reduce over (see reductionAxes). */
  reduce: number[];
}

/** The broadcast geometry of x with these (sorted, non-negative) channel axes. */
export function broadcastGeometry(shape: number[], axes: number[]): BroadcastGeometry {
  return {perChannelShape: broadcastShape(shape, axes), reduce: reductionAxes(shape.length, axes)};
}

/** [outer, channels, inner] for adjacent sorted axes. */
export function channelLayout(shape: number[], axes: number[]): ChannelLayout {
  const first = axes[0];
  const last = axes[axes.length - 1];
  const product = (dims: number[]) => dims.reduce((n, d) => n * d, 1);
  return {
    outer: product(shape.slice(0, first)),
    channels: product(shape.slice(first, last + 1)),
    inner: product(shape.slice(last + 1)),
  };
}
