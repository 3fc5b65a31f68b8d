/**
 * Ghost batches (Hoffer et al. 2017) exactly as Keras 2's `virtual_batch_size`: in training, a batch
 * of B samples is viewed as [virtualBatchSize, B / virtualBatchSize, …], so with k = B /
 * virtualBatchSize ghost batch j holds samples j, j + k, j + 2k, …; each is normalized with its own
 * statistics (gradients flow through each), and the moving statistics move once per step toward
 * the mean over ghost batches of their means and biased variances. Inference is unchanged.
 *
 * In that view the ghost index (axis 1) is one more channel axis: every original channel axis a
 * becomes a + 1, and the op normalizes each (ghost, channel) pair on its own. γ and β are the same
 * for every ghost batch, so they are repeated k times (whose gradient sums the k parts back).
 */
import {add, mean, reshape, Tensor, transpose, zeros} from '@tensorflow/tfjs-core';
import {argumentError} from '../ops/validate';

/** What the statistics are computed over: x (maybe viewed as ghost batches) and its channel axes. */
export interface StatisticsView {
  x: Tensor;
  /** The mask in the same view, or null. */
  mask: Tensor | null;
  /** Channel axes of `x` in this view: the ghost axis and the layer's channel axes. */
  axes: number[];
  /** The axes the mask lacks (the layer's own channel axes, in this view). */
  maskAxes: number[];
  /** Number of ghost batches k (1 without ghost batches). */
  ghosts: number;
  /**
   * Set when the view was transposed: x went through [virtualBatchSize, k, before, rest] →
   * [virtualBatchSize, before, k, rest] (before: the dims between the batch axis and the channel
   * axes; rest: the channel axes and those after), which y goes back through.
   */
  transposed: number[] | null;
}

/** The view without ghost batches: x itself. */
export function plainView(x: Tensor, mask: Tensor | null, axes: number[]): StatisticsView {
  return {x, mask, axes, maskAxes: axes, ghosts: 1, transposed: null};
}

/** Ghost batches split the batch axis, so it cannot be a channel axis (Keras 2 refuses it too). */
export function checkGhostAxes(fn: string, axis: unknown, axes: number[]): void {
  if (axes.includes(0)) {
    throw argumentError(fn, 'axis', `is ${JSON.stringify(axis)}, which includes the batch axis 0; with virtualBatchSize ` +
        `the batch axis is split into ghost batches, so it cannot be a channel axis`);
  }
}

/**
 * Keras 2's weight shape with virtual_batch_size: the input's shape with every non-channel axis set
 * to 1, and a 1 inserted for the ghost axis (rank + 1 dimensions), so that Keras 2 files load as
 * they are and files saved here load in Keras 2.
 */
export function ghostWeightShape(inputShape: Array<number | null>, axes: number[]): number[] {
  const shape = inputShape.map((d, i) => (axes.includes(i) ? d as number : 1));
  shape.splice(1, 0, 1);
  return shape;
}

/**
 * x (and the mask) as [virtualBatchSize, k, …]; refuses a batch size that virtualBatchSize does not
 * divide (Keras 2 fails there too, with a reshape error).
 *
 * When the layer's channel axes are adjacent but do not follow the ghost axis (channels-last: view
 * [V, k, H, W, C], channel axes 1 and 4), the view is also transposed to move the ghost axis next
 * to them ([V, H, W, k, C]): the op's fused kernels need adjacent channel axes, and one transpose
 * each way (and two in the backward pass) costs far less than the composite ops that non-adjacent
 * axes take on cpu and wasm. The transpose is done on a rank-4 view ([V, k, H·W, C] → [V, H·W, k, C]),
 * which backends transpose far faster than higher ranks (wasm: 2 ms against 170 ms at rank 6 for the
 * same 2M values). The masked path is composite anyway and keeps the plain view.
 */
export function ghostView(fn: string, x: Tensor, mask: Tensor | null, axes: number[], virtualBatchSize: number): StatisticsView {
  const batch = x.shape[0];
  if (batch % virtualBatchSize !== 0) {
    throw argumentError(fn, 'virtualBatchSize', `is ${virtualBatchSize}, which does not divide the batch size ${batch}: ` +
        `in training each batch is split into ghost batches of ${virtualBatchSize} samples`);
  }
  const ghosts = batch / virtualBatchSize;
  // One ghost batch is the whole batch: plain batch normalization, with no view to build.
  if (ghosts === 1) return plainView(x, mask, axes);
  const split = (t: Tensor) => reshape(t, [virtualBatchSize, ghosts, ...t.shape.slice(1)]);
  const shifted = axes.map(a => a + 1);
  const first = axes[0];
  const adjacent = axes.every((a, i) => a === first + i);
  if (mask == null && adjacent && first > 1) {
    const before = x.shape.slice(1, first).reduce((n, d) => n * d, 1);
    const rest = x.shape.slice(first);
    const transposed = [virtualBatchSize, ghosts, before, rest.reduce((n, d) => n * d, 1)];
    const view = reshape(transpose(reshape(x, transposed), [0, 2, 1, 3]), [virtualBatchSize, before, ghosts, ...rest]);
    // In [V, before, k, …rest] the ghost axis is 2 and the layer's channel axes follow it.
    const channelAxes = axes.map((_, i) => 3 + i);
    return {x: view, mask: null, axes: [2, ...channelAxes], maskAxes: channelAxes, ghosts, transposed};
  }
  return {x: split(x), mask: mask == null ? null : split(mask), axes: [1, ...shifted], maskAxes: shifted, ghosts, transposed: null};
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

/**
 * Keras 2 writes a ghost-batch layer's axes shifted by one (it adds 1 to them in build, then
 * get_config writes them: axis [4] for channels-last rank 4; Keras 2 itself cannot load that back,
 * keras-team/tf-keras#546). Keras 2 writes them as a list of non-negative axes ≥ 2 after the shift,
 * which no other writer produces for a ghost-batch BatchNormalization (tfjs and stockFormat write an
 * integer), so such an axis in a 'BatchNormalization' config is read back shifted down by one.
 */
export function unshiftKeras2GhostAxis(axis: unknown, virtualBatchSize: unknown): unknown {
  const keras2 = virtualBatchSize != null && Array.isArray(axis) && axis.length > 0 &&
      axis.every(a => Number.isInteger(a) && a >= 2);
  return keras2 ? (axis as number[]).map(a => a - 1) : axis;
}
