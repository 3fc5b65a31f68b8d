/**
 * The geometry the tf-ops closed form runs in for a fused kernel's statistics groups (kernel_names.ts,
 * `ghosts`): x itself without ghost batches; with k of them, Keras 2's view [B/k, k, …] of x, in
 * which the ghost axis is one more channel axis (ops/ghost_view.ts).
 */
import {reshape, sum, Tensor} from '@tensorflow/tfjs-core';
import {broadcastGeometry, BroadcastGeometry} from '../ops/channel_axes';
import {kerasGhostAxes, kerasGhostShape} from '../ops/ghost_view';

/** x's statistics groups as tf ops see them. */
export interface GroupView {
  ghosts: number;
  /** The view's geometry: per-group tensors broadcast as perChannelShape, statistics reduce over `reduce`. */
  geometry: BroadcastGeometry;
  /** Values per group. */
  count: number;
  /** An x-shaped tensor in the view. */
  toView(t: Tensor): Tensor;
  /** A per-channel tensor ([channels] values) broadcast over the view (the same for every ghost batch). */
  perChannel(t: Tensor): Tensor;
  /** A per-group tensor summed over ghost batches, as `shape`. */
  sumOverGhosts(t: Tensor, shape: number[]): Tensor;
}

/** The view of an x of this shape with these (adjacent, sorted) channel axes and k ghost batches. */
export function groupView(shape: number[], axes: number[], ghosts: number): GroupView {
  const viewShape = kerasGhostShape(shape, ghosts);
  const geometry = broadcastGeometry(viewShape, kerasGhostAxes(axes, ghosts));
  const paramShape = ghosts === 1 ? geometry.perChannelShape : geometry.perChannelShape.map((d, i) => (i === 1 ? 1 : d));
  const groups = geometry.perChannelShape.reduce((n, d) => n * d, 1);
  return {
    ghosts,
    geometry,
    count: shape.reduce((n, d) => n * d, 1) / groups,
    toView: t => reshape(t, viewShape),
    perChannel: t => reshape(t, paramShape),
    sumOverGhosts: (t, out) => reshape(ghosts === 1 ? t : sum(t, 1), out),
  };
}
