/**
 * Interop with the stock BatchNormalization layer, both ways: stock tfjs / Keras-converted models
 * loaded with BatchNorm in place (replaceBuiltinBatchNormalization, and its undo), and BatchNorm
 * models saved in the stock format (stockFormat) that plain tfjs loads as the stock layer.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
// file:// saves below need the Node entry (the file:// handler is registered there, not in the browser entry).
import {BatchNorm, batchNormalization, replaceBuiltinBatchNormalization, stockFormat} from '../src/node';
import {fileHandler} from '../src/io/file_handler';
import {compileForTest, expectSamePredictions, loadReplacingStock, saveToMemory, train} from './support/round_trip';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const classNameMap = tf.serialization.SerializationMap.getMap().classNameMap;

/** The conv → batch norm → relu → flatten → dense model, with the stock layer or ours, same names and seeds. */
function model(useOurs: boolean, bnArgs: {axis?: number | number[]} = {}): tf.Sequential {
  const bn = useOurs ? batchNormalization({name: 'bn', ...bnArgs}) : tf.layers.batchNormalization({name: 'bn', ...bnArgs as {axis?: number}});
  const m = tf.sequential({
    name: 'net',
    layers: [
      tf.layers.conv2d({name: 'conv', inputShape: [6, 6, 2], filters: 4, kernelSize: 3, kernelInitializer: tf.initializers.glorotUniform({seed: 1})}),
      bn,
      tf.layers.reLU({name: 'relu'}),
      tf.layers.flatten({name: 'flatten'}),
      tf.layers.dense({name: 'dense', units: 1, kernelInitializer: tf.initializers.glorotUniform({seed: 2})}),
    ],
  });
  m.compile({optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError'});
  return m;
}

/** Gives a model's BatchNorm non-trivial statistics and affine parameters, identical for stock and ours. */
function setBatchNormWeights(m: tf.LayersModel): void {
  const values = [[1.5, 0.5, 2, 0.75], [0.1, -0.2, 0.3, 0], [2.9, 3.1, 3, 2.5], [4, 0.5, 9, 1.5]];
  m.getLayer('bn').setWeights(values.map(v => tf.tensor1d(v)));
}

/** Runs `body` with this package's class unregistered, as in a program that never imported it. */
async function withoutThisPackage<T>(body: () => Promise<T>): Promise<T> {
  const entry = classNameMap[BatchNorm.className];
  delete classNameMap[BatchNorm.className];
  try {
    return await body();
  } finally {
    classNameMap[BatchNorm.className] = entry;
  }
}

describe('replaceBuiltinBatchNormalization', () => {
  it('loads a model saved by stock tfjs with BatchNorm in place: same weights, identical predictions; undo restores the stock class', async () => {
    const stock = model(false);
    setBatchNormWeights(stock);
    const artifacts = await saveToMemory(stock);
    const stockEntry = classNameMap.BatchNormalization;

    const replaced = await loadReplacingStock(artifacts);
    expect(classNameMap.BatchNormalization).toBe(stockEntry);
    const undo = replaceBuiltinBatchNormalization();
    expect(classNameMap.BatchNormalization).not.toBe(stockEntry);
    undo();
    expect(classNameMap.BatchNormalization).toBe(stockEntry);
    undo(); // a second call changes nothing
    expect(classNameMap.BatchNormalization).toBe(stockEntry);

    expect(replaced.getLayer('bn')).toBeInstanceOf(BatchNorm);
    expect(replaced.getLayer('bn').getWeights().map(w => Array.from(w.dataSync())))
        .toEqual(stock.getLayer('bn').getWeights().map(w => Array.from(w.dataSync())));
    expectSamePredictions(replaced, stock);
    // It trains as BatchNorm, and saves under BatchNorm's own class name.
    compileForTest(replaced);
    expect(Number.isFinite((await train(replaced, 1))[0])).toBe(true);
    const resaved = JSON.stringify((await saveToMemory(replaced)).modelTopology);
    expect(resaved).toContain(`"class_name":"${BatchNorm.className}"`);

    const afterUndo = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    expect(afterUndo.getLayer('bn')).not.toBeInstanceOf(BatchNorm);
    expect(afterUndo.getLayer('bn').getClassName()).toBe('BatchNormalization');
  });

  it.each([
    ['in call order (u1(); u2())', [0, 1]],
    ['in reverse order (u2(); u1())', [1, 0]],
  ])('two replacements undone %s: the stock class comes back only with the last undo', (_, order) => {
    const stockEntry = classNameMap.BatchNormalization;
    const undo = [replaceBuiltinBatchNormalization(), replaceBuiltinBatchNormalization()];
    undo[order[0]]();
    expect(classNameMap.BatchNormalization).not.toBe(stockEntry); // one replacement is still in effect
    expect(classNameMap.BatchNormalization[0]).toBe(BatchNorm);
    undo[order[1]]();
    expect(classNameMap.BatchNormalization).toBe(stockEntry);
    undo[order[0]](); // repeated calls change nothing
    expect(classNameMap.BatchNormalization).toBe(stockEntry);
  });

  it('an undo leaves alone a registration someone else made meanwhile', () => {
    const stockEntry = classNameMap.BatchNormalization;
    const undo = replaceBuiltinBatchNormalization();
    const theirs = [...stockEntry] as typeof stockEntry;
    classNameMap.BatchNormalization = theirs;
    undo();
    expect(classNameMap.BatchNormalization).toBe(theirs);
    classNameMap.BatchNormalization = stockEntry;
  });

  it('loads a Keras-converted model.json (snake_case config, axis as a one-element list, Keras-only keys)', async () => {
    // What tensorflowjs_converter writes for keras.Sequential([Input((2, 3, 4)), BatchNormalization()]) (Keras 2.x).
    const modelJson = {
      format: 'layers-model', generatedBy: 'keras v2.15.0', convertedBy: 'TensorFlow.js Converter v4.22.0',
      modelTopology: {
        keras_version: '2.15.0', backend: 'tensorflow',
        model_config: {class_name: 'Sequential', config: {name: 'sequential', layers: [
          {class_name: 'InputLayer', config: {batch_input_shape: [null, 2, 3, 4], dtype: 'float32', sparse: false, ragged: false, name: 'input_1'}},
          {class_name: 'BatchNormalization', config: {
            name: 'batch_normalization', trainable: true, dtype: 'float32', axis: [3], momentum: 0.99, epsilon: 0.001,
            center: true, scale: true,
            beta_initializer: {module: 'keras.initializers', class_name: 'Zeros', config: {}, registered_name: null},
            gamma_initializer: {module: 'keras.initializers', class_name: 'Ones', config: {}, registered_name: null},
            moving_mean_initializer: {module: 'keras.initializers', class_name: 'Zeros', config: {}, registered_name: null},
            moving_variance_initializer: {module: 'keras.initializers', class_name: 'Ones', config: {}, registered_name: null},
            beta_regularizer: null, gamma_regularizer: null, beta_constraint: null, gamma_constraint: null,
          }},
        ]}},
      },
    };
    const names = ['gamma', 'beta', 'moving_mean', 'moving_variance'];
    const values = [[1.5, 0.5, 2, 0.75], [0.1, -0.2, 0.3, 0], [0.9, 1.1, -1, 0.5], [4, 0.5, 9, 1.5]];
    const artifacts: tf.io.ModelArtifacts = {
      ...modelJson,
      weightSpecs: names.map(n => ({name: `batch_normalization/${n}`, shape: [4], dtype: 'float32'})),
      weightData: new Float32Array(values.flat()).buffer,
    };

    const ours = await loadReplacingStock(artifacts);
    expect(ours.getLayer('batch_normalization')).toBeInstanceOf(BatchNorm);

    // Reference: y = gamma (x - mean) / sqrt(variance + epsilon) + beta, per channel, in float64.
    const x = tf.randomNormal([3, 2, 3, 4], 0, 2, 'float32', 3);
    const xs = x.dataSync();
    const want = Array.from(xs, (v, i) => {
      const c = i % 4;
      return values[0][c] * (v - values[2][c]) / Math.sqrt(values[3][c] + 0.001) + values[1][c];
    });
    const got = (ours.predict(x) as tf.Tensor).dataSync();
    // float32 inference against a float64 reference: |error| <= 1e-5 (|y| is at most about 10 here).
    got.forEach((g, i) => expect(Math.abs(g - want[i])).toBeLessThanOrEqual(1e-5));
    x.dispose();
  });
});

describe('stockFormat', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tfjs-batchnorm-interop-'));
  });
  afterEach(async () => {
    await fs.rm(tmp, {recursive: true, force: true});
  });

  it('writes exactly what stock tfjs writes for the same model, which plain tfjs loads as the stock layer with identical predictions', async () => {
    const ours = model(true);
    const stock = model(false);
    for (const m of [ours, stock]) setBatchNormWeights(m);
    stock.setWeights(ours.getWeights()); // same conv and dense weights too (weight order is the same)

    const written = await saveToMemory(ours, stockFormat);
    const stockWritten = await saveToMemory(stock);
    expect(written.modelTopology).toEqual(stockWritten.modelTopology);
    expect(written.weightSpecs).toEqual(stockWritten.weightSpecs);
    expect(Buffer.from(written.weightData as ArrayBuffer).equals(Buffer.from(stockWritten.weightData as ArrayBuffer))).toBe(true);

    // The same through a URL: file:// into a directory, loaded by tfjs without this package's class.
    await ours.save(stockFormat(fileHandler(`${tmp}/stock`)));
    const plain = await withoutThisPackage(() => tf.loadLayersModel(fileHandler(`${tmp}/stock/model.json`)));
    expect(plain.getLayer('bn')).not.toBeInstanceOf(BatchNorm);
    expect(plain.getLayer('bn').getClassName()).toBe('BatchNormalization');
    expectSamePredictions(plain, ours);
  });

  it('writes a one-element axis list as the integer the stock format takes', async () => {
    const written = await saveToMemory(model(true, {axis: [3]}), stockFormat);
    const layers = (written.modelTopology as {config: {layers: {class_name: string, config: {axis: unknown}}[]}}).config.layers;
    expect(layers[1]).toMatchObject({class_name: 'BatchNormalization', config: {axis: 3}});
  });

  it('refuses, naming the layer and the option, when the layer has several axes; nothing is written', async () => {
    const m = tf.sequential({layers: [batchNormalization({name: 'bn_hw', axis: [1, 2], inputShape: [3, 4, 2]})]});
    const dir = `${tmp}/refused`;
    await expect(m.save(stockFormat(fileHandler(dir)))).rejects.toThrow(
        "stockFormat: layer 'bn_hw' (BatchNorm) has axis [1, 2], which the stock BatchNormalization format cannot express");
    await expect(fs.readdir(dir)).rejects.toThrow('ENOENT');
  });

  it('leaves the model saved normally unchanged (its own class name, axis list kept)', async () => {
    const m = tf.sequential({layers: [batchNormalization({name: 'bn_hw', axis: [1, 2], inputShape: [3, 4, 2]})]});
    const written = await saveToMemory(m);
    expect(JSON.stringify(written.modelTopology)).toContain(`"class_name":"${BatchNorm.className}"`);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(written));
    expect((loaded.getLayer('bn_hw') as BatchNorm).axis).toEqual([1, 2]);
    const x = tf.randomNormal([2, 3, 4, 2], 0, 1, 'float32', 5);
    const [a, b] = [m.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([x, a, b]);
  });
});
