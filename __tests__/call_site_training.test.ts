/**
 * Keras's call-site `training` argument (tfjs #7250) and the `inferenceStatistics` layer option:
 * a hand-written Keras functional model.json whose BatchNormalization node carries
 * `{"training": true}` in its kwargs (as Keras writes `BatchNormalization()(x, training=True)`,
 * e.g. in pix2pix) keeps normalizing with batch statistics in predict, loaded through
 * replaceBuiltinBatchNormalization() or as BatchNorm, and saves back the same way (stockFormat too).
 *
 * Tolerance: batch-statistics predictions against the float64 reference (refTrain on the conv
 * output, then tanh), max|Δ| / max|output|. Measured: 4.1e-8 (cpu); BATCH_TOLERANCE = 1e-6 (~24×).
 */
import * as tf from '@tensorflow/tfjs';
import {BatchNorm, batchNormalization, stockFormat} from '../src';
import {errorRelativeToMagnitude} from './support/deploy_models';
import {refInfer, refTrain} from './support/reference';
import {loadReplacingStock, saveToMemory} from './support/round_trip';

const BATCH_TOLERANCE = 1e-6;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const CONV_KERNEL = Array.from({length: 3 * 3 * 3 * 2}, (_, i) => Math.sin(i + 1) * 0.5);
const BN_WEIGHTS = {gamma: [1.5, 0.5], beta: [0.1, -0.2], moving_mean: [3, -1], moving_variance: [4, 0.25]};

/** A Keras functional model.json (tf.keras 2.x as tensorflowjs_converter writes it): input → conv → BN(training=True) → tanh. */
function kerasArtifacts(bnClassName = 'BatchNormalization', kwargs: object = {training: true}): tf.io.ModelArtifacts {
  const initializer = (name: string) => ({class_name: name, config: {}});
  const modelTopology = {
    keras_version: '2.15.0',
    backend: 'tensorflow',
    model_config: {
      class_name: 'Functional',
      config: {
        name: 'generator',
        layers: [
          {class_name: 'InputLayer', name: 'image', inbound_nodes: [],
            config: {batch_input_shape: [null, 4, 4, 3], dtype: 'float32', sparse: false, ragged: false, name: 'image'}},
          {class_name: 'Conv2D', name: 'conv', inbound_nodes: [[['image', 0, 0, {}]]],
            config: {name: 'conv', trainable: true, dtype: 'float32', filters: 2, kernel_size: [3, 3], strides: [1, 1], padding: 'same',
              data_format: 'channels_last', dilation_rate: [1, 1], activation: 'linear', use_bias: false,
              kernel_initializer: initializer('GlorotUniform'), bias_initializer: initializer('Zeros'),
              kernel_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, bias_constraint: null}},
          {class_name: bnClassName, name: 'bn', inbound_nodes: [[['conv', 0, 0, kwargs]]],
            config: {name: 'bn', trainable: true, dtype: 'float32', axis: [3], momentum: 0.99, epsilon: 0.001, center: true, scale: true,
              beta_initializer: initializer('Zeros'), gamma_initializer: initializer('Ones'),
              moving_mean_initializer: initializer('Zeros'), moving_variance_initializer: initializer('Ones'),
              beta_regularizer: null, gamma_regularizer: null, beta_constraint: null, gamma_constraint: null}},
          {class_name: 'Activation', name: 'tanh', inbound_nodes: [[['bn', 0, 0, {}]]],
            config: {name: 'tanh', trainable: true, dtype: 'float32', activation: 'tanh'}},
        ],
        input_layers: [['image', 0, 0]],
        output_layers: [['tanh', 0, 0]],
      },
    },
  };
  const weights: Array<[string, number[], number[]]> = [
    ['conv/kernel', [3, 3, 3, 2], CONV_KERNEL],
    ...Object.entries(BN_WEIGHTS).map(([n, v]) => [`bn/${n}`, [2], v] as [string, number[], number[]]),
  ];
  const weightData = new Float32Array(weights.flatMap(([, , v]) => v)).buffer;
  const weightSpecs = weights.map(([name, shape]) => ({name, shape, dtype: 'float32' as const}));
  return {modelTopology, weightSpecs, weightData, format: 'layers-model'};
}

const x = () => tf.randomNormal([4, 4, 4, 3], 1, 2, 'float32', 11);

/** tanh of the float64 batch norm of the conv output (the model's current weights), with batch statistics or the moving ones. */
function expected(model: tf.LayersModel, input: tf.Tensor, statistics: 'batch' | 'moving'): Float64Array {
  const conv = tf.model({inputs: model.inputs, outputs: model.getLayer('conv').output as tf.SymbolicTensor}).predict(input) as tf.Tensor;
  const [gamma, beta, movingMean, movingVariance] = model.getLayer('bn').getWeights().map(w => w.dataSync());
  const problem = {shape: conv.shape, axes: [3], x: conv.dataSync(), gamma, beta, epsilon: 1e-3};
  conv.dispose();
  const y = statistics === 'batch' ? refTrain(problem).y : refInfer(problem, movingMean, movingVariance);
  return y.map(Math.tanh);
}

function movingStatistics(model: tf.LayersModel): number[][] {
  return model.getLayer('bn').getWeights().slice(2).map(w => Array.from(w.dataSync()));
}

/** Predicts and asserts batch-statistics behavior; returns the predictions. */
function expectBatchStatistics(model: tf.LayersModel): Float32Array {
  const input = x();
  const stats = movingStatistics(model);
  const got = (model.predict(input) as tf.Tensor).dataSync() as Float32Array;
  expect(errorRelativeToMagnitude(got, expected(model, input, 'batch'))).toBeLessThanOrEqual(BATCH_TOLERANCE);
  // The moving statistics would give something else entirely, and predict leaves them alone.
  expect(errorRelativeToMagnitude(got, expected(model, input, 'moving'))).toBeGreaterThan(0.1);
  expect(movingStatistics(model)).toEqual(stats);
  input.dispose();
  return got;
}

describe('a Keras model.json with BatchNormalization()(x, training=True)', () => {
  test('loaded through replaceBuiltinBatchNormalization(): predict normalizes with batch statistics', async () => {
    const model = await loadReplacingStock(kerasArtifacts());
    expect(model.getLayer('bn')).toBeInstanceOf(BatchNorm);
    expectBatchStatistics(model);
    model.dispose();
  });

  test('loaded as BatchNorm (TfjsBatchNorm>BatchNorm): the same', async () => {
    const model = await tf.loadLayersModel(tf.io.fromMemory(kerasArtifacts(BatchNorm.className)));
    expectBatchStatistics(model);
    model.dispose();
  });

  test('saves back with the call-site argument (tfjs format and stockFormat), and reloads predicting bit for bit the same', async () => {
    const model = await loadReplacingStock(kerasArtifacts());
    const before = expectBatchStatistics(model);
    for (const wrap of [(h: tf.io.IOHandler) => h, stockFormat]) {
      const saved = await saveToMemory(model, wrap);
      const bn = (saved.modelTopology as {config: {layers: Array<{name: string; class_name: string; inbound_nodes: unknown}>}}).config.layers.find(l => l.name === 'bn')!;
      expect(bn.inbound_nodes).toEqual([[['conv', 0, 0, {training: true}]]]);
      const reloaded = await loadReplacingStock(saved);
      const input = x();
      expect((reloaded.predict(input) as tf.Tensor).dataSync()).toEqual(before);
      input.dispose();
      reloaded.dispose();
    }
    model.dispose();
  });

  test('fit still trains it and moves its moving statistics, as in Keras', async () => {
    const model = await loadReplacingStock(kerasArtifacts());
    model.compile({optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError'});
    const stats = movingStatistics(model);
    const input = x();
    const target = tf.zeros([4, 4, 4, 2]);
    await model.fit(input, target, {epochs: 1, batchSize: 4, verbose: 0});
    expect(movingStatistics(model)).not.toEqual(stats);
    tf.dispose([input, target]);
    model.dispose();
  });

  test('a call-site training: false keeps the layer in inference mode even in fit (moving statistics unchanged)', async () => {
    const model = await loadReplacingStock(kerasArtifacts('BatchNormalization', {training: false}));
    model.compile({optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError'});
    const stats = movingStatistics(model);
    const input = x();
    const target = tf.zeros([4, 4, 4, 2]);
    await model.fit(input, target, {epochs: 1, batchSize: 4, verbose: 0});
    expect(movingStatistics(model)).toEqual(stats);
    const got = (model.predict(input) as tf.Tensor).dataSync();
    expect(errorRelativeToMagnitude(got, expected(model, input, 'moving'))).toBeLessThanOrEqual(BATCH_TOLERANCE);
    tf.dispose([input, target]);
    model.dispose();
  });

  test('training: null (Python None) is no argument: predict uses the moving statistics, fit moves them', async () => {
    const model = await loadReplacingStock(kerasArtifacts('BatchNormalization', {training: null}));
    const input = x();
    const got = (model.predict(input) as tf.Tensor).dataSync();
    expect(errorRelativeToMagnitude(got, expected(model, input, 'moving'))).toBeLessThanOrEqual(BATCH_TOLERANCE);
    model.compile({optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError'});
    const stats = movingStatistics(model);
    const target = tf.zeros([4, 4, 4, 2]);
    await model.fit(input, target, {epochs: 1, batchSize: 4, verbose: 0});
    expect(movingStatistics(model)).not.toEqual(stats);
    tf.dispose([input, target]);
    model.dispose();
  });

  test('a layer called at two call sites that disagree: a clear error naming the layer', () => {
    const input = tf.input({shape: [3]});
    const bn = batchNormalization({name: 'twice'});
    const model = tf.model({inputs: input, outputs: [bn.apply(input, {training: true}) as tf.SymbolicTensor, bn.apply(input) as tf.SymbolicTensor]});
    expect(() => model.predict(tf.ones([2, 3]))).toThrow(
      /layer 'twice' is called at 2 call sites with different 'training' arguments \(training: true, no training argument\); tfjs runs every call of a layer the same way/);
    model.dispose();
  });
});

describe('the inferenceStatistics option', () => {
  /** conv → BatchNorm({inferenceStatistics}) → tanh, Sequential, with the Keras test model's weights. */
  function sequentialModel(args: object): tf.Sequential {
    const model = tf.sequential({layers: [
      tf.layers.conv2d({name: 'conv', inputShape: [4, 4, 3], filters: 2, kernelSize: 3, padding: 'same', useBias: false}),
      batchNormalization({name: 'bn', ...args}),
      tf.layers.activation({name: 'tanh', activation: 'tanh'}),
    ]});
    model.getLayer('conv').setWeights([tf.tensor4d(CONV_KERNEL, [3, 3, 3, 2])]);
    model.getLayer('bn').setWeights(Object.values(BN_WEIGHTS).map(v => tf.tensor1d(v)));
    return model;
  }

  test('\'batch\' normalizes with batch statistics in predict, and round-trips through the config (inference_statistics)', async () => {
    const model = sequentialModel({inferenceStatistics: 'batch'});
    const before = expectBatchStatistics(model);
    expect(model.getLayer('bn').getConfig().inferenceStatistics).toBe('batch');
    const saved = await saveToMemory(model);
    expect(JSON.stringify(saved.modelTopology)).toContain('"inference_statistics":"batch"');
    const reloaded = await tf.loadLayersModel(tf.io.fromMemory(saved));
    const input = x();
    expect((reloaded.predict(input) as tf.Tensor).dataSync()).toEqual(before);
    input.dispose();
    reloaded.dispose();
    model.dispose();
  });

  test('the default (\'moving\') writes no key: the config stays the stock layer\'s, key for key', () => {
    const ours = batchNormalization({name: 'a'});
    expect(ours.inferenceStatistics).toBe('moving');
    expect(Object.keys(ours.getConfig()).sort()).toEqual(Object.keys(tf.layers.batchNormalization({name: 'b'}).getConfig()).sort());
  });

  test('a frozen layer (trainable = false) still uses its moving statistics', () => {
    const model = sequentialModel({inferenceStatistics: 'batch'});
    model.getLayer('bn').trainable = false;
    const input = x();
    const got = (model.predict(input) as tf.Tensor).dataSync();
    expect(errorRelativeToMagnitude(got, expected(model, input, 'moving'))).toBeLessThanOrEqual(BATCH_TOLERANCE);
    input.dispose();
    model.dispose();
  });

  test('stockFormat writes it the Keras way (training: true in the node), and refuses a Sequential model, naming the layer', async () => {
    const input = tf.input({shape: [3], name: 'input'});
    const functional = tf.model({inputs: input, outputs: batchNormalization({name: 'bn', inferenceStatistics: 'batch'}).apply(input) as tf.SymbolicTensor});
    const saved = await saveToMemory(functional, stockFormat);
    const bn = (saved.modelTopology as {config: {layers: Array<{name: string; class_name: string; config: object; inbound_nodes: unknown}>}}).config.layers.find(l => l.name === 'bn')!;
    expect(bn.class_name).toBe('BatchNormalization');
    expect(bn.config).not.toHaveProperty('inference_statistics');
    expect(bn.inbound_nodes).toEqual([[['input', 0, 0, {training: true}]]]);
    const reloaded = await loadReplacingStock(saved);
    const data = tf.randomNormal([5, 3], 2, 3, 'float32', 1);
    expect((reloaded.predict(data) as tf.Tensor).dataSync()).toEqual((functional.predict(data) as tf.Tensor).dataSync());
    tf.dispose(data);
    reloaded.dispose();
    functional.dispose();

    const sequential = sequentialModel({inferenceStatistics: 'batch'});
    await expect(saveToMemory(sequential, stockFormat)).rejects.toThrow(
      /stockFormat: layer 'bn' has inferenceStatistics: 'batch', which the stock BatchNormalization format can only express as a call-site training argument/);
    sequential.dispose();
  });

  test('a value other than \'moving\' or \'batch\': a clear error naming the layer', () => {
    expect(() => batchNormalization({name: 'bad', inferenceStatistics: 'local' as 'batch'})).toThrow(
      /BatchNorm layer 'bad': argument 'inferenceStatistics' is "local", expected 'moving' or 'batch'/);
  });
});
