/**
 * Damaged and hostile model files: each load fails with an error that names the file and, where
 * one is concerned, the weight group, the layer and the weight — never a tfjs internal such as
 * "Cannot read properties of …" — before anything is allocated; no model comes back and no tensor
 * is left behind (tf.memory().numTensors is unchanged). The checks are backend-independent and run
 * on cpu, except a hostile topology, which also runs on wasm (where allocating what it declares
 * used to break the backend for good).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as fs from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import {batchNormalization, checkedLoader, checkModelArtifacts} from '../src/node'; // the Node entry: it registers file://
import {fileHandler} from '../src/io/file_handler';
import {fetchForJest, startModelServer} from './support/model_server';
import {convBatchNormModel, saveToMemory} from './support/round_trip';

/** What an error message must never be: a tfjs internal that names nothing. */
const INTERNAL_ERROR = /Cannot read propert|undefined \(reading|is not a function|is not iterable|NaN bytes/;

let dir: string;
let modelJsonPath: string;
let weightsPath: string;
let modelJson: tf.io.ModelJSON;
let weights: Buffer;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/**
 * Saves the conv model into a fresh directory in tfjs-node's layout (model.json + weights.bin),
 * which this package's loader reads too: the cases below edit weights.bin in place, which the
 * content hash of a content-named weights file would (rightly) refuse first.
 */
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tfjs-batchnorm-bad-'));
  const model = convBatchNormModel();
  await model.save(fileHandler(dir));
  model.dispose();
  modelJsonPath = path.join(dir, 'model.json');
  weightsPath = path.join(dir, 'weights.bin');
  modelJson = JSON.parse(await fs.readFile(modelJsonPath, 'utf8'));
  const [contentNamed] = modelJson.weightsManifest[0].paths;
  await fs.rename(path.join(dir, contentNamed), weightsPath);
  modelJson.weightsManifest[0].paths = ['weights.bin'];
  await writeModelJson();
  weights = await fs.readFile(weightsPath);
});

afterEach(async () => {
  await fs.rm(dir, {recursive: true, force: true});
});

/** Expects `load` to fail with `message`, naming no tfjs internal and leaving the tensor count unchanged. */
async function expectFails(load: () => Promise<unknown>, message: string | RegExp): Promise<void> {
  const before = tf.memory().numTensors;
  const error = await load().then(() => null, (e: Error) => e);
  expect(error).toBeInstanceOf(Error);
  expect((error as Error).message).toMatch(typeof message === 'string' ? new RegExp(escapeRegExp(message)) : message);
  expect((error as Error).message).not.toMatch(INTERNAL_ERROR);
  expect(tf.memory().numTensors).toBe(before);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Loads the model from `dir` through this package's file:// handler and expects it to fail with `message`. */
function expectLoadFails(message: string | RegExp): Promise<void> {
  return expectFails(() => tf.loadLayersModel(fileHandler(modelJsonPath)), message);
}

function specs(): tf.io.WeightsManifestEntry[] {
  return modelJson.weightsManifest[0].weights;
}

function spec(name: string): tf.io.WeightsManifestEntry {
  return specs().find(s => s.name === name) as tf.io.WeightsManifestEntry;
}

function layerConfig(name: string): {[key: string]: unknown} {
  const layers = (modelJson.modelTopology as {config: {layers: {config: {name: string}}[]}}).config.layers;
  return layers.find(l => l.config.name === name)?.config as {[key: string]: unknown};
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
    const model = await tf.loadLayersModel(fileHandler(modelJsonPath));
    expect(model.layers.map(l => l.name)).toEqual(['conv', 'bn', 'relu', 'flatten', 'dense']);
    model.dispose();
  });

  it('malformed JSON', async () => {
    await fs.writeFile(modelJsonPath, JSON.stringify(modelJson).slice(0, 100));
    await expectLoadFails(`file:// load: ${modelJsonPath} is not valid JSON`);
  });

  it('an empty model.json', async () => {
    await fs.writeFile(modelJsonPath, '');
    await expectLoadFails(`file:// load: ${modelJsonPath} is not valid JSON`);
  });

  it('JSON that is not a model.json', async () => {
    await fs.writeFile(modelJsonPath, '{"weights": []}');
    await expectLoadFails(`file:// load: ${modelJsonPath} has no 'modelTopology'`);
  });

  it('missing model.json (the error keeps the OS code)', async () => {
    await fs.rm(modelJsonPath);
    await expectLoadFails(`file:// load: model.json ${modelJsonPath} does not exist`);
    await expect(tf.loadLayersModel(fileHandler(modelJsonPath))).rejects.toMatchObject({code: 'ENOENT'});
  });

  it('unknown layer class', async () => {
    (modelJson.modelTopology as {config: {layers: {class_name: string}[]}}).config.layers[1].class_name = 'NoSuchNorm';
    await writeModelJson();
    await expectLoadFails(`${modelJsonPath}: layer 'bn' has class 'NoSuchNorm', which is not registered with tf.serialization.registerClass`);
  });

  it('missing weights file', async () => {
    await fs.rm(weightsPath);
    await expectLoadFails(`file:// load: weights file (for conv/kernel, conv/bias, bn/gamma, bn/beta, dense/kernel, dense/bias, ` +
        `bn/moving_mean, bn/moving_variance) ${weightsPath} does not exist`);
  });

  it('a directory in place of the weights file', async () => {
    await fs.rm(weightsPath);
    await fs.mkdir(weightsPath);
    await expectLoadFails(`${weightsPath} is not a file`);
  });

  it('a directory in place of model.json', async () => {
    await fs.rm(modelJsonPath);
    await fs.mkdir(modelJsonPath);
    await expectFails(() => tf.loadLayersModel(fileHandler(dir)), `file:// load: cannot read model.json ${modelJsonPath} (EISDIR`);
  });

  it('short weights file: names the file, both byte counts and the weights cut off', async () => {
    await fs.writeFile(weightsPath, weights.subarray(0, weights.length - 20));
    await expectLoadFails(`file:// load: ${weightsPath} holds ${weights.length - 20} bytes but the weights manifest needs ` +
        `${weights.length} bytes; missing or truncated weights: bn/moving_mean, bn/moving_variance`);
  });

  it('empty weights file', async () => {
    await fs.writeFile(weightsPath, '');
    await expectLoadFails(`file:// load: ${weightsPath} holds 0 bytes but the weights manifest needs ${weights.length} bytes`);
  });

  it('weights file longer than the manifest describes', async () => {
    await fs.writeFile(weightsPath, Buffer.concat([weights, Buffer.alloc(8)]));
    await expectLoadFails(`file:// load: ${weightsPath} holds ${weights.length + 8} bytes but the weights manifest describes ${weights.length} bytes`);
  });

  it('a weight of the wrong shape (moving_mean of 3 values for a 4-channel layer) names the layer and the weight', async () => {
    spec('bn/moving_mean').shape = [3];
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

  it('a path outside the model directory is refused (a hostile manifest could read any file)', async () => {
    await fs.writeFile(path.join(path.dirname(dir), `${path.basename(dir)}-outside.bin`), weights);
    try {
      modelJson.weightsManifest[0].paths = [`../${path.basename(dir)}-outside.bin`];
      await writeModelJson();
      await expectLoadFails(`${modelJsonPath}: weights manifest group 0: path '../${path.basename(dir)}-outside.bin' is outside the model's directory`);
    } finally {
      await fs.rm(path.join(path.dirname(dir), `${path.basename(dir)}-outside.bin`));
    }
  });
});

describe('malformed weights manifests: every error names the file, the group or weight, and what is wrong', () => {
  type Edit = (json: tf.io.ModelJSON & {[key: string]: unknown}) => void;
  const group = (json: tf.io.ModelJSON) => json.weightsManifest[0] as unknown as {[key: string]: unknown};
  const gammaOf = (json: tf.io.ModelJSON) => json.weightsManifest[0].weights[2] as unknown as {[key: string]: unknown};
  const cases: [string, Edit, string][] = [
    ['weightsManifest not a list', j => { j.weightsManifest = {} as never; },
      `'weightsManifest' is {}, expected a list of weight groups`],
    ['a group that is not an object', j => { j.weightsManifest = [null] as never; },
      'weights manifest group 0 is null, expected an object'],
    ["missing 'paths'", j => { delete group(j).paths; },
      "weights manifest group 0: 'paths' is missing, expected a non-empty list of file names"],
    ["empty 'paths'", j => { group(j).paths = []; },
      "weights manifest group 0: 'paths' is [], expected a non-empty list of file names"],
    ["a number in 'paths'", j => { group(j).paths = [7]; },
      "weights manifest group 0: 'paths' is [7], expected a non-empty list of file names"],
    ["missing 'weights'", j => { delete group(j).weights; },
      "weights manifest group 0 (weights.bin): 'weights' is missing, expected a list of weight entries"],
    ['a weight entry that is a string', j => { j.weightsManifest[0].weights[2] = 'bn/gamma' as never; },
      'weights manifest group 0 (weights.bin): weight 2 is "bn/gamma", expected an object'],
    ["missing 'name'", j => { delete gammaOf(j).name; },
      "weights manifest group 0 (weights.bin): weight 2: 'name' is missing, expected a non-empty string"],
    ['null shape', j => { gammaOf(j).shape = null; },
      "weights manifest group 0 (weights.bin): weight 2 ('bn/gamma'): 'shape' is null, expected a list of non-negative integers"],
    ['a string shape', j => { gammaOf(j).shape = '4'; },
      "weights manifest group 0 (weights.bin): weight 2 ('bn/gamma'): 'shape' is \"4\", expected a list of non-negative integers"],
    ['a negative dimension', j => { gammaOf(j).shape = [-4]; },
      "weights manifest group 0 (weights.bin): weight 2 ('bn/gamma'): 'shape' is [-4], expected a list of non-negative integers"],
    ['a fractional dimension', j => { gammaOf(j).shape = [2.5]; },
      "weights manifest group 0 (weights.bin): weight 2 ('bn/gamma'): 'shape' is [2.5], expected a list of non-negative integers"],
    ['a shape too large to address', j => { gammaOf(j).shape = [1e9, 1e9]; },
      "weights manifest group 0 (weights.bin): weight 2 ('bn/gamma'): 'shape' [1000000000,1000000000] has 1000000000000000000 elements, more than can be addressed"],
    ['an unknown dtype', j => { gammaOf(j).dtype = 'float64'; },
      "weights manifest group 0 (weights.bin): weight 2 ('bn/gamma'): 'dtype' is \"float64\", expected one of float32, int32, bool, complex64, string"],
    ['a missing dtype', j => { delete gammaOf(j).dtype; },
      "weights manifest group 0 (weights.bin): weight 2 ('bn/gamma'): 'dtype' is missing"],
    ['int32 for a float32 weight (same byte size)', j => { gammaOf(j).dtype = 'int32'; },
      "layer 'bn' (TfjsBatchNorm>BatchNorm) weight 'gamma' has dtype int32 in the weights manifest, but the layer expects float32"],
    ['null quantization', j => { gammaOf(j).quantization = null; },
      "weights manifest group 0 (weights.bin): weight 2 ('bn/gamma'): 'quantization' is null, expected {dtype: 'uint8' | 'uint16' | 'float16', …}"],
    ['uint8 quantization without min and scale', j => { gammaOf(j).quantization = {dtype: 'uint8'}; },
      "weights manifest group 0 (weights.bin): weight 2 ('bn/gamma'): 'quantization' has min missing, expected a finite number"],
    ['a weight listed twice', j => { j.weightsManifest[0].weights[3] = {...j.weightsManifest[0].weights[2]}; },
      "the weights manifest lists weight 'bn/gamma' twice (entries 2 and 3)"],
    ['a training config that is a string', j => { j.trainingConfig = 'adam' as never; },
      "'trainingConfig' is \"adam\", expected an object"],
    ['an unknown loss in the training config', j => {
      j.trainingConfig = {loss: 'noSuchLoss', optimizer_config: {class_name: 'Adam', config: {learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7}}} as never;
    }, "'trainingConfig' cannot be applied: Unknown loss noSuchLoss"],
    ['an optimizer config without a learning rate', j => {
      j.trainingConfig = {loss: 'mean_squared_error', optimizer_config: {class_name: 'Adam', config: {}}} as never;
    }, "'trainingConfig' cannot be applied: values passed to tensor(values) must be a number"],
  ];

  it.each(cases)('%s', async (_, edit, message) => {
    edit(modelJson as tf.io.ModelJSON & {[key: string]: unknown});
    await writeModelJson();
    await expectLoadFails(`file:// load: ${modelJsonPath}: ${message}`);
  });
});

describe('bad layer configs fail naming the layer, and leak nothing', () => {
  const cases: [string, string, {[key: string]: unknown}, string][] = [
    ['axis 99', 'bn', {axis: 99}, "layer 'bn' (TfjsBatchNorm>BatchNorm) cannot be built from its config: BatchNorm layer 'bn': argument 'axis' is 99"],
    ['epsilon -1', 'bn', {epsilon: -1}, "layer 'bn' (TfjsBatchNorm>BatchNorm) cannot be built from its config: BatchNorm layer 'bn': argument 'epsilon' is -1"],
    ['momentum 2', 'bn', {momentum: 2}, "layer 'bn' (TfjsBatchNorm>BatchNorm) cannot be built from its config: BatchNorm layer 'bn': argument 'momentum' is 2"],
    ['an unknown initializer', 'bn', {gamma_initializer: {class_name: 'NoSuchInit', config: {}}}, "layer 'bn' (TfjsBatchNorm>BatchNorm) cannot be built from its config: BatchNorm: Unknown initializer: NoSuchInit"],
    ['conv kernel_size null', 'conv', {kernel_size: null}, "layer 'conv' (Conv2D) cannot be built from its config"],
    ['dense units 0', 'dense', {units: 0}, "layer 'dense' (Dense) cannot be built from its config: Expected units to be a positive integer, but got 0."],
    ['dense units 2 (a valid config that does not fit the weights)', 'dense', {units: 2},
      "layer 'dense' (Dense) weight 'kernel' has shape [64,1] in the weights manifest, but the layer expects [64,2]"],
  ];

  it.each(cases)('%s', async (_, layer, change, message) => {
    Object.assign(layerConfig(layer), change);
    await writeModelJson();
    await expectLoadFails(`file:// load: ${modelJsonPath}: ${message}`);
  });
});

/**
 * The hostile file: a topology declaring 1e9 channels for a BatchNorm whose weights.bin
 * holds 48 bytes (4 weights of 3 channels). Building it as tfjs does allocates 4 × 4 GB.
 */
describe.each(['cpu', 'wasm'])('a topology declaring 1e9 channels [%s]', backend => {
  beforeAll(async () => {
    expect(await tf.setBackend(backend)).toBe(true);
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('is refused before anything is allocated, naming the layer and the weight; the backend keeps working', async () => {
    const good = tf.sequential({layers: [batchNormalization({name: 'bn', inputShape: [3]})]});
    const artifacts = await saveToMemory(good);
    expect((artifacts.weightData as ArrayBuffer).byteLength).toBe(48);
    const hostile = JSON.parse(JSON.stringify(artifacts.modelTopology));
    hostile.config.layers[0].config.batch_input_shape = [null, 1e9];
    const hostileDir = path.join(dir, 'hostile');
    await fs.mkdir(hostileDir);
    await fs.writeFile(path.join(hostileDir, 'model.json'), JSON.stringify({
      modelTopology: hostile, format: 'layers-model',
      weightsManifest: [{paths: ['weights.bin'], weights: artifacts.weightSpecs}],
    }));
    await fs.writeFile(path.join(hostileDir, 'weights.bin'), Buffer.from(artifacts.weightData as ArrayBuffer));

    const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    const before = Array.from((good.predict(x) as tf.Tensor).dataSync());
    const message = `layer 'bn' (TfjsBatchNorm>BatchNorm) weight 'gamma' has shape [3] in the weights manifest, but the layer expects [1000000000]`;
    // Peak bytes allocated during the failed load: the few scalar placeholders of the check, not 16 GB.
    const profile = await tf.profile(() => expectFails(() => tf.loadLayersModel(fileHandler(hostileDir)), message));
    expect(profile.peakBytes).toBeLessThan(1024);
    const inMemory = {...artifacts, modelTopology: hostile};
    await expectFails(() => tf.loadLayersModel(checkedLoader(tf.io.fromMemory(inMemory))), `the loaded model: ${message}`);

    // The backend still computes, and the good model predicts exactly as before.
    expect(Array.from((good.predict(x) as tf.Tensor).dataSync())).toEqual(before);
    expect(tf.sum(tf.ones([1000])).dataSync()[0]).toBe(1000);
    good.dispose();
  });
});

describe('checks for any handler (checkedLoader, checkModelArtifacts)', () => {
  it('checkedLoader wraps e.g. tf.io.fromMemory: a wrong shape fails early, naming layer and weight, without leaking', async () => {
    const artifacts = await saveToMemory(convBatchNormModel());
    const specsInMemory = artifacts.weightSpecs as tf.io.WeightsManifestEntry[];
    (specsInMemory.find(s => s.name === 'bn/gamma') as tf.io.WeightsManifestEntry).shape = [2, 2]; // same byte count, wrong shape
    await expectFails(() => tf.loadLayersModel(checkedLoader(tf.io.fromMemory(artifacts))),
        "the loaded model: layer 'bn' (TfjsBatchNorm>BatchNorm) weight 'gamma' has shape [2,2] in the weights manifest, but the layer expects [4]");
  });

  it('malformed weight specs from any handler name the spec (as IndexedDB or a custom handler would return them)', async () => {
    const artifacts = await saveToMemory(convBatchNormModel());
    (artifacts.weightSpecs as unknown as {shape: unknown}[])[2].shape = null;
    const stored: tf.io.IOHandler = {load: async () => artifacts};
    await expectFails(() => tf.loadLayersModel(checkedLoader(stored)),
        "the loaded model: weight specs: weight 2 ('bn/gamma'): 'shape' is null, expected a list of non-negative integers");
  });

  it('weights in the specs but no data (and a topology without any weights) are refused', async () => {
    const artifacts = await saveToMemory(convBatchNormModel());
    await expectFails(() => checkModelArtifacts({...artifacts, weightData: undefined}, 'memory'),
        'memory: the weight specs list 8 weights, but there is no weight data');
    await expectFails(() => checkModelArtifacts({modelTopology: artifacts.modelTopology}, 'memory'),
        "memory: there are no weights, but the model's layers have 8: layer 'conv' (Conv2D) weight 'kernel'");
  });

  it('short weight data from any source names the weights cut off', async () => {
    const artifacts = await saveToMemory(convBatchNormModel());
    const data = artifacts.weightData as ArrayBuffer;
    artifacts.weightData = data.slice(0, data.byteLength - 4);
    await expect(checkModelArtifacts(artifacts, 'memory')).rejects.toThrow(
        `memory: the weight data holds ${data.byteLength - 4} bytes but the weights manifest needs ${data.byteLength} bytes; ` +
        'missing or truncated weights: bn/moving_variance');
  });

  it('optimizer state of the wrong shape is refused (tfjs would assign it unchecked and fail at the next step)', async () => {
    const model = convBatchNormModel();
    const {x, y} = {x: tf.ones([2, 6, 6, 2]), y: tf.ones([2, 1])};
    await model.fit(x, y, {epochs: 1, verbose: 0});
    tf.dispose([x, y]);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async a => {
      artifacts = a;
      return {modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a)};
    }), {includeOptimizer: true});
    const saved = artifacts as tf.io.ModelArtifacts;
    const state = (saved.weightSpecs as tf.io.WeightsManifestEntry[]).filter(s => s.group === 'optimizer');
    expect(state[0]).toMatchObject({name: 'iter', shape: []});
    const moment = state.find(s => /^bn\/gamma(_\d+)?\/m$/.test(s.name)) as tf.io.WeightsManifestEntry;
    moment.shape = [2, 2];
    await expectFails(() => checkModelArtifacts(saved, 'memory'),
        `memory: optimizer weight '${moment.name}' has shape [2,2] in the weights manifest, but it belongs to layer 'bn' (TfjsBatchNorm>BatchNorm) weight 'gamma', of shape [4]`);
  });

  it('graph models (tfjs-converter output) are not checked as layers models', async () => {
    const artifacts: tf.io.ModelArtifacts = {
      format: 'graph-model', modelTopology: {node: [{name: 'x', op: 'Placeholder'}]},
      weightSpecs: [{name: 'w', shape: [2], dtype: 'float32'}], weightData: new ArrayBuffer(8),
    };
    await expect(checkModelArtifacts(artifacts, 'graph')).resolves.toBeUndefined();
  });
});

describe('http:// through checkedLoader', () => {
  it('model.json is checked before tfjs reads its manifest; a hostile topology is refused; a good model loads', async () => {
    const server = await startModelServer();
    try {
      const model = convBatchNormModel();
      await model.save(tf.io.http(`${server.url}/upload`, {fetchFunc: fetchForJest}));
      const url = `${server.url}/model.json`;
      const good = server.files.get('/model.json') as Buffer;
      const json = JSON.parse(good.toString());

      delete json.weightsManifest[0].paths;
      server.files.set('/model.json', Buffer.from(JSON.stringify(json)));
      await expectFails(() => tf.loadLayersModel(checkedLoader(url, {fetchFunc: fetchForJest})),
          `${url}: weights manifest group 0: 'paths' is missing, expected a non-empty list of file names`);

      json.weightsManifest[0].paths = ['model.weights.bin'];
      json.modelTopology.config.layers[0].config.batch_input_shape = [null, 6, 6, 1e9];
      server.files.set('/model.json', Buffer.from(JSON.stringify(json)));
      await expectFails(() => tf.loadLayersModel(checkedLoader(url, {fetchFunc: fetchForJest})),
          `${url}: layer 'conv' (Conv2D) weight 'kernel' has shape [3,3,2,4] in the weights manifest, but the layer expects [3,3,1000000000,4]`);

      server.files.set('/model.json', good);
      const loaded = await tf.loadLayersModel(checkedLoader(url, {fetchFunc: fetchForJest}));
      expect(loaded.getWeights().map(w => Array.from(w.dataSync()))).toEqual(model.getWeights().map(w => Array.from(w.dataSync())));
      loaded.dispose();
    } finally {
      await server.close();
    }
  });
});
