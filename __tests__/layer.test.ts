/**
 * The BatchNorm layer on its own: the float64 golden cases through the layer, every gap of the stock
 * layer closed (channels-first, rank 5, scale/center false in training, trainable = false, masks),
 * config and weight compatibility with the stock layer, memory, and argument errors.
 * Numeric tolerances: goldenTolerance() (1e-4 in |got − want|/(1 + |want|), 1e-3 for large_offset and
 * tiny_spread) against the golden file; 1e-5 against float64 statistics computed here by hand.
 */
import * as tf from '@tensorflow/tfjs';
import {BatchNorm, batchNormalization, BatchNormArgs} from '../src';
import {describeEachBackend, describeEachPath} from './support/backends';
import {expectClose, GoldenCase, goldenTolerance, loadGoldenCases} from './support/golden';

const cases = loadGoldenCases();

/** The channel dimensions of a case (the weight shape): one entry per channel axis, in axis order. */
function channelDims(c: GoldenCase): number[] {
  const rank = c.shape.length;
  const axes = (Array.isArray(c.axis) ? c.axis : [c.axis]).map(a => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
  return axes.map(a => c.shape[a]);
}

/** A layer configured like the case, whose initial weights are the case's gamma, beta and moving statistics. */
function goldenLayer(c: GoldenCase): {layer: BatchNorm; initial: tf.Tensor[]} {
  const dims = channelDims(c);
  const initial = [
    ...(c.scale ? [tf.tensor(c.gamma, dims)] : []),
    ...(c.center ? [tf.tensor(c.beta, dims)] : []),
    tf.tensor(c.moving_mean0, dims),
    tf.tensor(c.moving_variance0, dims),
  ];
  const layer = batchNormalization({axis: c.axis, epsilon: c.epsilon, momentum: c.momentum, center: c.center,
    scale: c.scale, weights: initial});
  return {layer, initial};
}

/** The last two weights, in stock order: moving_mean, moving_variance. */
function movingStatistics(layer: tf.layers.Layer): [Float32Array, Float32Array] {
  const w = layer.getWeights();
  return [w[w.length - 2].dataSync() as Float32Array, w[w.length - 1].dataSync() as Float32Array];
}

function seededValues(n: number, seed: number): number[] {
  return Array.from(tf.randomNormal([n], 0, 1, 'float32', seed).dataSync());
}

describeEachPath('BatchNorm layer: golden cases', (backend, path) => {
  test.each(cases.map(c => [c.name, c] as [string, GoldenCase]))(
      '%s: inference_y, then training y and moving_*_keras after one call', (_, c) => {
    const tol = goldenTolerance(c);
    const {layer, initial} = goldenLayer(c);
    const x = tf.tensor(c.x, c.shape);
    const before = tf.memory().numTensors;
    const variables = c.scale && c.center ? 4 : c.scale || c.center ? 3 : 2;

    const inference = layer.apply(x) as tf.Tensor;
    expectClose(inference.dataSync(), c.inference_y, tol, `${backend}/${path}/${c.name}/inference_y`);
    const [mean0, variance0] = movingStatistics(layer);
    expectClose(mean0, c.moving_mean0, 0, `${backend}/${c.name}: inference leaves moving_mean alone`);
    expectClose(variance0, c.moving_variance0, 0, `${backend}/${c.name}: inference leaves moving_variance alone`);

    const training = layer.apply(x, {training: true}) as tf.Tensor;
    expectClose(training.dataSync(), c.y, tol, `${backend}/${path}/${c.name}/y`);
    const [mean1, variance1] = movingStatistics(layer);
    expectClose(mean1, c.moving_mean_keras, tol, `${backend}/${c.name}/moving_mean_keras`);
    expectClose(variance1, c.moving_variance_keras, tol, `${backend}/${c.name}/moving_variance_keras`);

    tf.dispose([inference, training]);
    expect(tf.memory().numTensors).toBe(before + variables);
    layer.dispose();
    tf.dispose([x, ...initial]);
  });
});

describeEachBackend('BatchNorm layer: where the stock layer fails', () => {
  /** A tiny model around one layer, trained with fit; returns the layer and the loss history. */
  async function fitAround(bn: BatchNorm, inputShape: number[], epochs = 3) {
    const model = tf.sequential({layers: [
      tf.layers.inputLayer({inputShape: inputShape.slice(1)}),
      bn,
      ...(inputShape.length > 2 ? [tf.layers.flatten()] : []),
      tf.layers.dense({units: 1, kernelInitializer: tf.initializers.ones()}),
    ]});
    model.compile({optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError'});
    const x = tf.tensor(seededValues(inputShape.reduce((a, b) => a * b), 1), inputShape);
    const y = tf.tensor(seededValues(inputShape[0], 2), [inputShape[0], 1]);
    const history = await model.fit(x, y, {epochs, batchSize: inputShape[0], shuffle: false, verbose: 0});
    tf.dispose([x, y]);
    return {model, losses: history.history.loss as number[]};
  }

  test('rank 5 (after conv3d, channels-last and channels-first) trains with fit and updates the moving statistics', async () => {
    for (const axis of [-1, 1]) {
      const bn = batchNormalization({axis, momentum: 0.5});
      const {model, losses} = await fitAround(bn, [4, 2, 3, 3, 2]);
      expect(losses.every(Number.isFinite)).toBe(true);
      const [mean, variance] = movingStatistics(bn);
      expect(mean.length).toBe(2);
      expect(Array.from(mean).some(m => m !== 0)).toBe(true);
      expect(Array.from(variance).some(v => v !== 1)).toBe(true);
      model.dispose();
    }
  });

  test.each([
    [{scale: false}, ['beta', 'moving_mean', 'moving_variance']],
    [{center: false}, ['gamma', 'moving_mean', 'moving_variance']],
    [{scale: false, center: false}, ['moving_mean', 'moving_variance']],
  ] as Array<[BatchNormArgs, string[]]>)('%j trains with fit: weights %j, trainable ones move, loss falls', async (args, names) => {
    const bn = batchNormalization({...args, momentum: 0.5});
    const {model, losses} = await fitAround(bn, [8, 3], 10);
    expect(bn.weights.map(w => w.originalName.split('/').pop())).toEqual(names);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    // Every weight moved away from its initializer: gamma from ones, beta and moving_mean from
    // zeros (by gradient descent), moving_variance from ones (by the moving average).
    for (const w of bn.weights) {
      const initial = /gamma|moving_variance/.test(w.name) ? 1 : 0;
      expect(Array.from(w.read().dataSync()).some(v => v !== initial)).toBe(true);
    }
    expect(bn.trainableWeights.length).toBe(names.length - 2);
    model.dispose();
  });

  test('trainable = false: training mode uses the moving statistics and freezes them (Keras fine-tuning)', async () => {
    const x = tf.tensor(seededValues(6 * 4, 3), [6, 4]);
    const initial = [tf.tensor1d([1, 2, 3, 4]), tf.tensor1d([0.5, 0, -0.5, 1]), tf.tensor1d([0.1, -0.2, 0.3, 0]), tf.tensor1d([1, 2, 0.5, 4])];
    const bn = batchNormalization({momentum: 0.5, weights: initial});
    bn.trainable = false;
    const inference = bn.apply(x) as tf.Tensor;
    const training = bn.apply(x, {training: true}) as tf.Tensor;
    expectClose(training.dataSync(), inference.dataSync(), 0, 'frozen layer in training mode = inference mode');
    expectClose(movingStatistics(bn)[0], initial[2].dataSync(), 0, 'moving_mean unchanged');
    expectClose(movingStatistics(bn)[1], initial[3].dataSync(), 0, 'moving_variance unchanged');
    expect(bn.trainableWeights).toEqual([]);

    // Inside fit: the frozen layer's weights all stay put while the rest of the model trains.
    const frozenBefore = bn.getWeights().map(w => Array.from(w.dataSync()));
    const model = tf.sequential({layers: [tf.layers.dense({units: 4, inputShape: [4]}), bn, tf.layers.dense({units: 1})]});
    model.compile({optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError'});
    const y = tf.ones([6, 1]);
    const dense0 = Array.from(model.layers[0].getWeights()[0].dataSync());
    await model.fit(x, y, {epochs: 2, verbose: 0});
    expect(bn.getWeights().map(w => Array.from(w.dataSync()))).toEqual(frozenBefore);
    expect(Array.from(model.layers[0].getWeights()[0].dataSync())).not.toEqual(dense0);
    tf.dispose([x, y, inference, training, ...initial]);
    model.dispose();
  });
});

describe('BatchNorm layer: compatibility with the stock layer', () => {
  // Names, shapes and configs only: one backend is enough.
  beforeAll(() => tf.setBackend('cpu'));

  test('weights: same names, order, shapes and trainability as tf.layers.batchNormalization', () => {
    for (const args of [{}, {scale: false}, {center: false}, {scale: false, center: false}, {axis: 1}]) {
      const ours = batchNormalization({...args, name: 'bn'});
      const stock = tf.layers.batchNormalization({...args, name: 'bn'});
      const x = tf.ones([2, 3, 4]);
      tf.dispose([ours.apply(x) as tf.Tensor, stock.apply(x) as tf.Tensor]);
      // tfjs suffixes a repeated variable name (bn/gamma_1), so compare names without that suffix.
      const describeWeights = (l: tf.layers.Layer) => l.weights.map(w => [w.name.replace(/_\d+$/, ''), w.originalName, w.shape, w.trainable]);
      expect(describeWeights(ours)).toEqual(describeWeights(stock));
      ours.dispose();
      stock.dispose();
      x.dispose();
    }
  });

  test('a list of axes gives weights of the shape of those axes, in axis order', () => {
    const bn = batchNormalization({axis: [3, 1]});
    bn.build([null, 4, 5, 2]);
    expect(bn.weights.map(w => w.shape)).toEqual([[4, 2], [4, 2], [4, 2], [4, 2]]);
  });

  test('unnamed layers take the stock default names, from the same counter', () => {
    const first = tf.layers.batchNormalization().name;
    const ours = batchNormalization().name;
    const next = tf.layers.batchNormalization().name;
    const number = (name: string) => Number(/(\d+)$/.exec(name)?.[1]);
    expect(ours.replace(/\d+$/, '')).toBe(first.replace(/\d+$/, ''));
    expect([number(first) + 1, number(first) + 2]).toEqual([number(ours), number(next)]);
  });

  test('getConfig has the stock keys and values; fromConfig round-trips every argument', () => {
    const args = {
      axis: 1, momentum: 0.9, epsilon: 1e-4, center: false, scale: true, name: 'bn_all_args', trainable: false,
      batchInputShape: [null, 3, 5], dtype: 'float32' as const,
      betaInitializer: 'randomNormal' as const, gammaInitializer: tf.initializers.constant({value: 2}),
      movingMeanInitializer: tf.initializers.randomUniform({minval: -1, maxval: 1, seed: 7}),
      movingVarianceInitializer: 'ones' as const,
      betaRegularizer: tf.regularizers.l2({l2: 0.5}), gammaRegularizer: 'l1l2' as const,
      betaConstraint: 'nonNeg' as const, gammaConstraint: tf.constraints.maxNorm({maxValue: 3, axis: 0}),
    };
    const ours = batchNormalization(args).getConfig();
    const stock = tf.layers.batchNormalization(args).getConfig();
    expect(Object.keys(ours)).toEqual(Object.keys(stock));
    expect(ours).toEqual(stock);

    // Configs go through JSON as they do in a saved model (tfjs' deserializer also writes into the
    // dict it is given).
    const roundTrip = (config: tf.serialization.ConfigDict) =>
      (BatchNorm.fromConfig(BatchNorm, JSON.parse(JSON.stringify(config))) as BatchNorm).getConfig();
    expect(BatchNorm.fromConfig(BatchNorm, JSON.parse(JSON.stringify(ours)))).toBeInstanceOf(BatchNorm);
    expect(roundTrip(ours)).toEqual(ours);
    // A list of axes is the one extension; it round-trips too.
    const multi = batchNormalization({axis: [1, -1]}).getConfig();
    expect(roundTrip(multi)).toEqual(multi);
    // The stock layer's own config builds an equivalent BatchNorm.
    expect(roundTrip(stock)).toEqual(stock);
  });

  test('registered under the namespaced class name, apart from the stock BatchNormalization', () => {
    const registry = tf.serialization.SerializationMap.getMap().classNameMap;
    expect(BatchNorm.className).toBe('TfjsBatchNorm>BatchNorm');
    expect(registry['TfjsBatchNorm>BatchNorm'][0]).toBe(BatchNorm);
    expect(registry['BatchNormalization'][0]).not.toBe(BatchNorm);
    expect(batchNormalization().getClassName()).toBe('TfjsBatchNorm>BatchNorm');
  });
});

describeEachBackend('BatchNorm layer: initializers, regularizers, constraints', () => {
  test('initializers, regularizers and constraints are the ones given', () => {
    const bn = batchNormalization({gammaInitializer: tf.initializers.constant({value: 2}), movingVarianceInitializer: 'zeros',
      gammaRegularizer: tf.regularizers.l2({l2: 1}), betaConstraint: tf.constraints.nonNeg()});
    bn.build([null, 3]);
    expect(Array.from(bn.getWeights()[0].dataSync())).toEqual([2, 2, 2]);
    expect(Array.from(bn.getWeights()[3].dataSync())).toEqual([0, 0, 0]);
    // The l2 penalty on gamma is registered as a layer loss (fit adds it to the loss): 1 · Σγ² = 12.
    expect(bn.losses.length).toBe(1);
    expect(tf.tidy(() => bn.losses[0]().dataSync()[0])).toBeCloseTo(12, 5);
    // The constraint sits on beta's variable and applies on every write. (As with every tfjs-layers
    // layer, fit's optimizer step does not apply constraints: tfjs-layers has not implemented that.)
    const values = [tf.ones([3]), tf.tensor1d([-1, 2, -3]), tf.zeros([3]), tf.ones([3])];
    bn.setWeights(values);
    expect(Array.from(bn.getWeights()[1].dataSync())).toEqual([0, 2, 0]);
    tf.dispose(values);
  });
});

describeEachBackend('BatchNorm layer: memory', () => {
  test('numTensors is stable across 100 fit steps, and 100 training applies of the layer and of a model under tf.tidy', async () => {
    const model = tf.sequential({layers: [tf.layers.dense({units: 4, inputShape: [3]}), batchNormalization(), tf.layers.dense({units: 1})]});
    model.compile({optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError'});
    const x = tf.tensor2d(seededValues(8 * 3, 4), [8, 3]);
    const y = tf.tensor2d(seededValues(8, 5), [8, 1]);
    await model.fit(x, y, {epochs: 1, batchSize: 8, verbose: 0});
    const afterWarmUp = tf.memory().numTensors;
    await model.fit(x, y, {epochs: 100, batchSize: 8, verbose: 0});
    expect(tf.memory().numTensors).toBe(afterWarmUp);

    const bn = batchNormalization({axis: 1});
    const x4 = tf.randomNormal([2, 3, 4, 4]);
    tf.tidy(() => {
      bn.apply(x4, {training: true});
    });
    const afterBuild = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) {
      tf.tidy(() => {
        bn.apply(x4, {training: true});
      });
    }
    expect(tf.memory().numTensors).toBe(afterBuild);

    // The shape of tfjs #7983: a model applied in training mode under tf.tidy.
    for (let i = 0; i < 100; i++) {
      tf.tidy(() => {
        model.apply(x, {training: true});
      });
    }
    expect(tf.memory().numTensors).toBe(afterBuild);
    tf.dispose([x, y, x4]);
    model.dispose();
    bn.dispose();
  });
});

describeEachBackend('BatchNorm layer: argument errors', () => {
  /** Runs f, expects it to throw `message`, and checks that nothing was left allocated. */
  function expectError(f: () => unknown, message: RegExp) {
    const before = tf.memory().numTensors;
    expect(f).toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
  }

  test('axis: not an integer, empty, or outside the input rank', () => {
    expectError(() => batchNormalization({axis: 1.5}), /BatchNorm layer '.+': argument 'axis' is 1.5, expected an integer or a non-empty list/);
    expectError(() => batchNormalization({axis: []}), /argument 'axis' is \[\], expected an integer or a non-empty list/);
    const x = tf.ones([2, 3]);
    expectError(() => batchNormalization({axis: 2, name: 'bn_axis'}).apply(x),
        /BatchNorm layer 'bn_axis': argument 'axis' is 2, expected an integer in \[-2, 1\] .* rank 2/);
    expectError(() => batchNormalization({axis: [1, -1]}).apply(x), /argument 'axis' is \[1, -1\], which names the same axis twice/);
    expectError(() => batchNormalization({axis: 1}).build([null, null]), /argument 'axis' is 1, but axis 1 of the input shape \[null,null\] is undefined/);
    x.dispose();
  });

  test('epsilon and momentum out of range', () => {
    for (const epsilon of [0, -1e-3, NaN, Infinity, 5e-324, 1e-39]) {
      expectError(() => batchNormalization({epsilon}), new RegExp(`argument 'epsilon' is ${epsilon}, expected a finite number >= 1.1754943508222875e-38 \\(2\\^-126`));
    }
    for (const momentum of [-0.1, 1.5, NaN]) {
      expectError(() => batchNormalization({momentum}), /argument 'momentum' is .*, expected a number in \[0, 1\]/);
    }
    expectError(() => batchNormalization({center: 'yes' as unknown as boolean}), /argument 'center' is "yes", expected true or false/);
    expectError(() => batchNormalization({betaInitializer: 'noSuchInitializer' as 'zeros'}), /BatchNorm: Unknown initializer: noSuchInitializer/);
  });

  test('setWeights with the wrong channel count or number of weights changes nothing', () => {
    const bn = batchNormalization({name: 'bn_weights'});
    const x = tf.ones([2, 4]);
    tf.dispose(bn.apply(x) as tf.Tensor);
    const good = [tf.ones([4]), tf.zeros([4]), tf.zeros([4]), tf.ones([4])];
    const wrongChannels = [tf.ones([4]), tf.zeros([4]), tf.fill([5], 7), tf.ones([4])];
    const before = bn.getWeights().map(w => Array.from(w.dataSync()));
    expectError(() => bn.setWeights(wrongChannels),
        /BatchNorm layer 'bn_weights': argument 'weights' \[2\] \(moving_mean\) has shape \[5\], expected shape \[4\]/);
    expectError(() => bn.setWeights(good.slice(0, 3)),
        /argument 'weights' has 3 tensors, expected 4: \[gamma, beta, moving_mean, moving_variance\]/);
    expect(bn.getWeights().map(w => Array.from(w.dataSync()))).toEqual(before);
    // Channel mismatch through the `weights` constructor argument surfaces at build, just as clearly.
    expectError(() => batchNormalization({weights: wrongChannels}).apply(x), /\(moving_mean\) has shape \[5\], expected shape \[4\]/);
    expectError(() => batchNormalization().setWeights(good), /setWeights before the layer is built/);
    tf.dispose([x, ...good, ...wrongChannels]);
    bn.dispose();
  });

  test('a mask of the wrong shape, and a second input, are refused before any work', () => {
    const bn = batchNormalization({name: 'bn_mask'});
    const x = tf.ones([2, 5, 3]);
    const badMask = tf.ones([2, 3]);
    bn.build(x.shape);
    expectError(() => bn.apply(x, {training: true, mask: badMask}),
        /BatchNorm layer 'bn_mask': argument 'mask' is a float32 tensor of shape \[2,3\], expected shape \[2,5\]: the input shape \[2,5,3\] without its last axis/);
    // Checked in inference too, as Keras does.
    expectError(() => bn.apply(x, {mask: badMask}), /argument 'mask' is a float32 tensor of shape \[2,3\], expected shape \[2,5\]/);
    expectError(() => bn.call([x, x], {}), /argument 'inputs' is a list of 2 tensors, expected exactly one tensor/);
    const wrongChannels = tf.ones([2, 5, 4]);
    expectError(() => bn.apply(wrongChannels), /expected axis 2 of input shape to have value 3/);
    tf.dispose([x, badMask, wrongChannels]);
  });
});
