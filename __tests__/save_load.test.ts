/**
 * model.save → tf.loadLayersModel round-trips of a model with BatchNorm: in memory, file:// (this
 * package's handler, as tfjs-node is not installable here) and http:// against a local server.
 * Each gives the same topology, bit-identical weights, identical predictions, and a model that
 * keeps training. Also: the file:// layout and the handler registration rules (crash consistency
 * and concurrent saves: save_consistency.test.ts). IO is backend-independent, so everything runs on cpu.
 */
import * as tf from '@tensorflow/tfjs';
import {createHash} from 'crypto';
import * as fsp from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import {BatchNorm, checkedLoader} from '../src/node'; // the Node entry: it registers file://
import {fileHandler} from '../src/io/file_handler';
import {fetchForJest, startModelServer} from './support/model_server';
import {convBatchNormModel, expectKeepsTraining, expectSameModel, saveToMemory, train} from './support/round_trip';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

let tmp: string;
beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'tfjs-batchnorm-'));
});
afterEach(async () => {
  await fsp.rm(tmp, {recursive: true, force: true});
});

describe('a conv2d → BatchNorm → relu → flatten → dense model', () => {
  it('trains with fit (loss falls), then saves to file:// and reloads identical and still training', async () => {
    const model = convBatchNormModel();
    const losses = await train(model, 15);
    // Tolerance-free claim: the last epoch's loss is below half the first one's.
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
    await model.save(fileHandler(`${tmp}/trained`));
    const loaded = await tf.loadLayersModel(fileHandler(`${tmp}/trained/model.json`));
    expect(loaded.getLayer('bn')).toBeInstanceOf(BatchNorm);
    expectSameModel(loaded, model);
    await expectKeepsTraining(loaded);
  });
});

describe('round-trips', () => {
  it('tf.io.withSaveHandler + tf.io.fromMemory', async () => {
    const model = convBatchNormModel();
    await train(model, 1); // moves the moving statistics off their initial values
    const artifacts = await saveToMemory(model);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    expect(loaded.getLayer('bn')).toBeInstanceOf(BatchNorm);
    expectSameModel(loaded, model);
    await expectKeepsTraining(loaded);
  });

  it('file:// writes model.json and a content-named weights file, and loads from model.json or its directory', async () => {
    const model = convBatchNormModel();
    await train(model, 1);
    const artifacts = await saveToMemory(model);
    const result = await model.save(fileHandler(`${tmp}/m`));
    const bytes = Buffer.from(artifacts.weightData as ArrayBuffer);
    expect(result.modelArtifactsInfo.weightDataBytes).toBe(bytes.byteLength);

    // The weights file is named by the first 16 hex digits of its SHA-256: a name never holds two contents.
    const weightsFile = `weights.${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.bin`;
    expect((await fsp.readdir(`${tmp}/m`)).sort()).toEqual(['model.json', weightsFile]);
    const json = JSON.parse(await fsp.readFile(`${tmp}/m/model.json`, 'utf8'));
    expect(json).toEqual({
      modelTopology: artifacts.modelTopology,
      format: 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: null,
      weightsManifest: [{paths: [weightsFile], weights: artifacts.weightSpecs}],
    });
    expect((await fsp.readFile(`${tmp}/m/${weightsFile}`)).equals(bytes)).toBe(true);

    for (const target of [`${tmp}/m/model.json`, `${tmp}/m`]) {
      const loaded = await tf.loadLayersModel(fileHandler(target));
      expectSameModel(loaded, model);
      await expectKeepsTraining(loaded);
    }
  });

  it('file:// loads the layout tfjs-node writes (model.json + weights.bin)', async () => {
    const model = convBatchNormModel();
    await train(model, 1);
    const artifacts = await saveToMemory(model);
    await fsp.mkdir(`${tmp}/node`);
    await fsp.writeFile(`${tmp}/node/weights.bin`, Buffer.from(artifacts.weightData as ArrayBuffer));
    await fsp.writeFile(`${tmp}/node/model.json`, JSON.stringify({
      modelTopology: artifacts.modelTopology, format: artifacts.format, generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy, weightsManifest: [{paths: ['weights.bin'], weights: artifacts.weightSpecs}],
    }));
    expectSameModel(await tf.loadLayersModel(fileHandler(`${tmp}/node/model.json`)), model);
  });

  it('file:// with includeOptimizer: the optimizer state comes back bit-identical', async () => {
    const model = convBatchNormModel();
    await train(model, 1);
    await model.save(fileHandler(`${tmp}/m`), {includeOptimizer: true});
    const loaded = await tf.loadLayersModel(fileHandler(`${tmp}/m/model.json`));
    expectSameModel(loaded, model);
    const bytes = async (m: tf.LayersModel) => (await m.optimizer.getWeights()).map(w => {
      const values = w.tensor.dataSync();
      return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('hex');
    });
    expect(loaded.optimizer.getClassName()).toBe('Adam');
    expect(await bytes(loaded)).toEqual(await bytes(model));
  });

  it('http:// (tf.io.http with Node fetch) against a local server', async () => {
    const server = await startModelServer();
    try {
      const model = convBatchNormModel();
      await train(model, 1);
      await model.save(tf.io.http(`${server.url}/upload`, {fetchFunc: fetchForJest}));
      expect([...server.files.keys()].sort()).toEqual(['/model.json', '/model.weights.bin']);
      const loaded = await tf.loadLayersModel(tf.io.http(`${server.url}/model.json`, {fetchFunc: fetchForJest}));
      expect(loaded.getLayer('bn')).toBeInstanceOf(BatchNorm);
      expectSameModel(loaded, model);
      await expectKeepsTraining(loaded);
      // The same files through checkedLoader (the checks file:// loads get, for any source), given the
      // handler or the URL (which also checks model.json before tfjs' HTTP loader reads it).
      expectSameModel(await tf.loadLayersModel(checkedLoader(tf.io.http(`${server.url}/model.json`, {fetchFunc: fetchForJest}))), model);
      expectSameModel(await tf.loadLayersModel(checkedLoader(`${server.url}/model.json`, {fetchFunc: fetchForJest})), model);
    } finally {
      await server.close();
    }
  });

  it('loads leave no tensors behind beyond the model they return', async () => {
    const model = convBatchNormModel();
    await model.save(fileHandler(`${tmp}/m`));
    const before = tf.memory().numTensors;
    const loaded = await tf.loadLayersModel(fileHandler(`${tmp}/m/model.json`));
    // The model's weights plus, compiled from the saved training config, nothing else until it trains.
    expect(tf.memory().numTensors - before).toBe(loaded.weights.length);
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('file:// handler registration', () => {
  it('this package provides the only file:// save and load handler when tfjs-node is absent', () => {
    expect(tf.io.getSaveHandlers('file:///tmp/x')).toHaveLength(1);
    expect(tf.io.getLoadHandlers('file:///tmp/x/model.json')).toHaveLength(1);
    expect(fileHandler('/tmp/x')).toBeInstanceOf(tf.io.getSaveHandlers('file:///tmp/x')[0].constructor);
  });

  it('steps aside for a file:// handler registered after it (tfjs-node imported later)', () => {
    const other: tf.io.IOHandler = {save: async () => ({modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}})};
    let active = true; // routers cannot be unregistered: this one declines once the test is over
    const router = ((url: string) => (active && url.startsWith('file://') ? other : null)) as unknown as Parameters<typeof tf.io.registerSaveRouter>[0];
    tf.io.registerSaveRouter(router);
    tf.io.registerLoadRouter(router);
    try {
      expect(tf.io.getSaveHandlers('file:///tmp/x')).toEqual([other]);
      expect(tf.io.getLoadHandlers('file:///tmp/x/model.json')).toEqual([other]);
    } finally {
      active = false;
    }
  });

  it('does not register when a file:// handler exists at import (tfjs-node imported first)', () => {
    jest.isolateModules(() => {
      // A fresh tfjs-core has a fresh router registry; the fake stands in for tfjs-node's.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const core = require('@tensorflow/tfjs-core') as typeof tf;
      const other: tf.io.IOHandler = {load: async () => ({})};
      const router = ((url: string) => (url.startsWith('file://') ? other : null)) as unknown as Parameters<typeof tf.io.registerLoadRouter>[0];
      core.io.registerSaveRouter(router);
      core.io.registerLoadRouter(router);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const pkg = require('../src/node') as typeof import('../src/node');
      expect(core.io.getSaveHandlers('file:///tmp/x')).toEqual([other]);
      expect(core.io.getLoadHandlers('file:///tmp/x')).toEqual([other]);
      expect(pkg.registerFileRouter()).toBe(false);
    });
  });
});
