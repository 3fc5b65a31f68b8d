/**
 * recalibrate: every batch-norm layer's moving statistics become the float64 population statistics
 * of that layer's input over all the data (refMoments over the concatenated inputs, as the
 * recalibrated model computes them), layer after layer; with masks, channels-first, nested models,
 * shared layers; from arrays, tf.data datasets and generators; no leaks; clear, all-or-nothing errors.
 *
 * Tolerance: |moving mean − μ| ≤ STAT_TOLERANCE·(|μ| + σ) and |moving variance − σ²| ≤
 * STAT_TOLERANCE·σ² per channel, μ and σ² the float64 population statistics. Measured here (16 to
 * 256 values per channel per layer), cpu and wasm: at most 9.1e-8 (masked, wasm), unmasked 7.3e-8;
 * the tolerance, 1e-6, is ~11× that. The statistics the models start with are off by 0.1 to 10.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization, recalibrate} from '../src';
import type {RecalibrationProgress} from '../src';
import {describeEachBackend} from './support/backends';
import {randomizeBatchNorms} from './support/deploy_models';
import {refMoments} from './support/reference';

const STAT_TOLERANCE = 1e-6;

/** Batches of 5, 7 and 4 samples of shape `shape`, N(3, 2): far from what default statistics assume. */
function batches(shape: number[], seed = 1): tf.Tensor[] {
  return [5, 7, 4].map((n, i) => tf.add(tf.randomNormal([n, ...shape], 0, 2, 'float32', seed + i), 3));
}

/** The values `layer` receives for every batch (its single call), concatenated along the batch axis. */
function inputsOf(model: tf.LayersModel, layerName: string, data: tf.Tensor[]): {shape: number[]; values: Float32Array} {
  const upTo = tf.model({inputs: model.inputs, outputs: model.getLayer(layerName).input as tf.SymbolicTensor});
  return tf.tidy(() => {
    const all = tf.concat(data.map(x => upTo.predict(x) as tf.Tensor));
    return {shape: all.shape, values: all.dataSync() as Float32Array};
  });
}

/** Asserts the layer's moving statistics are the float64 statistics (optionally weighted) of `inputs`. */
function expectPopulationStatistics(model: tf.LayersModel, layerName: string, inputs: {shape: number[]; values: Float32Array},
                                    axes: number[], weights?: Float64Array): number {
  const want = refMoments({shape: inputs.shape, axes, x: inputs.values, epsilon: 1e-3, weights});
  const layer = model.getLayer(layerName);
  const [mean, variance] = ['moving_mean', 'moving_variance'].map(n =>
    layer.weights.find(w => w.originalName.endsWith(n))!.read().dataSync());
  let worst = 0;
  for (let c = 0; c < want.mean.length; c++) {
    const sigma = Math.sqrt(want.variance[c]);
    worst = Math.max(worst, Math.abs(mean[c] - want.mean[c]) / (Math.abs(want.mean[c]) + sigma),
      Math.abs(variance[c] - want.variance[c]) / want.variance[c]);
  }
  expect({layer: layerName, worst}).toEqual({layer: layerName, worst: expect.any(Number)});
  expect(worst).toBeLessThanOrEqual(STAT_TOLERANCE);
  return worst;
}

/** conv → BatchNorm → relu → conv → stock BN → pool → dense → BatchNorm, channels-last or -first. */
function convModel(channelsFirst: boolean): tf.LayersModel {
  const dataFormat = channelsFirst ? 'channelsFirst' as const : 'channelsLast' as const;
  const axis = channelsFirst ? 1 : -1;
  const input = tf.input({shape: channelsFirst ? [3, 6, 6] : [6, 6, 3], name: 'input'});
  let y = tf.layers.conv2d({name: 'conv1', filters: 4, kernelSize: 3, dataFormat, kernelInitializer: tf.initializers.glorotUniform({seed: 1})}).apply(input);
  y = tf.layers.reLU({name: 'relu'}).apply(batchNormalization({name: 'bn1', axis}).apply(y));
  y = tf.layers.conv2d({name: 'conv2', filters: 3, kernelSize: 3, dataFormat, kernelInitializer: tf.initializers.glorotUniform({seed: 2})}).apply(y);
  y = tf.layers.batchNormalization({name: 'bn2', axis}).apply(y);
  y = tf.layers.globalAveragePooling2d({name: 'pool', dataFormat}).apply(y);
  y = tf.layers.dropout({name: 'dropout', rate: 0.5}).apply(y);
  y = tf.layers.dense({name: 'dense', units: 5, kernelInitializer: tf.initializers.glorotUniform({seed: 3})}).apply(y);
  y = batchNormalization({name: 'bn3'}).apply(y);
  const model = tf.model({inputs: input, outputs: y as tf.SymbolicTensor});
  randomizeBatchNorms(model);
  return model;
}

describeEachBackend('recalibrate', () => {
  test.each([false, true])('channels-first %s: each layer gets its input\'s float64 population statistics, in order; nothing else changes', async channelsFirst => {
    const model = convModel(channelsFirst);
    const data = batches(channelsFirst ? [3, 6, 6] : [6, 6, 3]);
    const others = model.weights.filter(w => !/moving_/.test(w.originalName)).map(w => Array.from(w.read().dataSync()));
    const oldBn1 = model.getLayer('bn1').getWeights().map(w => w.clone());  // getWeights returns the variables themselves
    const axis = channelsFirst ? 1 : 3;
    const before = tf.memory().numTensors;

    const result = await recalibrate(model, data);

    expect(tf.memory().numTensors).toBe(before);
    expect(result).toEqual([{layer: 'bn1', batches: 3, count: 16 * 16}, {layer: 'bn2', batches: 3, count: 16 * 4}, {layer: 'bn3', batches: 3, count: 16}]);
    expectPopulationStatistics(model, 'bn1', inputsOf(model, 'bn1', data), [axis]);
    const bn2Inputs = inputsOf(model, 'bn2', data);
    expectPopulationStatistics(model, 'bn2', bn2Inputs, [axis]);
    expectPopulationStatistics(model, 'bn3', inputsOf(model, 'bn3', data), [1]);
    expect(model.weights.filter(w => !/moving_/.test(w.originalName)).map(w => Array.from(w.read().dataSync()))).toEqual(others);

    // Layer by layer matters: with bn1's old statistics, bn2's input statistics would be far off.
    const newBn1 = model.getLayer('bn1').getWeights().map(w => w.clone());
    model.getLayer('bn1').setWeights(oldBn1);
    const stale = refMoments({shape: bn2Inputs.shape, axes: [axis], x: inputsOf(model, 'bn2', data).values, epsilon: 1e-3});
    const fresh = refMoments({shape: bn2Inputs.shape, axes: [axis], x: bn2Inputs.values, epsilon: 1e-3});
    expect(Math.max(...stale.variance.map((v, c) => Math.abs(v - fresh.variance[c]) / fresh.variance[c]))).toBeGreaterThan(100 * STAT_TOLERANCE);
    model.getLayer('bn1').setWeights(newBn1);
    tf.dispose([...data, ...oldBn1, ...newBn1]);
    model.dispose();
  });

  test('masked positions are left out (Masking → Dense → BatchNorm, channels-last)', async () => {
    const input = tf.input({shape: [5, 3], name: 'input'});
    const masked = tf.layers.masking({name: 'masking', maskValue: 0}).apply(input);
    const dense = tf.layers.dense({name: 'dense', units: 4, kernelInitializer: tf.initializers.glorotUniform({seed: 4})}).apply(masked);
    const model = tf.model({inputs: input, outputs: batchNormalization({name: 'bn'}).apply(dense) as tf.SymbolicTensor});
    randomizeBatchNorms(model);
    // Zero out a different set of time steps in every sample: those positions are masked.
    const data = batches([5, 3], 10).map((x, b) => tf.tidy(() => {
      const keep = tf.tensor(Array.from({length: x.shape[0] * 5}, (_, i) => ((i * 7 + b) % 3 === 0 ? 0 : 1)), [x.shape[0], 5, 1]);
      return tf.mul(x, keep);
    }));
    const before = tf.memory().numTensors;
    const [result] = await recalibrate(model, data);
    expect(tf.memory().numTensors).toBe(before);
    const inputs = inputsOf(model, 'bn', data);
    const all = tf.tidy(() => tf.concat(data).dataSync());
    // Weight of each BN input element: 1 where its time step has a non-zero feature (Keras's Masking), per channel.
    const weights = Float64Array.from({length: inputs.values.length}, (_, i) => {
      const step = Math.floor(i / 4);
      return [0, 1, 2].some(f => all[step * 3 + f] !== 0) ? 1 : 0;
    });
    const unmaskedSteps = weights.reduce((a, w) => a + w, 0) / 4;
    expect(unmaskedSteps).toBeLessThan(16 * 5);  // the mask does remove positions
    expect(result.count).toBe(unmaskedSteps);
    expectPopulationStatistics(model, 'bn', inputs, [2], weights);
    // Counting the masked positions would give different statistics.
    const unweighted = refMoments({shape: inputs.shape, axes: [2], x: inputs.values, epsilon: 1e-3});
    const weighted = refMoments({shape: inputs.shape, axes: [2], x: inputs.values, epsilon: 1e-3, weights});
    expect(Math.max(...unweighted.mean.map((m, c) => Math.abs(m - weighted.mean[c])))).toBeGreaterThan(0.01);
    tf.dispose(data);
    model.dispose();
  });

  test('masked, channels-first (Masking → BatchNorm on axis 1: each time step a channel, masked samples left out)', async () => {
    const input = tf.input({shape: [5, 3], name: 'input'});
    const masked = tf.layers.masking({name: 'masking', maskValue: 0}).apply(input);
    const model = tf.model({inputs: input, outputs: batchNormalization({name: 'bn', axis: 1}).apply(masked) as tf.SymbolicTensor});
    randomizeBatchNorms(model);
    const data = batches([5, 3], 20).map((x, b) => tf.tidy(() => {
      const keep = tf.tensor(Array.from({length: x.shape[0] * 5}, (_, i) => ((i * 5 + b) % 4 === 0 ? 0 : 1)), [x.shape[0], 5, 1]);
      return tf.mul(x, keep);
    }));
    const before = tf.memory().numTensors;
    await recalibrate(model, data);
    expect(tf.memory().numTensors).toBe(before);
    const inputs = inputsOf(model, 'bn', data);
    // Weight of element (sample, step, feature): 1 where that sample's step has a non-zero feature.
    const weights = Float64Array.from({length: inputs.values.length}, (_, i) => {
      const step = Math.floor(i / 3);
      return [0, 1, 2].some(f => inputs.values[step * 3 + f] !== 0) ? 1 : 0;
    });
    expect(weights.includes(0)).toBe(true);
    expectPopulationStatistics(model, 'bn', inputs, [1], weights);
    tf.dispose(data);
    model.dispose();
  });

  test('Batch Renormalization: moving_stddev becomes √(variance + ε), consistent with the recalibrated moving_variance', async () => {
    const model = tf.sequential({layers: [
      tf.layers.dense({name: 'dense', inputShape: [4], units: 3, kernelInitializer: tf.initializers.glorotUniform({seed: 7})}),
      batchNormalization({name: 'bn', renorm: true, epsilon: 0.01}),
    ]});
    randomizeBatchNorms(model);
    const data = batches([4], 30);
    await recalibrate(model, data);
    const inputs = inputsOf(model, 'bn', data);
    expectPopulationStatistics(model, 'bn', inputs, [1]);
    const read = (name: string) => model.getLayer('bn').weights.find(w => w.originalName.endsWith(name))!.read().dataSync();
    const variance = read('moving_variance');
    const stddev = read('moving_stddev');
    variance.forEach((v, c) => expect(Math.abs(stddev[c] - Math.sqrt(v + 0.01)) / stddev[c]).toBeLessThanOrEqual(STAT_TOLERANCE));
    tf.dispose(data);
    model.dispose();
  });
}, ['cpu', 'wasm']);

describe('recalibrate [cpu]', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  const denseModel = () => {
    const model = tf.sequential({name: 'dense_model', layers: [
      tf.layers.dense({name: 'd1', inputShape: [4], units: 3, kernelInitializer: tf.initializers.glorotUniform({seed: 5})}),
      batchNormalization({name: 'bn1'}),
      tf.layers.dense({name: 'd2', units: 2, kernelInitializer: tf.initializers.glorotUniform({seed: 6})}),
      batchNormalization({name: 'bn2'}),
    ]});
    randomizeBatchNorms(model);
    return model;
  };
  const movingStatistics = (model: tf.LayersModel) => model.weights.filter(w => /moving_/.test(w.originalName)).map(w => Array.from(w.read().dataSync()));

  test('a tf.data.Dataset (tensors or {xs, ys}), a generator function and an async one give what the array gives, and their tensors are disposed', async () => {
    const data = batches([4], 20);
    const want = denseModel();
    await recalibrate(want, data);
    const labels = data.map(x => tf.zeros([x.shape[0], 2]));
    const sources = [
      tf.data.array(data),
      tf.data.zip({xs: tf.data.array(data), ys: tf.data.array(labels)}),
      function* () { for (const x of data) yield x.clone(); },
      async function* () { for (const x of data) yield {xs: [x.clone()], ys: x.clone()}; },
    ];
    for (const source of sources) {
      const model = denseModel();
      const before = tf.memory().numTensors;
      await recalibrate(model, source);
      expect(tf.memory().numTensors).toBe(before);
      expect(movingStatistics(model)).toEqual(movingStatistics(want));
      model.dispose();
    }
    expect(data.every(x => !x.isDisposed)).toBe(true);  // an array's tensors stay the caller's
    tf.dispose([...data, ...labels]);
    want.dispose();
  });

  test('{batches: 2} reads only the first two batches; onProgress reports every batch of every layer', async () => {
    const model = denseModel();
    const data = batches([4], 30);
    const progress: RecalibrationProgress[] = [];
    const result = await recalibrate(model, data, {batches: 2, onProgress: p => { progress.push(p); }});
    expect(result.map(r => [r.layer, r.batches, r.count])).toEqual([['bn1', 2, 12], ['bn2', 2, 12]]);
    expect(progress).toEqual([
      {layer: 'bn1', layerIndex: 0, layerCount: 2, batches: 1}, {layer: 'bn1', layerIndex: 0, layerCount: 2, batches: 2},
      {layer: 'bn2', layerIndex: 1, layerCount: 2, batches: 1}, {layer: 'bn2', layerIndex: 1, layerCount: 2, batches: 2},
    ]);
    expectPopulationStatistics(model, 'bn1', inputsOf(model, 'bn1', data.slice(0, 2)), [1]);
    expectPopulationStatistics(model, 'bn2', inputsOf(model, 'bn2', data.slice(0, 2)), [1]);
    tf.dispose(data);
    model.dispose();
  });

  test('a nested model\'s batch norm, and a batch norm shared by two call sites (statistics over both inputs)', async () => {
    const inner = tf.sequential({name: 'inner', layers: [
      tf.layers.dense({name: 'inner_dense', inputShape: [4], units: 3, kernelInitializer: tf.initializers.glorotUniform({seed: 7})}),
      batchNormalization({name: 'inner_bn'}),
    ]});
    const input = tf.input({shape: [4], name: 'input'});
    const shared = batchNormalization({name: 'shared'});
    const a = tf.layers.dense({name: 'a', units: 2, kernelInitializer: tf.initializers.glorotUniform({seed: 8})}).apply(inner.apply(input));
    const b = tf.layers.dense({name: 'b', units: 2, kernelInitializer: tf.initializers.glorotUniform({seed: 9})}).apply(input);
    const model = tf.model({inputs: input, outputs: [shared.apply(a) as tf.SymbolicTensor, shared.apply(b) as tf.SymbolicTensor]});
    randomizeBatchNorms(model);
    const data = batches([4], 40);
    const result = await recalibrate(model, data);
    expect(result.map(r => [r.layer, r.count])).toEqual([['inner/inner_bn', 16], ['shared', 32]]);
    const innerInputs = tf.tidy(() => {
      const all = tf.concat(data.map(x => inner.getLayer('inner_dense').apply(x) as tf.Tensor));
      return {shape: all.shape, values: all.dataSync() as Float32Array};
    });
    expectPopulationStatistics(inner, 'inner_bn', innerInputs, [1]);
    const sharedInputs = tf.tidy(() => {
      const toA = tf.model({inputs: input, outputs: a as tf.SymbolicTensor});
      const toB = tf.model({inputs: input, outputs: b as tf.SymbolicTensor});
      const all = tf.concat([...data.map(x => toA.predict(x) as tf.Tensor), ...data.map(x => toB.predict(x) as tf.Tensor)]);
      return {shape: all.shape, values: all.dataSync() as Float32Array};
    });
    expectPopulationStatistics(model, 'shared', sharedInputs, [1]);
    tf.dispose(data);
    model.dispose();
  });

  test('bad input: clear errors naming the model, batch, input or layer; every layer keeps its statistics; nothing leaks', async () => {
    const model = denseModel();
    const stats = movingStatistics(model);
    const good = batches([4], 50);
    const wrong = tf.ones([3, 5]);
    const cases: Array<[unknown, RegExp, object?]> = [
      [[good[0], wrong], /recalibrate: batch 1, input 'd1_input': shape \[3,5\] does not fit the model's input shape \[null,4\]/],
      [[[good[0], good[1]]], /recalibrate: batch 0 has 2 tensors, but model 'dense_model' has 1 inputs \(d1_input\)/],
      [[tf.zeros([0, 4])], /batch 0, input 'd1_input': shape \[0,4\] does not fit the model's input shape \[null,4\] \(the batch is empty\)/],
      [[], /recalibrate: argument 'data' yielded no batches \(an empty dataset\?\)/],
      [function* () { /* nothing */ }, /yielded no batches/],
      [tf.data.array([]), /yielded no batches/],
      [(function* () { yield good[0]; })(), /a generator object can be read only once, but the data is read once per batch-norm layer: pass the generator function instead/],
      [() => 42, /argument 'data' is a function that returned 42, expected an iterator/],
      [[{ys: good[0]}], /batch 0 has 0 tensors|batch 0, input 'd1_input': is undefined/],
      [good, /option 'batches' is 0, expected a positive integer/, {batches: 0}],
    ];
    for (const [data, message, options] of cases) {
      const before = tf.memory().numTensors;
      await expect(recalibrate(model, data as tf.Tensor[], options)).rejects.toThrow(message);
      expect({message: String(message), leaked: tf.memory().numTensors - before}).toEqual({message: String(message), leaked: 0});
      expect(movingStatistics(model)).toEqual(stats);
    }
    // A failure at the second layer puts the first layer's statistics back too (the second pass yields a bad batch).
    let pass = 0;
    await expect(recalibrate(model, function* () { yield pass++ === 0 ? good[0].clone() : tf.ones([2, 7]); })).rejects.toThrow(/batch 0, input 'd1_input': shape \[2,7\]/);
    expect(movingStatistics(model)).toEqual(stats);
    await expect(recalibrate(tf.sequential({name: 'unbuilt'}), good)).rejects.toThrow(/recalibrate: model 'unbuilt' is not built/);
    tf.dispose([...good, wrong]);
    model.dispose();
  });
});
