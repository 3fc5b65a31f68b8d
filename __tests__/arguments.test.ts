/**
 * The layer's arguments: unknown ones refused by name (as Keras' "Unrecognized keyword arguments");
 * every key Keras 1, 2, 3 and tfjs write into BatchNormalization configs loading exactly as the
 * stock layer loads it (each hand-written config next to the stock layer's result); the checks of
 * renorm's and ghost batches' arguments (Keras 3.14 / Keras 2 rules); and their config keys.
 */
import * as tf from '@tensorflow/tfjs';
import {BatchNorm, batchNormalization, BatchNormArgs, replaceBuiltinBatchNormalization} from '../src';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Runs f, expects it to throw `message`, and checks that nothing was left allocated. */
function expectError(f: () => unknown, message: RegExp | string): void {
  const before = tf.memory().numTensors;
  expect(f).toThrow(message);
  expect(tf.memory().numTensors).toBe(before);
}

const make = (args: Record<string, unknown>) => () => new BatchNorm(args as BatchNormArgs);

describe('unknown arguments', () => {
  test('are refused, every one named, with a hint for snake_case spellings', () => {
    expectError(make({name: 'bn_unknown', renorm_clipping: {rmax: 3}, foo: 1}),
        /BatchNorm layer 'bn_unknown': unrecognized arguments 'renorm_clipping', 'foo' \('renorm_clipping' is spelt 'renormClipping' here\)/);
    expectError(make({virtualBatch: 4}), /unrecognized argument 'virtualBatch'; expected the arguments of tf.layers.batchNormalization/);
    expectError(make({momentun: 0.9}), /unrecognized argument 'momentun'/);
  });

  test('an argument given as undefined counts as not given', () => {
    expect(make({axis: undefined, somethingElse: undefined})()).toBeInstanceOf(BatchNorm);
  });
});

/**
 * A one-layer model from a hand-written (snake_case, as files carry it) BatchNormalization config,
 * loaded with the stock layer and with BatchNorm in its place.
 */
async function loadBoth(config: Record<string, unknown>): Promise<{stock: tf.LayersModel; ours: tf.LayersModel}> {
  const topology = () => ({
    class_name: 'Sequential',
    config: {name: 'm', layers: [
      {class_name: 'InputLayer', config: {batch_input_shape: [null, 2, 3, 4], dtype: 'float32', name: 'input'}},
      {class_name: 'BatchNormalization', config: {...config, name: 'bn'}},
    ]},
  });
  // modelFromJSON writes into the dicts it is given: each load gets its own copy.
  const load = () => tf.models.modelFromJSON(topology() as unknown as tf.io.ModelJSON);
  const stock = await load();
  const undo = replaceBuiltinBatchNormalization();
  try {
    return {stock, ours: await load()};
  } catch (e) {
    stock.dispose();
    throw e;
  } finally {
    undo();
  }
}

/** Asserts the two load the same: same layer config, same weights (names, shapes), same predictions. */
async function expectLoadedAlike(config: Record<string, unknown>): Promise<void> {
  const {stock: s, ours: o} = await loadBoth(config);
  expect(o.getLayer('bn')).toBeInstanceOf(BatchNorm);
  expect(o.getLayer('bn').getConfig()).toEqual(s.getLayer('bn').getConfig());
  expect(o.weights.map(w => [w.originalName, w.shape])).toEqual(s.weights.map(w => [w.originalName, w.shape]));
  const values = [[1.5, 0.5, 2, 0.75], [0.1, -0.2, 0.3, 0], [0.9, 1.1, -1, 0.5], [4, 0.5, 9, 1.5]].map(v => tf.tensor1d(v));
  s.setWeights(values);
  o.setWeights(values);
  const x = tf.randomNormal([3, 2, 3, 4], 1, 2, 'float32', 11);
  const [ys, yo] = [s.predict(x) as tf.Tensor, o.predict(x) as tf.Tensor];
  // Channels-last inference on cpu: both run the same per-element arithmetic, bit for bit.
  expect(Array.from(yo.dataSync())).toEqual(Array.from(ys.dataSync()));
  tf.dispose([...values, x, ys, yo]);
  s.dispose();
  o.dispose();
}

const kerasInitializer = (className: string) => ({module: 'keras.initializers', class_name: className, config: {}, registered_name: null});

describe('keys that Keras 1, 2, 3 and tfjs write load exactly as the stock layer loads them', () => {
  test.each([
    ['Keras 1: mode 0, input_dtype', {mode: 0, input_dtype: 'float32', axis: -1, epsilon: 0.001, momentum: 0.99, gamma_regularizer: null, beta_regularizer: null}],
    ['Keras 2: axis as a one-element list [3]', {axis: [3], momentum: 0.99, epsilon: 0.001, center: true, scale: true}],
    ['Keras 2: fused true', {axis: 3, fused: true}],
    ['Keras 2: fused false', {axis: -1, fused: false}],
    ['Keras 2: fused null, virtual_batch_size null, adjustment null', {axis: [3], fused: null, virtual_batch_size: null, adjustment: null}],
    ['Keras 2: dtype "float32"', {dtype: 'float32', trainable: true}],
    ['Keras 3: synchronized false', {axis: -1, synchronized: false}],
    ['Keras 3: synchronized true (one device: plain batch norm)', {axis: -1, synchronized: true}],
    ['Keras 3: renorm false, renorm_clipping null, renorm_momentum', {axis: -1, renorm: false, renorm_clipping: null, renorm_momentum: 0.99}],
    ['Keras 3: initializers as {module, class_name, config, registered_name}', {
      beta_initializer: kerasInitializer('Zeros'), gamma_initializer: kerasInitializer('Ones'),
      moving_mean_initializer: kerasInitializer('Zeros'), moving_variance_initializer: kerasInitializer('Ones'),
      beta_regularizer: null, gamma_regularizer: null, beta_constraint: null, gamma_constraint: null}],
    ['Keras 3: dtype policy', {dtype: {module: 'keras', class_name: 'DTypePolicy', config: {name: 'float32'}, registered_name: null}}],
    ['Keras 3: activity_regularizer null', {activity_regularizer: null}],
    ['tfjs: the stock layer\'s own config', tf.layers.batchNormalization({momentum: 0.9}).getConfig()],
  ])('%s', async (_, config) => {
    await expectLoadedAlike(config as Record<string, unknown>);
  });

  test('what would change the math if ignored is refused, naming the layer and the key', async () => {
    const before = tf.memory().numTensors;
    for (const [config, message] of [
        [{mode: 2}, /BatchNorm layer 'bn': argument 'mode' is 2: Keras 1 mode 2 \(batch statistics at inference too\) is not supported/],
        [{mode: 1}, /argument 'mode' is 1: Keras 1 mode 1 \(sample-wise normalization\)/],
        [{activity_regularizer: {class_name: 'L1L2', config: {l1: 0.01, l2: 0}}}, /argument 'activityRegularizer' .*tfjs-layers cannot apply activity regularizers/],
        [{adjustment: 'something'}, /argument 'adjustment' is "something": Keras 2's adjustment is not supported/],
        [{renorm: true, fused: true}, /argument 'fused' is true, which Keras refuses together with renorm/],
        [{virtual_batch_size: 2, fused: true}, /argument 'fused' is true, which Keras refuses together with virtualBatchSize/],
        [{synchronized: 'yes'}, /argument 'synchronized' is "yes", expected true or false/],
    ] as Array<[Record<string, unknown>, RegExp]>) {
      await expect(loadBoth(config)).rejects.toThrow(message);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('renorm arguments (Keras 3.14 rules)', () => {
  test('renormClipping: keys among rmax, rmin, dmax; rmax >= rmin; dmax >= 0; numbers or ramps', () => {
    expectError(make({renorm: true, renormClipping: {random_key: 1}}),
        /argument 'renormClipping' has invalid key 'random_key' \(\{"random_key":1\}\); the supported keys are rmax, rmin, dmax/);
    expectError(make({renorm: true, renormClipping: {rmax: 0, rmin: 1}}), /rmax 0 < rmin 1 at step 0; rmax should be greater than rmin/);
    expectError(make({renorm: true, renormClipping: {rmax: 1, dmax: -1}}), /has dmax -1, which is -1 at step 0; dmax should be non-negative/);
    expectError(make({renorm: true, renormClipping: {rmax: 'big'}}), /argument 'renormClipping.rmax' is "big", expected a number, a ramp/);
    expectError(make({renorm: true, renormClipping: [1, 2]}), /argument 'renormClipping' is \[1,2\], expected an object/);
    // Ramps: checked at every step (the bounds are linear between their start and end steps).
    const ramp = (from: number, to: number, endStep: number, startStep?: number) => ({from, to, endStep, ...(startStep == null ? {} : {startStep})});
    expectError(make({renorm: true, renormClipping: {rmax: ramp(1, 3, 100), rmin: ramp(0.5, 2, 10)}}),
        /give rmax 1.2 < rmin 2 at step 10; rmax should be greater than rmin/);
    expectError(make({renorm: true, renormClipping: {dmax: ramp(0, -1, 5)}}), /which is -1 at step 5; dmax should be non-negative/);
    expectError(make({renorm: true, renormClipping: {rmax: {from: 1, to: 3, end: 10}}}),
        /argument 'renormClipping.rmax' has unknown key 'end'; expected a number or a ramp \{from, to, startStep, endStep\}/);
    expectError(make({renorm: true, renormClipping: {rmax: ramp(1, 3, 10, 10)}}), /argument 'renormClipping.rmax.endStep' is 10, expected an integer > startStep \(10\)/);
    expectError(make({renorm: true, renormClipping: {rmax: ramp(1, 3, 2 ** 24 + 1)}}), /and <= 16777216 \(the float32 step counter is exact up to there\)/);
    expectError(make({renorm: true, renormClipping: {rmax: ramp(1, NaN, 10)}}), /argument 'renormClipping.rmax.to' is null, expected a finite number/);
    expectError(make({renorm: true, renormClipping: {rmax: ramp(1, 3, 10, -1)}}), /argument 'renormClipping.rmax.startStep' is -1, expected an integer >= 0/);
    // Accepted: unbounded sides, nulls (Keras: missing), Infinity, and valid ramps.
    for (const clipping of [{}, null, {rmax: null, rmin: null, dmax: null}, {rmax: Infinity, rmin: 0}, {rmax: ramp(1, 3, 40000, 5000), rmin: ramp(1, 1 / 3, 40000, 5000), dmax: ramp(0, 5, 25000, 5000)}]) {
      expect(make({renorm: true, renormClipping: clipping})()).toBeInstanceOf(BatchNorm);
    }
  });

  test('renormMomentum in [0, 1]; renorm a boolean; with renorm off, Keras ignores (and does not check) the renorm arguments', () => {
    expectError(make({renorm: true, renormMomentum: 1.5}), /argument 'renormMomentum' is 1.5, expected a number in \[0, 1\]/);
    expectError(make({renorm: 'yes'}), /argument 'renorm' is "yes", expected true or false/);
    const off = make({renorm: false, renormClipping: {random_key: 1}, renormMomentum: 7})() as BatchNorm;
    expect(off.renormClipping).toEqual({});
  });
});

describe('virtualBatchSize arguments (Keras 2 rules)', () => {
  test('a positive integer or null; the batch axis cannot be a channel axis', () => {
    for (const bad of [0, -2, 2.5, '4']) {
      expectError(make({virtualBatchSize: bad}), /argument 'virtualBatchSize' is .*, expected a positive integer \(the number of samples in each ghost batch\) or null/);
    }
    expect(make({virtualBatchSize: null})()).toBeInstanceOf(BatchNorm);
    const x = tf.ones([4, 3]);
    expectError(() => batchNormalization({name: 'bn_ghost0', axis: 0, virtualBatchSize: 2}).apply(x),
        /BatchNorm layer 'bn_ghost0': argument 'axis' is 0, which includes the batch axis 0; with virtualBatchSize the batch axis is split/);
    x.dispose();
  });

  test('a batch size it does not divide: a clear error naming both numbers, nothing leaked; inference takes any batch size', () => {
    const bn = batchNormalization({name: 'bn_ghost', virtualBatchSize: 4});
    const x = tf.randomNormal([6, 3], 0, 1, 'float32', 1);
    tf.dispose(bn.apply(x) as tf.Tensor);
    expectError(() => bn.apply(x, {training: true}),
        "BatchNorm layer 'bn_ghost': argument 'virtualBatchSize' is 4, which does not divide the batch size 6: in training each batch is split into ghost batches of 4 samples");
    const grads = () => tf.grads((v: tf.Tensor) => bn.apply(v, {training: true}) as tf.Tensor)([x]);
    expectError(grads, /does not divide the batch size 6/);
    x.dispose();
    bn.dispose();
  });
});

describe('config keys', () => {
  test('renorm and ghost batches write Keras\' keys only when on (a plain layer\'s config stays the stock one), and round-trip', () => {
    const plain = batchNormalization({renorm: false, virtualBatchSize: null}).getConfig();
    expect(Object.keys(plain)).toEqual(Object.keys(tf.layers.batchNormalization().getConfig()));

    const clipping = {rmax: {from: 1, to: 3, startStep: 5, endStep: 50}, rmin: 0.5, dmax: null};
    const layer = batchNormalization({renorm: true, renormClipping: clipping, renormMomentum: 0.9, virtualBatchSize: 8});
    const config = layer.getConfig();
    const keys = Object.keys(config);
    expect(keys.slice(keys.indexOf('gammaConstraint') + 1, keys.indexOf('name'))).toEqual(['renorm', 'renormClipping', 'renormMomentum', 'virtualBatchSize']);
    expect(config).toMatchObject({renorm: true, renormClipping: clipping, renormMomentum: 0.9, virtualBatchSize: 8});
    // Renorm without clipping writes {} (as Keras stores `renorm_clipping or {}`).
    expect(batchNormalization({renorm: true}).getConfig().renormClipping).toEqual({});

    // In a saved model the keys are Keras' snake_case ones, and they load back.
    const model = tf.sequential({layers: [batchNormalization({name: 'bn', inputShape: [3], renorm: true, renormClipping: clipping, virtualBatchSize: 2})]});
    const json = JSON.parse(JSON.stringify(model.toJSON(null, false)));
    const written = json.config.layers.find((l: {class_name: string}) => l.class_name === BatchNorm.className).config;
    expect(written).toMatchObject({renorm: true, renorm_momentum: 0.99, virtual_batch_size: 2,
      renorm_clipping: {rmax: {from: 1, to: 3, start_step: 5, end_step: 50}, rmin: 0.5, dmax: null}});
    const roundTrip = BatchNorm.fromConfig(BatchNorm, JSON.parse(JSON.stringify(config))) as BatchNorm;
    expect(roundTrip.getConfig()).toEqual(config);
    model.dispose();
  });
});
