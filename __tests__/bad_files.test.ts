/**
 * Damaged model files: each load fails with an error that names the file and, where one is
 * concerned, the layer and the weight; no model comes back and no tensor is left behind
 * (tf.memory().numTensors is unchanged). Runs on cpu: the checks are backend-independent.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import {checkedLoader, checkModelArtifacts} from '../src/node'; // the Node entry: it registers file://
import {convBatchNormModel, saveToMemory} from './support/round_trip';

let dir: string;
let modelJsonPath: string;
let weightsPath: string;
let modelJson: tf.io.ModelJSON;
let weights: Buffer;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tfjs-batchnorm-bad-'));
  const model = convBatchNormModel();
  await model.save(`file://${dir}`);
  model.dispose();
  modelJsonPath = path.join(dir, 'model.json');
  weightsPath = path.join(dir, 'weights.bin');
  modelJson = JSON.parse(await fs.readFile(modelJsonPath, 'utf8'));
  weights = await fs.readFile(weightsPath);
});

afterEach(async () => {
  await fs.rm(dir, {recursive: true, force: true});
});

/** Loads the model from `dir` and expects it to fail with `message`, leaving the tensor count unchanged. */
async function expectLoadFails(message: string | RegExp): Promise<void> {
  const before = tf.memory().numTensors;
  await expect(tf.loadLayersModel(`file://${modelJsonPath}`)).rejects.toThrow(message);
  expect(tf.memory().numTensors).toBe(before);
}

function specs(): tf.io.WeightsManifestEntry[] {
  return modelJson.weightsManifest[0].weights;
}

/** Byte offset of a weight in weights.bin (all weights here are float32). */
function offsetOf(name: string): number {
  const index = specs().findIndex(s => s.name === name);
  return specs().slice(0, index).reduce((n, s) => n + 4 * tf.util.sizeFromShape(s.shape), 0);
}

async function writeModelJson(): Promise<void> {
  await fs.writeFile(modelJsonPath, JSON.stringify(modelJson));
}

describe('file:// loads of damaged files', () => {
  it('the unchanged files load (the baseline every case below damages)', async () => {
    const model = await tf.loadLayersModel(`file://${modelJsonPath}`);
    expect(model.layers.map(l => l.name)).toEqual(['conv', 'bn', 'relu', 'flatten', 'dense']);
    model.dispose();
  });

  it('malformed JSON', async () => {
    await fs.writeFile(modelJsonPath, JSON.stringify(modelJson).slice(0, 100));
    await expectLoadFails(`file:// load: ${modelJsonPath} is not valid JSON`);
  });

  it('JSON that is not a model.json', async () => {
    await fs.writeFile(modelJsonPath, '{"weights": []}');
    await expectLoadFails(`file:// load: ${modelJsonPath} has no 'modelTopology'`);
  });

  it('missing model.json', async () => {
    await fs.rm(modelJsonPath);
    await expectLoadFails(`file:// load: model.json ${modelJsonPath} does not exist`);
  });

  it('unknown layer class', async () => {
    const layers = (modelJson.modelTopology as {config: {layers: {class_name: string}[]}}).config.layers;
    layers[1].class_name = 'NoSuchNorm';
    await writeModelJson();
    await expectLoadFails(`${modelJsonPath}: layer 'bn' has class 'NoSuchNorm', which is not registered with tf.serialization.registerClass`);
  });

  it('missing weights file', async () => {
    await fs.rm(weightsPath);
    await expectLoadFails(`file:// load: weights file (for conv/kernel, conv/bias, bn/gamma, bn/beta, dense/kernel, dense/bias, ` +
        `bn/moving_mean, bn/moving_variance) ${weightsPath} does not exist`);
  });

  it('short weights file: names the file, both byte counts and the weights cut off', async () => {
    await fs.writeFile(weightsPath, weights.subarray(0, weights.length - 20));
    await expectLoadFails(`file:// load: ${weightsPath} holds ${weights.length - 20} bytes but the weights manifest needs ` +
        `${weights.length} bytes; missing or truncated weights: bn/moving_mean, bn/moving_variance`);
  });

  it('weights file longer than the manifest describes', async () => {
    await fs.writeFile(weightsPath, Buffer.concat([weights, Buffer.alloc(8)]));
    await expectLoadFails(`file:// load: ${weightsPath} holds ${weights.length + 8} bytes but the weights manifest describes ${weights.length} bytes`);
  });

  it('a weight of the wrong shape (moving_mean of 3 values for a 4-channel layer) names the layer and the weight', async () => {
    const spec = specs().find(s => s.name === 'bn/moving_mean') as tf.io.WeightsManifestEntry;
    spec.shape = [3];
    await writeModelJson();
    const at = offsetOf('bn/moving_mean');
    await fs.writeFile(weightsPath, Buffer.concat([weights.subarray(0, at + 12), weights.subarray(at + 16)]));
    await expectLoadFails(`${modelJsonPath}: layer 'bn' (TfjsBatchNorm>BatchNorm) weight 'moving_mean' has shape [3] ` +
        `in the weights manifest, but the layer expects [4]`);
  });

  it('a weight missing from the manifest and the file', async () => {
    const at = offsetOf('bn/moving_variance');
    modelJson.weightsManifest[0].weights = specs().filter(s => s.name !== 'bn/moving_variance');
    await writeModelJson();
    await fs.writeFile(weightsPath, weights.subarray(0, at));
    await expectLoadFails(`${modelJsonPath}: the weights manifest has no value for layer 'bn' (TfjsBatchNorm>BatchNorm) weight 'moving_variance'`);
  });

  it('a weight in the manifest that the model does not have', async () => {
    specs().push({name: 'bn/renorm_mean', shape: [4], dtype: 'float32'});
    await writeModelJson();
    await fs.writeFile(weightsPath, Buffer.concat([weights, Buffer.alloc(16)]));
    await expectLoadFails(`${modelJsonPath}: the weights manifest has a weight 'bn/renorm_mean' that no layer of the model has`);
  });
});

describe('checks for any handler (checkedLoader, checkModelArtifacts)', () => {
  it('checkedLoader wraps e.g. tf.io.fromMemory: a wrong shape fails early, naming layer and weight, without leaking', async () => {
    const artifacts = await saveToMemory(convBatchNormModel());
    const specsInMemory = artifacts.weightSpecs as tf.io.WeightsManifestEntry[];
    const gamma = specsInMemory.find(s => s.name === 'bn/gamma') as tf.io.WeightsManifestEntry;
    gamma.shape = [2, 2]; // same byte count, wrong shape
    const before = tf.memory().numTensors;
    await expect(tf.loadLayersModel(checkedLoader(tf.io.fromMemory(artifacts))))
        .rejects.toThrow("the loaded model: layer 'bn' (TfjsBatchNorm>BatchNorm) weight 'gamma' has shape [2,2] in the weights manifest, but the layer expects [4]");
    expect(tf.memory().numTensors).toBe(before);
  });

  it('short weight data from any source names the weights cut off', async () => {
    const artifacts = await saveToMemory(convBatchNormModel());
    const data = artifacts.weightData as ArrayBuffer;
    artifacts.weightData = data.slice(0, data.byteLength - 4);
    await expect(checkModelArtifacts(artifacts, 'memory')).rejects.toThrow(
        `the weight data of memory holds ${data.byteLength - 4} bytes but the weights manifest needs ${data.byteLength} bytes; ` +
        'missing or truncated weights: bn/moving_variance');
  });

  it('graph models (tfjs-converter output) are not checked as layers models', async () => {
    const artifacts: tf.io.ModelArtifacts = {
      format: 'graph-model', modelTopology: {node: [{name: 'x', op: 'Placeholder'}]},
      weightSpecs: [{name: 'w', shape: [2], dtype: 'float32'}], weightData: new ArrayBuffer(8),
    };
    await expect(checkModelArtifacts(artifacts, 'graph')).resolves.toBeUndefined();
  });
});
