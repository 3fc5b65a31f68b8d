/**
 * Ghost batches (Hoffer et al. 2017) exactly as Keras 2's `virtual_batch_size`: in training, a batch
 * of B samples is viewed as [virtualBatchSize, B / virtualBatchSize, …], so with k = B /
 * virtualBatchSize ghost batch j holds samples j, j + k, j + 2k, …; each is normalized with its own
 * statistics (gradients flow through each), and the moving statistics move once per step toward
 * the mean over ghost batches of their means and biased variances. Inference is unchanged.
 *
 * This file holds what is the layer's own: the axis check, Keras 2's weight shape and its axis
 * quirk. The computation is the training step's (ops/train_step.ts): in the fused training kernel
 * where the backend's kernel declares ghost batches, else through the view of ops/ghost_view.ts.
 */
import {argumentError} from '../ops/validate';
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
