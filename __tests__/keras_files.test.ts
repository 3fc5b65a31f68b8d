/**
 * Keras files with Batch Renormalization and ghost batches, both ways. Hand-written model.json files
 * as tensorflowjs_converter writes them for Keras 2 (tf.keras 2.15: renorm; virtual_batch_size,
 * whose axes Keras 2 writes shifted by one and whose weights have Keras 2's rank + 1 shape) and
 * Keras 3.14 (renorm; dtype policies, initializers with module/registered_name, weights named by
 * index) load through replaceBuiltinBatchNormalization() and predict exactly: bit for bit what
 * plain batch normalization with the file's moving statistics predicts, and within 1e-5 of the
 * float64 formula; a training step matches the float64 reference (1e-4). stockFormat writes these
 * layers as Keras reads them and refuses what neither Keras nor stock tfjs can hold (a schedule).
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import {BatchNorm, batchNormalization, stockFormat} from '../src/node'; // the Node entry: it registers file://
import {expectClose} from './support/golden';
import {RefProblem} from './support/reference';
import {refVariantTrain, RefVariantOptions} from './support/reference_variants';
import {loadReplacingStock, saveToMemory} from './support/round_trip';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const EPSILON = 0.001;
/** Per-channel values of the file's weights, in Keras' order. */
const VALUES: Record<string, number[]> = {
  gamma: [1.5, 0.5, 2, 0.75], beta: [0.1, -0.2, 0.3, 0], moving_mean: [0.9, 1.1, -1, 0.5], moving_variance: [4, 0.5, 9, 1.5],
  moving_stddev: [2, 0.7, 3, 1.2], renorm_mean: [1, 0.8, -0.5, 0.2], renorm_stddev: [1.8, 0.9, 2.5, 1.1],
};
const RENORM_NAMES = ['gamma', 'beta', 'moving_mean', 'moving_variance', 'moving_stddev', 'renorm_mean', 'renorm_stddev'];
const PLAIN_NAMES = RENORM_NAMES.slice(0, 4);

/** A Sequential model.json (as tensorflowjs_converter writes it) with one BatchNormalization layer. */
function kerasArtifacts(options: {generatedBy: string; kerasVersion: string; batchInputShape: Array<number | null>; config: Record<string, unknown>;
  entryExtras?: Record<string, unknown>; weightNames: string[]; weightShape: number[]; byIndex?: boolean}): tf.io.ModelArtifacts {
  const {config, weightNames, weightShape} = options;
  return {
    format: 'layers-model', generatedBy: options.generatedBy, convertedBy: 'TensorFlow.js Converter v4.22.0',
    modelTopology: {
      keras_version: options.kerasVersion, backend: 'tensorflow',
      model_config: {class_name: 'Sequential', config: {name: 'sequential', layers: [
        {class_name: 'InputLayer', config: {batch_input_shape: options.batchInputShape, dtype: 'float32', sparse: false, name: 'input_1'}},
        {...options.entryExtras, class_name: 'BatchNormalization', config: {name: 'batch_normalization', trainable: true, ...config}},
      ]}},
    },
    // Keras 3 weights are named by their index in the layer's weights, which tfjs matches by position.
    weightSpecs: weightNames.map((n, i) => ({name: `batch_normalization/${options.byIndex ? i : n}`, shape: weightShape, dtype: 'float32' as const})),
    weightData: new Float32Array(weightNames.flatMap(n => VALUES[n])).buffer,
  };
}


/**
 * Predictions of the loaded model: bit for bit those of plain batch normalization (our layer,
 * verified against the golden cases) with the file's four usual weights, and within 1e-5 of the
 * float64 formula (|y| ≤ ~10 here).
 */
function expectPredictsExactly(loaded: tf.LayersModel, inputShape: number[], axis: number): void {
  const bn = loaded.getLayer('batch_normalization') as BatchNorm;
  expect(bn).toBeInstanceOf(BatchNorm);
  const x = tf.randomNormal(inputShape, 0.5, 2, 'float32', 3);
  const plain = batchNormalization({axis, epsilon: EPSILON});
  const values = PLAIN_NAMES.map(n => tf.tensor1d(VALUES[n]));
  tf.tidy(() => { plain.apply(tf.zeros(inputShape)); });
  plain.setWeights(values);
  const [got, want] = [loaded.predict(x) as tf.Tensor, plain.apply(x) as tf.Tensor];
  expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
  const channelOf = (i: number) => Math.floor(i / inputShape.slice(axis + 1).reduce((n, d) => n * d, 1)) % inputShape[axis];
  const formula = Array.from(x.dataSync(), (v, i) => {
    const c = channelOf(i);
    return VALUES.gamma[c] * (v - VALUES.moving_mean[c]) / Math.sqrt(VALUES.moving_variance[c] + EPSILON) + VALUES.beta[c];
  });
  got.dataSync().forEach((g, i) => expect(Math.abs(g - formula[i])).toBeLessThanOrEqual(1e-5));
  tf.dispose([x, got, want, ...values]);
  plain.dispose();
}

/** One training step of the loaded layer against the float64 reference, from the file's state. */
function expectTrainsLikeReference(loaded: tf.LayersModel, inputShape: number[], axis: number, options: RefVariantOptions): void {
  const x = tf.randomNormal(inputShape, 1, 2, 'float32', 4);
  const problem: RefProblem = {shape: inputShape, axes: [axis], x: Float64Array.from(x.dataSync()), epsilon: EPSILON,
    gamma: VALUES.gamma.map(Math.fround), beta: VALUES.beta.map(Math.fround)};
  const y = loaded.getLayer('batch_normalization').apply(x, {training: true}) as tf.Tensor;
  expectClose(y.dataSync(), refVariantTrain(problem, options).y, 1e-4, 'training step y');
  tf.dispose([x, y]);
}

const renormState = () => ({movingMean: VALUES.moving_mean, movingStddev: VALUES.moving_stddev, renormMean: VALUES.renorm_mean,
  renormStddev: VALUES.renorm_stddev});

describe('Keras files load through replaceBuiltinBatchNormalization() and predict exactly', () => {
  test('Keras 2 (tf.keras 2.15) with renorm', async () => {
    const clipping = {rmax: 3, rmin: 0.3333, dmax: 5};
    const loaded = await loadReplacingStock(kerasArtifacts({
      generatedBy: 'keras v2.15.0', kerasVersion: '2.15.0', batchInputShape: [null, 2, 3, 4], weightNames: RENORM_NAMES, weightShape: [4],
      config: {dtype: 'float32', axis: [3], momentum: 0.99, epsilon: EPSILON, center: true, scale: true,
        beta_initializer: {class_name: 'Zeros', config: {}}, gamma_initializer: {class_name: 'Ones', config: {}},
        moving_mean_initializer: {class_name: 'Zeros', config: {}}, moving_variance_initializer: {class_name: 'Ones', config: {}},
        beta_regularizer: null, gamma_regularizer: null, beta_constraint: null, gamma_constraint: null,
        renorm: true, renorm_clipping: clipping, renorm_momentum: 0.99},
    }));
    const bn = loaded.getLayer('batch_normalization') as BatchNorm;
    expect([bn.renorm, bn.renormClipping, bn.renormMomentum]).toEqual([true, clipping, 0.99]);
    expect(bn.weights.map(w => w.originalName.split('/').pop())).toEqual(RENORM_NAMES);
    expectPredictsExactly(loaded, [3, 2, 3, 4], 3);
    expectTrainsLikeReference(loaded, [3, 2, 3, 4], 3, {renorm: {state: renormState(), clipping}});
    loaded.dispose();
  });

  test('Keras 2 with virtual_batch_size, channels-last: axis written shifted ([4] for axis 3), weights [1, 1, 1, 1, 4]', async () => {
    const loaded = await loadReplacingStock(kerasArtifacts({
      generatedBy: 'keras v2.15.0', kerasVersion: '2.15.0', batchInputShape: [null, 2, 3, 4], weightNames: PLAIN_NAMES, weightShape: [1, 1, 1, 1, 4],
      config: {dtype: 'float32', axis: [4], momentum: 0.99, epsilon: EPSILON, center: true, scale: true, virtual_batch_size: 2},
    }));
    const bn = loaded.getLayer('batch_normalization') as BatchNorm;
    expect([bn.axis, bn.virtualBatchSize]).toEqual([[3], 2]);
    expect(bn.weights.map(w => w.shape)).toEqual(Array(4).fill([1, 1, 1, 1, 4]));
    expectPredictsExactly(loaded, [4, 2, 3, 4], 3);
    expectTrainsLikeReference(loaded, [4, 2, 3, 4], 3, {virtualBatchSize: 2});
    loaded.dispose();
  });

  test('Keras 2 with virtual_batch_size and renorm, channels-first: axis [2] for axis 1, weights [1, 1, 4, 1, 1]', async () => {
    const clipping = {rmax: 2, dmax: 1};
    const loaded = await loadReplacingStock(kerasArtifacts({
      generatedBy: 'keras v2.15.0', kerasVersion: '2.15.0', batchInputShape: [null, 4, 2, 3], weightNames: RENORM_NAMES, weightShape: [1, 1, 4, 1, 1],
      config: {dtype: 'float32', axis: [2], epsilon: EPSILON, virtual_batch_size: 3, renorm: true, renorm_clipping: clipping, renorm_momentum: 0.9},
    }));
    expect((loaded.getLayer('batch_normalization') as BatchNorm).axis).toEqual([1]);
    expectPredictsExactly(loaded, [3, 4, 2, 3], 1);
    expectTrainsLikeReference(loaded, [6, 4, 2, 3], 1, {virtualBatchSize: 3, renorm: {state: renormState(), clipping}});
    loaded.dispose();
  });

  test('Keras 3.14 with renorm (dtype policy, initializers with module/registered_name, synchronized, weights by index)', async () => {
    const initializer = (className: string) => ({module: 'keras.initializers', class_name: className, config: {}, registered_name: null});
    const loaded = await loadReplacingStock(kerasArtifacts({
      generatedBy: 'keras v3.14.0', kerasVersion: '3.14.0', batchInputShape: [null, 2, 3, 4], weightNames: RENORM_NAMES, weightShape: [4], byIndex: true,
      entryExtras: {module: 'keras.layers', registered_name: null, build_config: {input_shape: [null, 2, 3, 4]}},
      config: {dtype: {module: 'keras', class_name: 'DTypePolicy', config: {name: 'float32'}, registered_name: null},
        axis: -1, momentum: 0.99, epsilon: EPSILON, center: true, scale: true,
        beta_initializer: initializer('Zeros'), gamma_initializer: initializer('Ones'),
        moving_mean_initializer: initializer('Zeros'), moving_variance_initializer: initializer('Ones'),
        beta_regularizer: null, gamma_regularizer: null, beta_constraint: null, gamma_constraint: null,
        synchronized: false, renorm: true, renorm_clipping: {}, renorm_momentum: 0.99},
    }));
    const bn = loaded.getLayer('batch_normalization') as BatchNorm;
    expect(bn.renormClipping).toEqual({});
    // By index: the values landed in Keras 3's order, so moving_stddev holds the file's 5th weight.
    expect(Array.from(bn.weights[4].read().dataSync())).toEqual(VALUES.moving_stddev.map(Math.fround));
    expectPredictsExactly(loaded, [3, 2, 3, 4], 3);
    expectTrainsLikeReference(loaded, [3, 2, 3, 4], 3, {renorm: {state: renormState(), clipping: {}}});
    loaded.dispose();
  });
});

describe('stockFormat with renorm and ghost batches', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tfjs-batchnorm-keras-'));
  });
  afterEach(async () => {
    await fs.rm(tmp, {recursive: true, force: true});
  });

  const model = (args: Record<string, unknown>) => tf.sequential({layers: [batchNormalization({name: 'bn', inputShape: [2, 3, 4], ...args})]});

  test('writes Keras\' keys and weights (Keras 2 ghost layout, integer axis), which load back exactly', async () => {
    const m = model({renorm: true, renormClipping: {rmax: 3, rmin: 1 / 3, dmax: 5}, renormMomentum: 0.9, virtualBatchSize: 2});
    const x = tf.randomNormal([4, 2, 3, 4], 1, 2, 'float32', 9);
    tf.dispose(m.getLayer('bn').apply(x, {training: true}) as tf.Tensor); // a training step: every weight has a value of its own
    const written = await saveToMemory(m, stockFormat);
    const entry = (written.modelTopology as {config: {layers: Array<{class_name: string; config: Record<string, unknown>}>}}).config.layers[0];
    expect(entry.class_name).toBe('BatchNormalization');
    expect(entry.config).toMatchObject({axis: -1, renorm: true, renorm_clipping: {rmax: 3, rmin: 1 / 3, dmax: 5}, renorm_momentum: 0.9, virtual_batch_size: 2});
    expect(written.weightSpecs?.map(s => [s.name.split('/').pop(), s.shape])).toEqual(RENORM_NAMES.map(n => [n, [1, 1, 1, 1, 4]]));
    const loaded = await loadReplacingStock(written);
    expect((loaded.getLayer('bn') as BatchNorm).axis).toBe(-1);
    const [a, b] = [m.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(loaded.getWeights().map(w => Array.from(w.dataSync()))).toEqual(m.getWeights().map(w => Array.from(w.dataSync())));
    tf.dispose([x, a, b]);
    m.dispose();
    loaded.dispose();
  });

  test('stock tfjs cannot hold renorm or ghost batches: it refuses those files loudly (extra weights, Keras 2 shapes), never silently', async () => {
    for (const [args, message] of [[{renorm: true}, /Provided weight data has no target variable: bn\/moving_stddev/],
      [{virtualBatchSize: 2}, /Shape mismatch: \[4\] vs. \[1,1,1,1,4\]/]] as Array<[Record<string, unknown>, RegExp]>) {
      const written = await saveToMemory(model(args), stockFormat);
      await expect(tf.loadLayersModel(tf.io.fromMemory(written))).rejects.toThrow(message);
    }
  });

  test('refuses a renormClipping schedule, naming the layer; nothing is written', async () => {
    const m = model({name: 'bn_sched', renorm: true, renormClipping: {rmax: {from: 1, to: 3, endStep: 100}}});
    const dir = `${tmp}/refused`;
    await expect(m.save(stockFormat(`file://${dir}`))).rejects.toThrow(
        /stockFormat: layer 'bn_sched' \(BatchNorm\) has a renormClipping schedule \(\{"rmax":\{"from":1,"to":3,"end_step":100\}\}\), which neither Keras nor stock tfjs can represent/);
    await expect(fs.readdir(dir)).rejects.toThrow('ENOENT');
    m.dispose();
  });
});
