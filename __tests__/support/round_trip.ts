/**
 * Helpers shared by the save/load, interop and bad-file suites: a small conv model with BatchNorm,
 * deterministic data, in-memory capture of saved artifacts, and the round-trip comparisons
 * (topology, bit-identical weights, identical predictions, the loaded model still trains).
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization, replaceBuiltinBatchNormalization} from '../../src';

/** conv2d → BatchNorm → relu → flatten → dense, with fixed layer names so topologies compare. */
export function convBatchNormModel(): tf.Sequential {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({name: 'conv', inputShape: [6, 6, 2], filters: 4, kernelSize: 3, kernelInitializer: tf.initializers.glorotUniform({seed: 1})}),
      batchNormalization({name: 'bn'}),
      tf.layers.reLU({name: 'relu'}),
      tf.layers.flatten({name: 'flatten'}),
      tf.layers.dense({name: 'dense', units: 1, kernelInitializer: tf.initializers.glorotUniform({seed: 2})}),
    ],
  });
  compileForTest(model);
  return model;
}

/** Compiles with a fixed optimizer and loss (Adam, mean squared error). */
export function compileForTest(model: tf.LayersModel): void {
  model.compile({optimizer: tf.train.adam(0.01), loss: 'meanSquaredError'});
}

/**
 * 16 seeded inputs of shape [6, 6, 2] and a target that depends on them (the mean of channel 0
 * plus a constant), so the conv model can learn it and its loss falls. Offset and scale keep the
 * input statistics away from what BatchNorm's initial moving averages assume.
 */
export function syntheticData(): {x: tf.Tensor4D, y: tf.Tensor2D} {
  return tf.tidy(() => {
    const x = tf.randomNormal([16, 6, 6, 2], 3, 2, 'float32', 7) as tf.Tensor4D;
    const y = x.slice([0, 0, 0, 0], [16, 6, 6, 1]).mean([1, 2, 3]).reshape([16, 1]).sub(3) as tf.Tensor2D;
    return {x, y};
  });
}

/** Runs fit for a few epochs on the synthetic data and returns the training losses per epoch. */
export async function train(model: tf.LayersModel, epochs: number): Promise<number[]> {
  const {x, y} = syntheticData();
  try {
    const history = await model.fit(x, y, {epochs, batchSize: 8, shuffle: false, verbose: 0});
    return history.history.loss as number[];
  } finally {
    tf.dispose([x, y]);
  }
}

/** Saves into memory (tf.io.withSaveHandler) and returns the artifacts exactly as handed to a handler. */
export async function saveToMemory(model: tf.LayersModel, wrap: (h: tf.io.IOHandler) => tf.io.IOHandler = h => h):
    Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(wrap(tf.io.withSaveHandler(async artifacts => {
    saved = artifacts;
    return {modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts)};
  })));
  if (saved == null) throw new Error('saveToMemory: the save handler was not called');
  return saved;
}

/** Every weight's bytes by name (the layer variables' original names). */
function weightBytes(model: tf.LayersModel): Map<string, Uint8Array> {
  return new Map(model.weights.map(w => {
    const values = w.read().dataSync() as Float32Array;
    return [w.originalName, new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength))];
  }));
}

/** Asserts same topology, bit-identical weights (same names and order) and bit-identical predictions. */
export function expectSameModel(loaded: tf.LayersModel, original: tf.LayersModel): void {
  expect(loaded.toJSON(null, false)).toEqual(original.toJSON(null, false));
  const want = weightBytes(original);
  const got = weightBytes(loaded);
  expect([...got.keys()]).toEqual([...want.keys()]);
  for (const [name, bytes] of want) expect({name, bytes: got.get(name)}).toEqual({name, bytes});
  expectSamePredictions(loaded, original);
}

/** Asserts that both models predict exactly the same values on the synthetic inputs. */
export function expectSamePredictions(a: tf.LayersModel, b: tf.LayersModel): void {
  const {x, y} = syntheticData();
  const [pa, pb] = [a.predict(x) as tf.Tensor, b.predict(x) as tf.Tensor];
  expect(Array.from(pa.dataSync())).toEqual(Array.from(pb.dataSync()));
  tf.dispose([x, y, pa, pb]);
}

/** Asserts that one fit step on a loaded model changes every trainable weight and BatchNorm's moving statistics, with a finite loss. */
export async function expectKeepsTraining(loaded: tf.LayersModel): Promise<void> {
  if (loaded.optimizer == null) compileForTest(loaded);
  const before = weightBytes(loaded);
  const [loss] = await train(loaded, 1);
  expect(Number.isFinite(loss)).toBe(true);
  const after = weightBytes(loaded);
  for (const [name, bytes] of before) {
    expect({name, changed: !Buffer.from(bytes).equals(Buffer.from(after.get(name) as Uint8Array))}).toEqual({name, changed: true});
  }
}

/** Loads artifacts with replaceBuiltinBatchNormalization in effect, undoing it afterwards. */
export async function loadReplacingStock(artifacts: tf.io.ModelArtifacts): Promise<tf.LayersModel> {
  const undo = replaceBuiltinBatchNormalization();
  try {
    return await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } finally {
    undo();
  }
}
