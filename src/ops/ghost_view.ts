/**
 * Ghost batches through tf ops and the base kernels, for the training steps whose kernel does not
 * take them itself (dispatch.ts, mode 'ghosts'): Keras 2's view of a batch of B samples as
 * [virtualBatchSize, k, …] (k = B / virtualBatchSize), in which the ghost index (axis 1) is one more
 * channel axis: every original channel axis a becomes a + 1, and the op normalizes each (ghost,
 * channel) pair on its own. γ and β are the same for every ghost batch, so they are repeated k times
 * (whose gradient sums the k parts back).
 */
import {add, mean, reshape, Tensor, transpose, zeros} from '@tensorflow/tfjs-core';

/** What the statistics are computed over: x (maybe viewed as ghost batches) and its channel axes. */
export interface StatisticsView {
  x: Tensor;
  /** The mask in the same view, or null. */
  mask: Tensor | null;
  /** Channel axes of `x` in this view: the ghost axis and the layer's channel axes. */
  axes: number[];
  /** Number of ghost batches k (1 without ghost batches). */
  ghosts: number;
  /**
   * Set when the view was transposed: x went through [virtualBatchSize, k, before, rest] →
   * [virtualBatchSize, before, k, rest] (before: the dims between the batch axis and the channel
   * axes; rest: the channel axes and those after), which y goes back through.
   */
  transposed: number[] | null;
}

/**
 * Keras 2's view of a batch of B samples as k ghost batches: the shape [B/k, k, …] (a reshape: ghost
 * batch j is samples j, j + k, …); k = 1 is x's own shape. Shared with the gradients' group view.
 */
export function kerasGhostShape(shape: number[], ghosts: number): number[] {
  return ghosts === 1 ? shape : [shape[0] / ghosts, ghosts, ...shape.slice(1)];
}

/** The channel axes in that view: the ghost axis 1, then each channel axis a as a + 1 (k = 1: unchanged). */
export function kerasGhostAxes(axes: number[], ghosts: number): number[] {
  return ghosts === 1 ? axes : [1, ...axes.map(a => a + 1)];
}

/** The view without ghost batches: x itself. */
export function plainView(x: Tensor, mask: Tensor | null, axes: number[]): StatisticsView {
  return {x, mask, axes, ghosts: 1, transposed: null};
}

/**
 * x (and the mask) as [virtualBatchSize, k, …] for k ghost batches (k divides the batch size).
 *
 * When the layer's channel axes are adjacent but do not follow the ghost axis (channels-last: view
 * [V, k, H, W, C], channel axes 1 and 4), the view is also transposed to move the ghost axis next
 * to them ([V, H, W, k, C]): the op's fused kernels need adjacent channel axes, and one transpose
 * each way (and two in the backward pass) costs far less than the composite ops that non-adjacent
 * axes take on cpu and wasm. The transpose is done on a rank-4 view ([V, k, H·W, C] → [V, H·W, k, C]),
 * which backends transpose far faster than higher ranks (wasm: 2 ms against 170 ms at rank 6 for the
 * same 2M values). The masked path is composite anyway and keeps the plain view.
 */
export function ghostView(x: Tensor, mask: Tensor | null, axes: number[], ghosts: number, forFusedKernel: boolean): StatisticsView {
  const virtualBatchSize = x.shape[0] / ghosts;
  // One ghost batch is the whole batch: plain batch normalization, with no view to build.
  if (ghosts === 1) return plainView(x, mask, axes);
  const first = axes[0];
  const adjacent = axes.every((a, i) => a === first + i);
  if (forFusedKernel && mask == null && adjacent && first > 1) {
    const before = x.shape.slice(1, first).reduce((n, d) => n * d, 1);
    const rest = x.shape.slice(first);
    const transposed = [virtualBatchSize, ghosts, before, rest.reduce((n, d) => n * d, 1)];
    const view = reshape(transpose(reshape(x, transposed), [0, 2, 1, 3]), [virtualBatchSize, before, ghosts, ...rest]);
    // In [V, before, k, …rest] the ghost axis is 2 and the layer's channel axes follow it.
    const channelAxes = axes.map((_, i) => 3 + i);
    return {x: view, mask: null, axes: [2, ...channelAxes], ghosts, transposed};
  }
  return {x: reshape(x, kerasGhostShape(x.shape, ghosts)), mask: mask == null ? null : reshape(mask, kerasGhostShape(mask.shape, ghosts)),
    axes: kerasGhostAxes(axes, ghosts), ghosts, transposed: null};
}

/** y from a view back in x's shape. */
export function fromView(view: StatisticsView, y: Tensor, shape: number[]): Tensor {
  if (view.transposed == null) return reshape(y, shape);
  const [v, k, before, rest] = view.transposed;
  return reshape(transpose(reshape(y, [v, before, k, rest]), [0, 2, 1, 3]), shape);
}

/**
 * A per-channel tensor repeated for every ghost batch: [k · channels], ghost-major like the view's
 * channels. Repeated by a broadcasting add, whose gradient is one sum over the ghost axis: tf.tile's
 * (and tf.broadcastTo's, which is a tile) is a slice and an add per ghost batch.
 */
export function perGhost(t: Tensor, ghosts: number): Tensor {
  if (ghosts === 1) return reshape(t, [t.size]);
  return reshape(add(zeros([ghosts, 1]), reshape(t, [1, t.size])), [ghosts * t.size]);
}

/** Per-(ghost, channel) statistics [k · channels] → their mean over ghost batches [channels]. */
export function meanOverGhosts(t: Tensor, ghosts: number): Tensor {
  return ghosts === 1 ? t : mean(reshape(t, [ghosts, t.size / ghosts]), 0);
}
