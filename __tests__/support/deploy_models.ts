/**
 * Helpers for the deployment suites (fold, recalibrate): batch-norm weights far from the defaults,
 * seeded inputs, predictions as arrays, and the error measure folding is judged by.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormLayersOf} from '../../src/deploy/batch_norm_layers';

/** Values in [lo, hi) from a seeded uniform, as a tensor of `shape`. */
function uniform(shape: number[], lo: number, hi: number, seed: number): tf.Tensor {
  return tf.randomUniform(shape, lo, hi, 'float32', seed);
}

/**
 * Gives every batch-norm layer of the model per-channel weights far from their initial values, so
 * that folding them is visible: gamma in [0.5, 1.5], beta in [−0.5, 0.5], moving mean in [−1, 1],
 * moving variance in [0.3, 2] (renorm: moving and renorm stddev in [0.5, 1.5], renorm mean in [−1, 1]).
 * Deterministic for a seed.
 */
export function randomizeBatchNorms(model: tf.LayersModel, seed = 1): void {
  const ranges: {[name: string]: [number, number]} = {gamma: [0.5, 1.5], beta: [-0.5, 0.5], moving_mean: [-1, 1], moving_variance: [0.3, 2],
    moving_stddev: [0.5, 1.5], renorm_mean: [-1, 1], renorm_stddev: [0.5, 1.5]};
  batchNormLayersOf(model).forEach(({layer}, i) => {
    const values = layer.weights.map((w, j) => {
      const [lo, hi] = ranges[w.originalName.split('/').pop() as string];
      return uniform(w.shape as number[], lo, hi, seed * 100 + i * 10 + j);
    });
    layer.setWeights(values);
    tf.dispose(values);
  });
}

/** Seeded inputs N(0.5, 1) for every input of the model, with batch size `batch`. */
export function inputsFor(model: tf.LayersModel, batch = 3, seed = 7): tf.Tensor[] {
  return model.inputs.map((input, i) => tf.randomNormal([batch, ...input.shape.slice(1) as number[]], 0.5, 1, 'float32', seed + i));
}

/** The model's predictions on `inputs`, as arrays (one per output). */
export function predictions(model: tf.LayersModel, inputs: tf.Tensor[]): Float32Array[] {
  return tf.tidy(() => {
    const out = model.predict(inputs.length === 1 ? inputs[0] : inputs);
    return (Array.isArray(out) ? out : [out]).map(t => t.dataSync() as Float32Array);
  });
}

/** max |got − want| / max |want|: the error relative to the output's magnitude (what float32 rounding bounds). */
export function errorRelativeToMagnitude(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let diff = 0;
  let magnitude = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    magnitude = Math.max(magnitude, Math.abs(want[i]));
  }
  return diff / magnitude;
}
