/**
 * Batch Renormalization (Ioffe 2017) exactly as Keras 3.14 (and Keras 2) computes it: the layer's
 * part — its extra weights, their initializers, and the op's inputs read from them. The arithmetic
 * (r, d, the corrected output, the updates) is the training step's: in the fused training kernel
 * where the backend's kernel declares renorm, else in tf ops (ops/renorm_ops.ts, which states it).
 * Inference is unchanged (moving_mean, moving_variance).
 */
import {sqrt, Tensor, tidy} from '@tensorflow/tfjs-core';
import type {LayerVariable} from '@tensorflow/tfjs-layers';
import type {Initializer} from '@tensorflow/tfjs-layers/dist/initializers';
import type {RenormInputs} from '../ops/renorm_ops';
import {withoutGradient} from '../ops/stop_gradient';
import {boundAt, isRamp, RenormClipping} from './renorm_clipping';

/** Renorm's extra non-trainable weights, after the usual four and in Keras' order. */
export const RENORM_WEIGHT_NAMES = ['moving_stddev', 'renorm_mean', 'renorm_stddev'] as const;
/** The step counter of a clipping schedule (a scalar; only when renormClipping has a ramp). */
export const RENORM_STEP_WEIGHT_NAME = 'renorm_step';

/** The layer's renorm weights. */
export interface RenormState {
  movingStddev: LayerVariable;
  renormMean: LayerVariable;
  renormStddev: LayerVariable;
  /** Training steps taken (float32, exact to 2^24); null without a schedule. */
  step: LayerVariable | null;
}

/**
 * The initializer of moving_stddev and renorm_stddev: √ of the moving-variance initializer's values
 * (Keras). Only `apply` is needed: Layer.addWeight calls nothing else, and it is never serialized.
 */
export function sqrtInitializer(variance: Initializer): Initializer {
  return {apply: (shape: number[], dtype?: 'float32') => tidy(() => sqrt(variance.apply(shape, dtype)))} as unknown as Initializer;
}

/**
 * The op's renorm inputs: the pre-update renorm statistics, and the clipping bounds at this step
 * (numbers, or scalar tensors computed from the step counter off the gradient tape).
 */
export function renormInputs(state: RenormState, clipping: RenormClipping, renormMomentum: number): RenormInputs {
  const keys = ['rmin', 'rmax', 'dmax'] as const;
  const step = state.step?.read() ?? null;
  const ramps = keys.filter(key => isRamp(clipping[key]));
  const values = ramps.length === 0 ? [] : withoutGradient(() => ramps.map(key => boundAt(clipping[key], step) as Tensor));
  const bound = (key: typeof keys[number]) => {
    const i = ramps.indexOf(key);
    return i >= 0 ? values[i] : (clipping[key] as number | null | undefined) ?? null;
  };
  return {renormMean: state.renormMean.read(), renormStddev: state.renormStddev.read(), rmin: bound('rmin'), rmax: bound('rmax'),
    dmax: bound('dmax'), renormMomentum};
}
