/**
 * foldBatchNorm: every layer type it folds into (each dataFormat, depth multipliers, transposed
 * kernels), what it must leave alone and why, Sequential / functional / nested models, the folded
 * weights against the float64 formula, the original left untouched, no leaks, clear errors.
 *
 * Tolerance: folded predictions are compared with the original model's (both float32) as
 * max|Δ| / max|output|. Measured over every model here, cpu and wasm: at most 3.8e-7 (scale and
 * center false, epsilon 0.5, cpu; 3.0e-7 for Conv3D), i.e. a few float32 roundings; FOLD_TOLERANCE =
 * 2e-6 is ~5× that, and within the 1e-5 the issue asks for.
 */
import * as tf from '@tensorflow/tfjs';
import {BatchNorm, batchNormalization, foldBatchNorm} from '../src';
import {loadReplacingStock, saveToMemory} from './support/round_trip';
import {describeEachBackend} from './support/backends';
import {errorRelativeToMagnitude, inputsFor, predictions, randomizeBatchNorms} from './support/deploy_models';
import {refInfer} from './support/reference';
import {mobileNetBlock} from '../bench/fold_workloads';

const FOLD_TOLERANCE = 2e-6;

const isBatchNorm = (l: tf.layers.Layer) => l instanceof BatchNorm || l.getClassName() === 'BatchNormalization';

/** Input → `layer` → batch norm → ReLU, as a functional model with fixed names. */
function layerThenBatchNorm(inputShape: number[], layer: tf.layers.Layer, bn: tf.layers.Layer): tf.LayersModel {
  const input = tf.input({shape: inputShape, name: 'input'});
  const y = tf.layers.reLU({name: 'relu'}).apply(bn.apply(layer.apply(input))) as tf.SymbolicTensor;
  return tf.model({inputs: input, outputs: y});
}

const seeded = (seed: number) => ({kernelInitializer: tf.initializers.glorotUniform({seed}), biasInitializer: tf.initializers.randomUniform({minval: -1, maxval: 1, seed: seed + 1})});
const depthwiseSeeded = (seed: number) => ({depthwiseInitializer: tf.initializers.glorotUniform({seed}), biasInitializer: tf.initializers.randomUniform({minval: -1, maxval: 1, seed: seed + 1})});

interface Case {
  title: string;
  inputShape: number[];
  layer: () => tf.layers.Layer;
  /** The batch norm's channel axis: -1, or 1 for channels-first. */
  axis: number;
  /** Where tfjs itself cannot run the layer (default: every backend of the suite). */
  backends?: string[];
}

const CF = {dataFormat: 'channelsFirst' as const};
const CASES: Case[] = [
  {title: 'Dense, rank-2 input, no bias', inputShape: [6], axis: -1, layer: () => tf.layers.dense({name: 'layer', units: 5, useBias: false, ...seeded(1)})},
  {title: 'Dense, rank-3 input, with bias', inputShape: [4, 6], axis: -1, layer: () => tf.layers.dense({name: 'layer', units: 5, ...seeded(2)})},
  {title: 'Conv1D', inputShape: [9, 3], axis: -1, layer: () => tf.layers.conv1d({name: 'layer', filters: 4, kernelSize: 3, useBias: false, ...seeded(3)})},
  {title: 'Conv2D channelsLast, strided, same padding', inputShape: [7, 7, 3], axis: -1,
    layer: () => tf.layers.conv2d({name: 'layer', filters: 4, kernelSize: 3, strides: 2, padding: 'same', ...seeded(4)})},
  {title: 'Conv2D channelsFirst', inputShape: [3, 7, 7], axis: 1, layer: () => tf.layers.conv2d({name: 'layer', filters: 4, kernelSize: 3, useBias: false, ...CF, ...seeded(5)})},
  {title: 'Conv3D channelsLast', inputShape: [5, 5, 5, 2], axis: -1, layer: () => tf.layers.conv3d({name: 'layer', filters: 3, kernelSize: 2, ...seeded(6)})},
  {title: 'Conv3D channelsFirst', inputShape: [2, 5, 5, 5], axis: 1, layer: () => tf.layers.conv3d({name: 'layer', filters: 3, kernelSize: 2, useBias: false, ...CF, ...seeded(7)})},
  {title: 'Conv2DTranspose channelsLast (kernel [kh, kw, out, in])', inputShape: [4, 4, 3], axis: -1,
    layer: () => tf.layers.conv2dTranspose({name: 'layer', filters: 5, kernelSize: 3, strides: 2, ...seeded(8)})},
  {title: 'Conv2DTranspose channelsFirst', inputShape: [3, 4, 4], axis: 1,
    layer: () => tf.layers.conv2dTranspose({name: 'layer', filters: 5, kernelSize: 3, useBias: false, ...CF, ...seeded(9)})},
  // tfjs-backend-wasm 4.22's Conv3DBackpropInputV2 returns different values for two identical calls: cpu only.
  {title: 'Conv3DTranspose channelsLast', inputShape: [3, 3, 3, 2], axis: -1, backends: ['cpu'],
    layer: () => tf.layers.conv3dTranspose({name: 'layer', filters: 3, kernelSize: 2, ...seeded(10)})},
  {title: 'DepthwiseConv2D, depth multiplier 1', inputShape: [6, 6, 3], axis: -1,
    layer: () => tf.layers.depthwiseConv2d({name: 'layer', kernelSize: 3, useBias: false, ...depthwiseSeeded(11)})},
  {title: 'DepthwiseConv2D, depth multiplier 3 (channel i·3 + j)', inputShape: [6, 6, 3], axis: -1,
    layer: () => tf.layers.depthwiseConv2d({name: 'layer', kernelSize: 3, depthMultiplier: 3, ...depthwiseSeeded(12)})},
  {title: 'DepthwiseConv2D channelsFirst, depth multiplier 2', inputShape: [3, 6, 6], axis: 1,
    layer: () => tf.layers.depthwiseConv2d({name: 'layer', kernelSize: 3, depthMultiplier: 2, useBias: false, ...CF, ...depthwiseSeeded(13)})},
  {title: 'SeparableConv2D (into the pointwise kernel), depth multiplier 2', inputShape: [6, 6, 3], axis: -1,
    layer: () => tf.layers.separableConv2d({name: 'layer', filters: 4, kernelSize: 3, depthMultiplier: 2, useBias: false,
      depthwiseInitializer: tf.initializers.glorotUniform({seed: 14}), pointwiseInitializer: tf.initializers.glorotUniform({seed: 15})})},
];

/** Asserts the folded model predicts what the original does, and returns the measured error. */
function expectSamePredictions(folded: tf.LayersModel, original: tf.LayersModel, batch = 3): number {
  const inputs = inputsFor(original, batch);
  const want = predictions(original, inputs);
  const got = predictions(folded, inputs);
  tf.dispose(inputs);
  const error = Math.max(...want.map((w, i) => errorRelativeToMagnitude(got[i], w)));
  expect(error).toBeLessThanOrEqual(FOLD_TOLERANCE);
  return error;
}

describeEachBackend('foldBatchNorm', backend => {
  describe.each(CASES.filter(c => c.backends == null || c.backends.includes(backend)))('$title', ({inputShape, layer, axis}) => {
    test.each([
      ['BatchNorm', () => batchNormalization({name: 'bn', axis})],
      ['stock BatchNormalization', () => tf.layers.batchNormalization({name: 'bn', axis})],
    ])('%s folds into it; predictions equal; names kept; nothing leaks', async (_, makeBn) => {
      // The stock layer computes channels-first inference wrongly on cpu and wasm (tfjs #1106) and
      // throws at rank 5 (tfjs #2504): a folded stock layer is compared with BatchNorm's inference on
      // the same weights, which is what the stock layer means to compute.
      const original = layerThenBatchNorm(inputShape, layer(), makeBn());
      randomizeBatchNorms(original);
      const stockCannot = !(original.getLayer('bn') instanceof BatchNorm) && (axis === 1 || inputShape.length === 4);
      const reference = stockCannot ? await withBatchNorm(original) : original;
      const before = tf.memory().numTensors;
      const {model, report} = await foldBatchNorm(original, {report: true});
      expect(report).toEqual({folded: [{layer: 'bn', into: 'layer'}], kept: []});
      expect(model.layers.map(l => l.name)).toEqual(['input', 'layer', 'relu']);
      expect(model.getLayer('layer').getConfig().useBias).toBe(true);
      expectSamePredictions(model, reference);
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
      if (reference !== original) reference.dispose();
      original.dispose();
    });
  });

  test('scale: false, center: false and a large epsilon fold too', async () => {
    for (const args of [{scale: false}, {center: false}, {scale: false, center: false, epsilon: 0.5}]) {
      const original = layerThenBatchNorm([6, 6, 2], tf.layers.conv2d({name: 'layer', filters: 3, kernelSize: 3, ...seeded(20)}), batchNormalization({name: 'bn', ...args}));
      randomizeBatchNorms(original);
      const model = await foldBatchNorm(original);
      expect(model.layers.some(isBatchNorm)).toBe(false);
      expectSamePredictions(model, original);
      model.dispose();
      original.dispose();
    }
  });

  test('constraints on the folded weights are dropped (tfjs would clip the folded kernel when it loads it)', async () => {
    const original = layerThenBatchNorm([3], tf.layers.dense({name: 'layer', units: 2, kernelConstraint: 'nonNeg', biasConstraint: 'nonNeg',
      kernelInitializer: tf.initializers.ones()}), batchNormalization({name: 'bn'}));
    original.getLayer('bn').setWeights([tf.tensor1d([-1.5, 2]), tf.tensor1d([0.5, -3]), tf.tensor1d([0.5, 1]), tf.tensor1d([2, 1])]);
    const model = await foldBatchNorm(original);
    expect(model.getLayer('layer').getConfig()).toMatchObject({kernelConstraint: null, biasConstraint: null});
    expectSamePredictions(model, original);
    model.dispose();
    original.dispose();
  });

  test('a MobileNet-style block (depthwise → BN → ReLU6 → pointwise → BN) folds both batch norms', async () => {
    const original = mobileNetBlock({inputShape: [8, 8, 4], filters: 6, seed: 3});
    randomizeBatchNorms(original);
    const {model, report} = await foldBatchNorm(original, {report: true});
    expect(report.folded.map(f => f.into)).toEqual(['depthwise', 'pointwise']);
    expect(model.layers.some(isBatchNorm)).toBe(false);
    expectSamePredictions(model, original, 4);
    model.dispose();
    original.dispose();
  });
}, ['cpu', 'wasm']);

/** A copy of a model whose stock BatchNormalization layers are BatchNorm layers, same weights. */
async function withBatchNorm(model: tf.LayersModel): Promise<tf.LayersModel> {
  return loadReplacingStock(await saveToMemory(model));
}

describe('foldBatchNorm [cpu]', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  test('folded weights are the float64 formula rounded once: W·γ/√(σ²+ε), (b − μ)·γ/√(σ²+ε) + β', async () => {
    const original = layerThenBatchNorm([5, 5, 3], tf.layers.conv2d({name: 'layer', filters: 4, kernelSize: 3, ...seeded(30)}), batchNormalization({name: 'bn', epsilon: 0.01}));
    randomizeBatchNorms(original);
    const [kernel, bias] = original.getLayer('layer').getWeights().map(w => Array.from(w.dataSync()));
    const [gamma, beta, mean, variance] = original.getLayer('bn').getWeights().map(w => Array.from(w.dataSync()));
    const channels = gamma.length;
    const scale = gamma.map((g, c) => g / Math.sqrt(variance[c] + 0.01));
    const wantKernel = Float32Array.from(kernel, (w, i) => w * scale[i % channels]);
    const wantBias = Float32Array.from(bias, (b, c) => (b - mean[c]) * scale[c] + beta[c]);
    const model = await foldBatchNorm(original);
    const [gotKernel, gotBias] = model.getLayer('layer').getWeights().map(w => w.dataSync() as Float32Array);
    expect(Array.from(gotKernel)).toEqual(Array.from(wantKernel));
    expect(Array.from(gotBias)).toEqual(Array.from(wantBias));
    // The same in float32 arithmetic differs in some elements: the exact comparison above can tell.
    const f = Math.fround;
    const scale32 = gamma.map((g, c) => f(g / f(Math.sqrt(f(variance[c] + f(0.01))))));
    const float32Bias = Float32Array.from(bias, (b, c) => f(f(f(b - mean[c]) * scale32[c]) + beta[c]));
    const float32Kernel = Float32Array.from(kernel, (w, i) => w * scale32[i % channels]);
    expect(Array.from(float32Kernel).some((v, i) => v !== wantKernel[i]) || Array.from(float32Bias).some((v, i) => v !== wantBias[i])).toBe(true);
    model.dispose();
    original.dispose();
  });

  test('inference semantics are the layer\'s own: the folded model equals the float64 moving-statistics formula on the conv output', async () => {
    const original = layerThenBatchNorm([6, 6, 2], tf.layers.conv2d({name: 'layer', filters: 3, kernelSize: 3, ...seeded(31)}), batchNormalization({name: 'bn', epsilon: 0.05}));
    randomizeBatchNorms(original);
    original.getLayer('bn').trainable = false;  // frozen: still the moving statistics, still foldable
    const model = await foldBatchNorm(original);
    const x = tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 3);
    const convOut = tf.model({inputs: original.inputs, outputs: original.getLayer('layer').output as tf.SymbolicTensor}).predict(x) as tf.Tensor;
    const [gamma, beta, mean, variance] = original.getLayer('bn').getWeights().map(w => w.dataSync());
    const bn = refInfer({shape: convOut.shape, axes: [3], x: convOut.dataSync(), gamma, beta, epsilon: 0.05}, mean, variance);
    const want = bn.map(v => Math.max(v, 0));
    const got = (model.predict(x) as tf.Tensor).dataSync();
    expect(errorRelativeToMagnitude(got, want)).toBeLessThanOrEqual(FOLD_TOLERANCE);
    tf.dispose([x, convOut]);
    model.dispose();
    original.dispose();
  });

  /** One model per situation that must be left alone, and the reason the report must give. */
  const KEPT: Array<[string, () => tf.LayersModel, RegExp]> = [
    ['after an activation layer', () => {
      const input = tf.input({shape: [5, 5, 2], name: 'input'});
      const conv = tf.layers.conv2d({name: 'conv', filters: 3, kernelSize: 3}).apply(input) as tf.SymbolicTensor;
      return tf.model({inputs: input, outputs: batchNormalization({name: 'bn'}).apply(tf.layers.reLU({name: 'relu'}).apply(conv)) as tf.SymbolicTensor});
    }, /input comes from 'relu' \(ReLU\), which is not one of Dense, Conv1D/],
    ['after a conv with a non-linear activation', () =>
      layerThenBatchNorm([5, 5, 2], tf.layers.conv2d({name: 'conv', filters: 3, kernelSize: 3, activation: 'relu'}), batchNormalization({name: 'bn'})),
    /'conv' \(Conv2D\), whose activation is 'relu', not linear/],
    ['before a conv (the model input)', () => {
      const input = tf.input({shape: [5, 5, 2], name: 'input'});
      const bn = batchNormalization({name: 'bn'}).apply(input);
      return tf.model({inputs: input, outputs: tf.layers.conv2d({name: 'conv', filters: 3, kernelSize: 3}).apply(bn) as tf.SymbolicTensor});
    }, /its input is a model input/],
    ['after a conv whose output also feeds a skip connection', () => {
      const input = tf.input({shape: [5, 5, 3], name: 'input'});
      const conv = tf.layers.conv2d({name: 'conv', filters: 3, kernelSize: 3, padding: 'same'}).apply(input) as tf.SymbolicTensor;
      const bn = batchNormalization({name: 'bn'}).apply(conv) as tf.SymbolicTensor;
      return tf.model({inputs: input, outputs: tf.layers.add({name: 'add'}).apply([bn, conv]) as tf.SymbolicTensor});
    }, /'conv' \(Conv2D\), whose output also goes to 'add'/],
    ['after a conv whose output is also a model output', () => {
      const input = tf.input({shape: [5, 5, 3], name: 'input'});
      const conv = tf.layers.conv2d({name: 'conv', filters: 3, kernelSize: 3}).apply(input) as tf.SymbolicTensor;
      return tf.model({inputs: input, outputs: [conv, batchNormalization({name: 'bn'}).apply(conv) as tf.SymbolicTensor]});
    }, /whose output also goes to the model output/],
    ['with a list of several axes', () =>
      layerThenBatchNorm([4, 6], tf.layers.dense({name: 'dense', units: 5}), batchNormalization({name: 'bn', axis: [1, 2]})),
    /its channel axes \(1, 2 of rank 3\) are not the output-channel axis \(2\)/],
    ['with a channel axis that is not the conv\'s (axis 1 after a channels-last conv)', () =>
      layerThenBatchNorm([5, 5, 2], tf.layers.conv2d({name: 'conv', filters: 3, kernelSize: 3}), batchNormalization({name: 'bn', axis: 1})),
    /its channel axis \(1 of rank 4\) is not the output-channel axis \(3\) of 'conv'/],
    ['after a shared conv', () => {
      const a = tf.input({shape: [5, 5, 2], name: 'a'});
      const b = tf.input({shape: [5, 5, 2], name: 'b'});
      const conv = tf.layers.conv2d({name: 'conv', filters: 3, kernelSize: 3});
      const bn = batchNormalization({name: 'bn'}).apply(conv.apply(a)) as tf.SymbolicTensor;
      return tf.model({inputs: [a, b], outputs: [bn, conv.apply(b) as tf.SymbolicTensor]});
    }, /'conv' \(Conv2D\), which is shared: called at 2 places/],
    ['a shared batch norm', () => {
      const a = tf.input({shape: [4], name: 'a'});
      const bn = batchNormalization({name: 'bn'});
      const d1 = tf.layers.dense({name: 'd1', units: 3}).apply(a);
      const d2 = tf.layers.dense({name: 'd2', units: 3}).apply(a);
      return tf.model({inputs: a, outputs: [bn.apply(d1) as tf.SymbolicTensor, bn.apply(d2) as tf.SymbolicTensor]});
    }, /it is shared: called at 2 places/],
    ['with inferenceStatistics \'batch\'', () =>
      layerThenBatchNorm([5, 5, 2], tf.layers.conv2d({name: 'conv', filters: 3, kernelSize: 3}), batchNormalization({name: 'bn', inferenceStatistics: 'batch'})),
    /normalizes with batch statistics at inference/],
    ['called with a call-site training: true', () => {
      const input = tf.input({shape: [4], name: 'input'});
      const dense = tf.layers.dense({name: 'dense', units: 3}).apply(input);
      return tf.model({inputs: input, outputs: batchNormalization({name: 'bn'}).apply(dense, {training: true}) as tf.SymbolicTensor});
    }, /normalizes with batch statistics at inference/],
    ['after a nested model', () => {
      const inner = tf.sequential({name: 'inner', layers: [tf.layers.dense({name: 'inner_dense', inputShape: [4], units: 3})]});
      const input = tf.input({shape: [4], name: 'input'});
      return tf.model({inputs: input, outputs: batchNormalization({name: 'bn'}).apply(inner.apply(input)) as tf.SymbolicTensor});
    }, /'inner' \(Sequential\), a nested model/],
    ['after a channels-first SeparableConv2D (tfjs adds its bias on the wrong axis)', () =>
      layerThenBatchNorm([3, 6, 6], tf.layers.separableConv2d({name: 'sep', filters: 4, kernelSize: 3, useBias: false, dataFormat: 'channelsFirst'}),
        batchNormalization({name: 'bn', axis: 1})),
    /SeparableConv2D with dataFormat 'channelsFirst' adds its bias along the wrong axis/],
  ];

  test.each(KEPT)('left in place, with the reason: %s', async (_, build, reason) => {
    const original = build();
    randomizeBatchNorms(original);
    const {model, report} = await foldBatchNorm(original, {report: true});
    expect(report.folded).toEqual([]);
    expect(report.kept).toEqual([{layer: 'bn', reason: expect.stringMatching(reason)}]);
    expect(model.layers.map(l => l.name)).toEqual(original.layers.map(l => l.name));
    // Nothing folded: the copy computes bit for bit what the original does.
    const inputs = inputsFor(original);
    expect(predictions(model, inputs)).toEqual(predictions(original, inputs));
    tf.dispose(inputs);
    model.dispose();
    original.dispose();
  });

  test('Sequential: folds conv and dense batch norms, keeps one after an activation, stays Sequential', async () => {
    const original = tf.sequential({name: 'seq', layers: [
      tf.layers.conv2d({name: 'conv', inputShape: [6, 6, 2], filters: 4, kernelSize: 3, useBias: false, ...seeded(40)}),
      batchNormalization({name: 'bn1'}),
      tf.layers.reLU({name: 'relu'}),
      tf.layers.batchNormalization({name: 'bn2'}),
      tf.layers.flatten({name: 'flatten'}),
      tf.layers.dense({name: 'dense', units: 5, ...seeded(41)}),
      tf.layers.batchNormalization({name: 'bn3'}),
    ]});
    randomizeBatchNorms(original);
    const {model, report} = await foldBatchNorm(original, {report: true});
    expect(model).toBeInstanceOf(tf.Sequential);
    expect(report.folded).toEqual([{layer: 'bn1', into: 'conv'}, {layer: 'bn3', into: 'dense'}]);
    expect(report.kept.map(k => k.layer)).toEqual(['bn2']);
    expect(model.layers.map(l => l.name)).toEqual(['conv', 'relu', 'bn2', 'flatten', 'dense']);
    expectSamePredictions(model, original);
    model.dispose();
    original.dispose();
  });

  test('functional: residual block, two inputs, two outputs, a nested Sequential with its own conv → BN', async () => {
    const inner = tf.sequential({name: 'inner', layers: [
      tf.layers.dense({name: 'inner_dense', inputShape: [4], units: 3, useBias: false, ...seeded(50)}),
      batchNormalization({name: 'inner_bn'}),
    ]});
    const image = tf.input({shape: [6, 6, 3], name: 'image'});
    const vector = tf.input({shape: [4], name: 'vector'});
    const c1 = tf.layers.conv2d({name: 'c1', filters: 3, kernelSize: 3, padding: 'same', ...seeded(51)}).apply(image);
    const b1 = tf.layers.reLU({name: 'r1'}).apply(batchNormalization({name: 'b1'}).apply(c1));
    const c2 = tf.layers.conv2d({name: 'c2', filters: 3, kernelSize: 3, padding: 'same', useBias: false, ...seeded(52)}).apply(b1);
    const b2 = tf.layers.batchNormalization({name: 'b2'}).apply(c2) as tf.SymbolicTensor;
    const residual = tf.layers.reLU({name: 'r2'}).apply(tf.layers.add({name: 'add'}).apply([b2, image])) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({name: 'pool'}).apply(residual) as tf.SymbolicTensor;
    const v = inner.apply(vector) as tf.SymbolicTensor;
    const joined = tf.layers.concatenate({name: 'concat'}).apply([pooled, v]);
    const head = tf.layers.dense({name: 'head', units: 2, ...seeded(53)}).apply(joined);
    const headBn = batchNormalization({name: 'head_bn'}).apply(head) as tf.SymbolicTensor;
    const original = tf.model({name: 'net', inputs: [image, vector], outputs: [headBn, residual]});
    randomizeBatchNorms(original);
    const {model, report} = await foldBatchNorm(original, {report: true});
    expect(report.folded).toEqual([
      {layer: 'b1', into: 'c1'}, {layer: 'b2', into: 'c2'}, {layer: 'inner/inner_bn', into: 'inner/inner_dense'}, {layer: 'head_bn', into: 'head'},
    ]);
    expect(report.kept).toEqual([]);
    expect(model.layers.map(l => l.name)).toEqual(original.layers.map(l => l.name).filter(n => !['b1', 'b2', 'head_bn'].includes(n)));
    expect((model.getLayer('inner') as tf.LayersModel).layers.map(l => l.name)).toEqual(['inner_dense']);
    // A batch norm that was a model output is replaced by the layer it folded into.
    expect(model.outputNames).toEqual(['head', 'r2']);
    expectSamePredictions(model, original);
    model.dispose();
    original.dispose();
  });

  test('the original model is not modified: same JSON, same weight bytes, same predictions', async () => {
    const original = layerThenBatchNorm([5, 5, 2], tf.layers.conv2d({name: 'layer', filters: 3, kernelSize: 3, useBias: false}), batchNormalization({name: 'bn'}));
    randomizeBatchNorms(original);
    const json = original.toJSON(null, false);
    const weights = original.getWeights().map(w => Array.from(w.dataSync()));
    const inputs = inputsFor(original);
    const before = predictions(original, inputs);
    const model = await foldBatchNorm(original);
    model.getLayer('layer').setWeights(model.getLayer('layer').getWeights().map(w => tf.zerosLike(w)));  // the copy shares nothing
    expect(original.toJSON(null, false)).toEqual(json);
    expect(original.getWeights().map(w => Array.from(w.dataSync()))).toEqual(weights);
    expect(predictions(original, inputs)).toEqual(before);
    tf.dispose(inputs);
    model.dispose();
    original.dispose();
  });

  test('a model that is not built, or disposed: a clear error naming the model (and the layer)', async () => {
    // tfjs refuses a first Sequential layer without an input shape, so an unbuilt model is an empty one.
    await expect(foldBatchNorm(tf.sequential({name: 'unbuilt'}))).rejects.toThrow(
      /foldBatchNorm: model 'unbuilt' is not built, so its layers have no weights yet; give its first layer an inputShape/);
    const disposed = tf.sequential({name: 'gone', layers: [tf.layers.dense({inputShape: [3], units: 2}), batchNormalization({name: 'bn'})]});
    disposed.dispose();
    await expect(foldBatchNorm(disposed)).rejects.toThrow(
      /foldBatchNorm: model 'gone' has been disposed \(layer 'bn' \(TfjsBatchNorm>BatchNorm\) has no weights left\)/);
    await expect(foldBatchNorm({} as tf.LayersModel)).rejects.toThrow(/foldBatchNorm: argument 'model' is object, expected a tf.LayersModel/);
  });
});
