/**
 * Small models that differ in topology, weight values and weight-file size, saved to memory, and
 * a way to tell which of them a loaded model is — for the save tests that race, crash and
 * interleave saves of different models into one directory, where a mixed pair (one model's
 * model.json with another's weights) must never load.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization} from '../../src';
import {saveToMemory} from './round_trip';

/** dense(units) → BatchNorm → dense(1) on 3 inputs; model `i` has 4 + 3i units and seed-i weights. */
function distinctModel(i: number): tf.Sequential {
  return tf.sequential({
    name: `distinct_${i}`,
    layers: [
      tf.layers.dense({name: 'hidden', inputShape: [3], units: 4 + 3 * i, kernelInitializer: tf.initializers.randomNormal({seed: 100 + i})}),
      batchNormalization({name: 'bn', gammaInitializer: tf.initializers.randomUniform({minval: 0.5, maxval: 2, seed: 200 + i})}),
      tf.layers.dense({name: 'out', units: 1, kernelInitializer: tf.initializers.randomNormal({seed: 300 + i})}),
    ],
  });
}

/** The saved artifacts of `count` distinct models (their weight data sizes all differ). */
export async function distinctArtifacts(count: number): Promise<tf.io.ModelArtifacts[]> {
  const artifacts: tf.io.ModelArtifacts[] = [];
  for (let i = 0; i < count; i++) {
    const model = distinctModel(i);
    artifacts.push(await saveToMemory(model));
    model.dispose();
  }
  return artifacts;
}

/** A model's topology and the bytes of its weights, in model order: equal for the same model, bit for bit. */
export function fingerprint(model: tf.LayersModel): string {
  const weights = model.weights.map(w => Buffer.from((w.read().dataSync() as Float32Array).buffer).toString('hex'));
  return `${JSON.stringify(model.toJSON(null, false))}|${weights.join('/')}`;
}

/** The fingerprints of the models the artifacts describe (each loaded once, then disposed). */
export async function fingerprints(artifacts: tf.io.ModelArtifacts[]): Promise<string[]> {
  const result: string[] = [];
  for (const a of artifacts) {
    const model = await tf.loadLayersModel(tf.io.fromMemory(a));
    result.push(fingerprint(model));
    model.dispose();
  }
  return result;
}

/** Which of the fingerprinted models `loaded` is (-1: none); disposes `loaded`. */
export function identify(loaded: tf.LayersModel, known: string[]): number {
  try {
    return known.indexOf(fingerprint(loaded));
  } finally {
    loaded.dispose();
  }
}
