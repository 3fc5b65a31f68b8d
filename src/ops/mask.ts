/** Keras masks as the tf-ops paths take them. */
import {broadcastTo, cast, reshape, Tensor} from '@tensorflow/tfjs-core';
import {stopGradient} from './stop_gradient';

/**
 * A Keras mask as one float32 weight per element of x: expanded at the last axis and broadcast. A
 * constant to the tape: the mask says which positions count, it is not differentiated (tf.grad
 * with respect to it fails with tfjs' "Cannot compute gradient" rather than giving a partial answer).
 * Exported for recalibration (deploy/population_moments.ts), which counts the positions it keeps.
 */
export function maskWeights(mask: Tensor, x: Tensor): Tensor {
  return stopGradient(() => broadcastTo(reshape(cast(mask, 'float32'), [...mask.shape, 1]), x.shape));
}
