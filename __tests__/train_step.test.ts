/**
 * The layer's training step (src/ops/train_step.ts) as issue 14 asks for it:
 *
 * - the moving statistics (and renorm's) are bit for bit the float32 formula
 *   moving·momentum + batch·(1 − momentum) applied to the step's float32 batch statistics
 *   (support/reference.ts refMovingUpdateFloat32; reference_variants.ts refRenormUpdate in float32), on
 *   every path: inside the fused training kernel, in tf ops around the kernels' base interface, and
 *   in tf ops (composite);
 * - the kernels a step runs, which are deterministic (no timing here): on cpu and wasm a training
 *   step of the layer is the two fused kernels and the copies tfjs makes of what their gradient
 *   saves; inference is one kernel;
 * - what cannot be differentiated says so.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization, BatchNormArgs} from '../src';
import {BatchNormFeature, BatchNormInfer, BatchNormKernelConfig, BatchNormTrain, BatchNormTrainGrad} from '../src/kernel_names';
import {implementationFor} from '../src/ops/dispatch';
import {MovingInputs, RenormInputs} from '../src/ops/renorm_ops';
import {trainStep} from '../src/ops/train_step';
import {checkCommon} from '../src/ops/validate';
import {cpuCopy, describeEachPath, KernelForCopy, PathName, removeCpuCopies} from './support/backends';
import {maxRelativeError} from './support/golden';
import {refMovingUpdateFloat32} from './support/reference';
import {refRenormUpdate} from './support/reference_variants';

const EPSILON = 1e-3;

/** Seeded float32 values with per-position variety. */
function values(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  return Float32Array.from({length: n}, (_, i) => Math.fround(offset + scale * Math.sin(seed * 1.7 + i * 0.61) * Math.cos(i * 0.13 + seed)));
}

/** Bitwise equality of float32 arrays (NaN payloads and signed zeros included). */
function expectBitwise(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer));
  expect({what, bits: bits(got)}).toEqual({what, bits: bits(want)});
}

interface StepCase {
  name: string;
  shape: number[];
  axis: number;
  virtualBatchSize?: number;
  renorm?: boolean;
}

const STEP_CASES: StepCase[] = [
  {name: 'dense [16,6]', shape: [16, 6], axis: -1},
  {name: 'channels-last [4,3,3,5]', shape: [4, 3, 3, 5], axis: -1},
  {name: 'channels-first [4,5,3,2]', shape: [4, 5, 3, 2], axis: 1},
  {name: 'dense [16,6], 4 ghost batches', shape: [16, 6], axis: -1, virtualBatchSize: 4},
  {name: 'channels-last [6,3,2,4], 3 ghost batches', shape: [6, 3, 2, 4], axis: -1, virtualBatchSize: 2},
  {name: 'dense [8,5], renorm', shape: [8, 5], axis: -1, renorm: true},
  {name: 'channels-last [6,3,2,4], renorm and 2 ghost batches', shape: [6, 3, 2, 4], axis: -1, virtualBatchSize: 3, renorm: true},
];

describeEachPath('moving statistics: bit for bit the float32 formula', (backend, path: PathName) => {
  test.each(STEP_CASES.map(c => [c.name, c] as [string, StepCase]))('%s', (_, c) => {
    const channels = c.shape[c.axis < 0 ? c.axis + c.shape.length : c.axis];
    const size = c.shape.reduce((a, b) => a * b, 1);
    const x = tf.tensor(values(size, 1, 2, 3), c.shape);
    const perChannel = (seed: number, scale: number, offset: number) => tf.tensor(values(channels, seed, scale, offset), [channels]);
    const [gamma, beta, movingMean, movingVariance, movingStddev, renormMean, renormStddev] =
        [[2, 0.3, 1], [3, 0.2, 0], [4, 0.5, 0.1], [5, 0.3, 1.5], [6, 0.2, 1.2], [7, 0.6, 2.5], [8, 0.4, 1.5]].map(([s, k, o]) => perChannel(s, k, o));
    const moving: MovingInputs = {mean: movingMean, variance: movingVariance, momentum: 0.9, stddev: c.renorm ? movingStddev : null};
    const renorm: RenormInputs | null = c.renorm ? {renormMean, renormStddev, rmin: 0.8, rmax: 1.2, dmax: 0.3, renormMomentum: 0.7} : null;
    const before = tf.memory().numTensors;
    const step = trainStep(checkCommon('test', x, [c.axis < 0 ? c.axis + c.shape.length : c.axis], EPSILON), gamma, beta,
        {moving, renorm, virtualBatchSize: c.virtualBatchSize});
    const updated = step.updated as NonNullable<typeof step.updated>;
    const [mean, variance] = [step.mean.dataSync(), step.variance.dataSync()];
    const label = `${backend}/${path}/${c.name}`;
    if (renorm == null) {
      expectBitwise(updated.movingMean.dataSync(), refMovingUpdateFloat32(movingMean.dataSync(), mean, 0.9), `${label} moving_mean`);
      expectBitwise(updated.movingVariance.dataSync(), refMovingUpdateFloat32(movingVariance.dataSync(), variance, 0.9), `${label} moving_variance`);
    } else {
      const want = refRenormUpdate({movingMean: movingMean.dataSync(), movingStddev: movingStddev.dataSync(),
        renormMean: renormMean.dataSync(), renormStddev: renormStddev.dataSync()}, mean, variance, 0.9, 0.7, EPSILON, true);
      for (const key of ['movingMean', 'movingVariance', 'movingStddev', 'renormMean', 'renormStddev'] as const) {
        expectBitwise((updated[key] as tf.Tensor).dataSync(), want[key], `${label} ${key}`);
      }
    }
    tf.dispose([step.y, step.mean, step.variance, ...Object.values(updated)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, gamma, beta, movingMean, movingVariance, movingStddev, renormMean, renormStddev]);
  });
}, ['cpu', 'wasm'], ['fused', 'base', 'composite']);

// A layer with list axes keeps its weights in the channels' shape ([3, 2] here, 6 channels): inside
// the fused training kernel (a step with the moving update) each gradient takes its parameter's
// shape, from gamma or, without a scale, from the `paramShape` attribute, with the values of the
// [channels]-shaped step. Measured difference 0; tolerance 1e-6.
describeEachPath('parameters in the shape of list axes', () => {
  const shape = [4, 3, 2, 2];
  const axes = [1, 2];
  test.each([[true, true], [false, true], [true, false]])('scale %s, center %s', (scale, center) => {
    const x = tf.tensor(values(48, 1, 2, 3), shape);
    const wy = tf.tensor(values(48, 2), shape);
    const moving: MovingInputs = {mean: tf.zeros([6]), variance: tf.ones([6]), momentum: 0.9};
    /** dx, dgamma, dbeta (those present) for parameters of this shape. */
    const gradients = (paramShape: number[]) => {
      const params = [scale ? tf.tensor(values(6, 3, 0.5, 1), paramShape) : null, center ? tf.tensor(values(6, 4), paramShape) : null];
      const present = params.filter((t): t is tf.Tensor => t != null);
      const grads = tf.grads((xi: tf.Tensor, ...ps: tf.Tensor[]) => {
        const [g, b] = params.map(t => (t == null ? null : ps.shift() as tf.Tensor));
        const step = trainStep(checkCommon('test', xi, axes, EPSILON), g, b, {moving});
        return tf.sum(tf.mul(step.y, wy));
      })([x, ...present]);
      return grads.map(t => ({shape: t.shape, values: t.dataSync()}));
    };
    const got = gradients([3, 2]);
    const want = gradients([6]);
    expect(got.map(g => g.shape)).toEqual([shape, ...Array(got.length - 1).fill([3, 2])]);
    got.forEach((g, i) => expect(maxRelativeError(g.values, want[i].values)).toBeLessThanOrEqual(1e-6));
  });
}, ['cpu', 'wasm'], ['fused', 'base', 'composite']);

/** The kernels one call of `f` runs. */
async function kernelsOf(f: () => tf.TensorContainer): Promise<string[]> {
  const profile = await tf.profile(() => { tf.dispose(f()); });
  return profile.kernels.map(k => k.name);
}

/** A built layer with distinct weights and an input of `shape`. */
function layerFor(shape: number[], args: BatchNormArgs): {layer: tf.layers.Layer; x: tf.Variable; dy: tf.Tensor} {
  const layer = batchNormalization({momentum: 0.9, ...args});
  tf.tidy(() => { layer.apply(tf.zeros(shape)); });
  const size = shape.reduce((a, b) => a * b, 1);
  return {layer, x: tf.variable(tf.tensor(values(size, 1, 2, 3), shape)), dy: tf.tensor(values(size, 2), shape)};
}

/** A training step as the benchmark times it: forward in training mode and the gradients for x and the trainable weights. */
function trainingStep(layer: tf.layers.Layer, x: tf.Variable, dy: tf.Tensor): tf.Tensor[] {
  return tf.grads(() => layer.apply(x, {training: true}) as tf.Tensor)([x, ...layer.trainableWeights.map(w => w.read())], dy);
}

const SAVED = 'Identity';  // tfjs copies each tensor a gradient saves with an Identity kernel

describeEachPath('kernels per step', (_backend, path) => {
  test.each([[[64, 64]], [[32, 8, 8, 32]]])('%j: training step and inference', async shape => {
    const {layer, x, dy} = layerFor(shape, {});
    const training = await kernelsOf(() => trainingStep(layer, x, dy));
    const inference = await kernelsOf(() => layer.apply(x) as tf.Tensor);
    if (path === 'fused') {
      // Saved for the gradient: x, gamma and the variance output. Nothing else: no reshapes, fills or elementwise updates.
      expect(training).toEqual([SAVED, SAVED, SAVED, BatchNormTrain, BatchNormTrainGrad]);
      expect(inference).toEqual([BatchNormInfer]);
    } else if (path === 'base') {
      // The base interface: [channels]-shaped parameters (reshaped: a Reshape, its saved input, its gradient) and the updates in tf ops.
      expect(training).toContain(BatchNormTrain);
      expect(training).toContain(BatchNormTrainGrad);
      expect(training).toContain('Multiply');
      expect(inference).toContain(BatchNormInfer);
    } else {
      expect(training.filter(k => k.startsWith('TfjsBatchNorm'))).toEqual([]);
    }
    tf.dispose([x, dy]);
    layer.dispose();
  });

  // Ghost batches composed around the base kernels (path 'base') view channels-last inputs
  // transposed, so that the ghost axis sits next to the channels and the fused kernels take it (one
  // transpose of x and one of y forward, two backward); channels-first needs none. The tf-ops path
  // transposes nothing, and the fused path does it all inside the kernel.
  test.each([
    ['channels-last [6,3,3,4], 3 per ghost batch', [6, 3, 3, 4], {virtualBatchSize: 3}, {fused: [1, 0], base: [1, 4], composite: [0, 0]}],
    ['channels-first [6,4,3,3], 2 per ghost batch', [6, 4, 3, 3], {axis: 1, virtualBatchSize: 2}, {fused: [1, 0], base: [1, 0], composite: [0, 0]}],
  ] as Array<[string, number[], BatchNormArgs, Record<PathName, [number, number]>]>)('%s: training kernels and transposes', async (_, shape, args, want) => {
    const {layer, x, dy} = layerFor(shape, args);
    const training = await kernelsOf(() => trainingStep(layer, x, dy));
    const count = (name: string) => training.filter(k => k === name).length;
    expect([count(BatchNormTrain), count('Transpose')]).toEqual(want[path]);
    tf.dispose([x, dy]);
    layer.dispose();
  });

  test('fused: scale and center false, renorm, ghost batches: every part inside the two kernels', async () => {
    for (const [args, saved] of [[{scale: false, center: false}, 2], [{renorm: true, renormClipping: {rmax: 2, dmax: 1}}, 5],
      [{virtualBatchSize: 8}, 3], [{renorm: true, virtualBatchSize: 16, renormClipping: {rmax: {from: 1, to: 3, endStep: 10}}}, 5]] as Array<[BatchNormArgs, number]>) {
      const {layer, x, dy} = layerFor([32, 4, 4, 8], args);
      const training = await kernelsOf(() => trainingStep(layer, x, dy));
      if (path === 'fused') {
        const scheduled = args.renormClipping?.rmax instanceof Object;
        // With a clipping schedule, the bound's value comes from the step counter in scalar ops off the tape (a tf.customGrad,
        // which the profile lists after its kernels as 'unnamed scope'), and the counter moves by one Add (another scope).
        const bounds = scheduled ? ['Sub', 'RealDiv', 'ClipByValue', 'Multiply', 'Add', 'unnamed scope'] : [];
        const counter = scheduled ? ['Add', 'unnamed scope'] : [];
        expect({args, training}).toEqual({args, training: [...bounds, ...Array(saved).fill(SAVED), BatchNormTrain, ...counter, BatchNormTrainGrad]});
      }
      tf.dispose([x, dy]);
      layer.dispose();
    }
  });
}, ['cpu', 'wasm'], ['fused', 'base', 'composite']);

test('ghost batches that do not divide the batch are refused, naming the caller and the sizes', async () => {
  await tf.setBackend('cpu');
  const x = tf.zeros([6, 3]);
  const before = tf.memory().numTensors;
  expect(() => trainStep(checkCommon('test', x, [1], EPSILON), null, null, {virtualBatchSize: 4, fn: 'BatchNorm layer'}))
      .toThrow(/^BatchNorm layer: argument 'virtualBatchSize' is 4, which does not divide the batch size 6: in training each batch is split into ghost batches of 4 samples$/);
  expect(() => trainStep(checkCommon('test', x, [1], EPSILON), null, null, {virtualBatchSize: 4})).toThrow(/^batchNormTrain: argument 'virtualBatchSize'/);
  expect(tf.memory().numTensors).toBe(before);
  x.dispose();
});

describe('what has no gradient says so', () => {
  beforeAll(() => tf.setBackend('cpu'));

  test('the moving statistics as inputs of a training step: tfjs refuses, naming the input', () => {
    const {layer, x} = layerFor([8, 3], {});
    const moving = layer.weights[2].read();
    expect(() => tf.grads(() => tf.sum(layer.apply(x, {training: true}) as tf.Tensor))([moving])).toThrow(/Cannot backprop through input movingMean/);
    x.dispose();
    layer.dispose();
  });
});

/** The inputs and attributes each feature adds to a kernel's base interface (kernel_names.ts). */
const FEATURE_PARTS: Record<BatchNormFeature, {inputs: string[]; attrs: string[]}> = {
  flexibleParams: {inputs: [], attrs: ['paramShape']},
  movingUpdate: {inputs: ['movingMean', 'movingVariance'], attrs: ['momentum']},
  renorm: {inputs: ['movingStddev', 'renormMean', 'renormStddev', 'rmin', 'rmax', 'dmax', 'r', 'd'], attrs: ['renormMomentum']},
  ghosts: {inputs: [], attrs: ['ghosts']},
};

/**
 * cpu's kernel `kernelName` as a backend's kernel that declares only `features` would be: it reads
 * the base inputs and attributes and those of its features, nothing else (what it is given beyond
 * them is dropped before it runs).
 */
function limitedKernel(kernelName: string, features: BatchNormFeature[]): KernelForCopy & Pick<BatchNormKernelConfig, 'features'> {
  const full = tf.getKernel(kernelName, 'cpu') as tf.KernelConfig;
  const dropped = (Object.keys(FEATURE_PARTS) as BatchNormFeature[]).filter(f => !features.includes(f)).map(f => FEATURE_PARTS[f]);
  const keep = (record: object, which: 'inputs' | 'attrs') =>
    Object.fromEntries(Object.entries(record).filter(([key]) => !dropped.some(parts => parts[which].includes(key))));
  return {kernelName, features: Object.fromEntries(features.map(f => [f, true])),
    kernelFunc: ({inputs, backend, attrs}) =>
      full.kernelFunc({inputs: keep(inputs, 'inputs') as tf.NamedTensorInfoMap, backend, attrs: keep(attrs ?? {}, 'attrs') as tf.NamedAttrMap})};
}

/**
 * Registers, once, a copy of cpu whose training kernel declares `train` and whose gradient kernel is
 * missing (null) or declares `grad` (limitedKernel).
 */
function limitedBackend(name: string, train: BatchNormFeature[], grad: BatchNormFeature[] | null): string {
  const trainKernel = limitedKernel(BatchNormTrain, train);
  return grad == null ? cpuCopy(name, [trainKernel], [BatchNormTrainGrad]) : cpuCopy(name, [trainKernel, limitedKernel(BatchNormTrainGrad, grad)]);
}

const ALL_FEATURES: BatchNormFeature[] = ['flexibleParams', 'movingUpdate', 'renorm', 'ghosts'];

/**
 * A cpu backend whose training kernel declares every feature and whose gradient kernel is missing
 * ('none'), written for the base interface ('base'), or declares flexible parameters only ('flexible').
 */
function backendWithGradient(gradient: 'none' | 'base' | 'flexible'): string {
  return limitedBackend(`bn-grad-${gradient}`, ALL_FEATURES, {none: null, base: [], flexible: ['flexibleParams' as const]}[gradient]);
}

/** The layer's training step on `backend`: y, the gradients and the weights after it, as arrays. */
async function stepValues(backend: string, shape: number[], args: BatchNormArgs): Promise<number[][]> {
  await tf.setBackend(backend);
  const {layer, x, dy} = layerFor(shape, args);
  const values = tf.tidy(() => [layer.apply(x, {training: true}) as tf.Tensor, ...trainingStep(layer, x, dy), ...layer.weights.map(w => w.read())]
      .map(t => Array.from(t.dataSync())));
  tf.dispose([x, dy]);
  layer.dispose();
  return values;
}

// A backend whose training kernel does the moving update but not renorm or ghost batches (as the
// webgl and webgpu kernels): the step composes those around it. Measured: below 1e-6 relative.
describe('a backend whose training kernel declares the moving update only', () => {
  afterAll(() => removeCpuCopies('bn-moving-only'));

  test.each([
    ['plain', {}],
    ['renorm', {renorm: true, renormClipping: {rmax: 1.5, dmax: 0.5}}],
    ['ghost batches', {virtualBatchSize: 4}],
    ['renorm and ghost batches', {renorm: true, virtualBatchSize: 4, renormClipping: {rmax: 1.5, dmax: 0.5}}],
  ] as Array<[string, BatchNormArgs]>)('%s: y, gradients and weights after the step as on cpu (1e-5)', async (_, args) => {
    const want = await stepValues('cpu', [8, 3, 2, 4], args);
    const got = await stepValues(limitedBackend('bn-moving-only', ['flexibleParams', 'movingUpdate'], ['flexibleParams']), [8, 3, 2, 4], args);
    got.forEach((g, i) => expect(maxRelativeError(g, want[i])).toBeLessThan(1e-5));
  });

  test('plain: the forward with its moving update is the one kernel', async () => {
    await tf.setBackend(limitedBackend('bn-moving-only', ['flexibleParams', 'movingUpdate'], ['flexibleParams']));
    const {layer, x, dy} = layerFor([8, 3, 2, 4], {});
    expect(await kernelsOf(() => layer.apply(x, {training: true}) as tf.Tensor)).toEqual([BatchNormTrain]);
    tf.dispose([x, dy]);
    layer.dispose();
  });
});

describe.each(['none', 'base', 'flexible'] as const)('a backend whose training kernel declares every feature, gradient kernel: %s', gradient => {
  afterAll(() => removeCpuCopies(`bn-grad-${gradient}`));

  test.each([
    ['renorm and ghost batches', [8, 3, 2, 4], {renorm: true, virtualBatchSize: 4, renormClipping: {rmax: 1.5, dmax: 0.5}}],
    ['ghost batches alone', [8, 3, 2, 4], {virtualBatchSize: 4}],
    ['renorm alone', [8, 3, 2, 4], {renorm: true, renormClipping: {rmax: 1.5, dmax: 0.5}}],
    ['renorm without a scale', [8, 3, 2, 4], {renorm: true, scale: false, renormClipping: {rmax: 1.5, dmax: 0.5}}],
    ['list axes without a scale (parameters shaped [2, 4])', [8, 3, 2, 4], {axis: [2, 3], scale: false}],
  ] as Array<[string, number[], BatchNormArgs]>)('%s: the gradient where the kernel lacks a feature the forward used is the closed form in tf ops, equal to the full gradient kernel\'s (1e-5)', async (_, shape, args) => {
    // Measured: below 1e-7 relative (dx 4e-8, dgamma 9e-8, dbeta 0); the tf-ops statistics are float32, the kernels' float64.
    // A kernel given what it lacks would drop r and d, or take the ghost batches' variances as one batch's.
    const grads = async (backend: string) => {
      await tf.setBackend(backend);
      const {layer, x, dy} = layerFor(shape, args);
      const values = tf.tidy(() => trainingStep(layer, x, dy).map(g => Array.from(g.dataSync())));
      tf.dispose([x, dy]);
      layer.dispose();
      return values;
    };
    const want = await grads('cpu');
    const got = await grads(backendWithGradient(gradient));
    expect(implementationFor('trainGrad', 4, [3], {uses: ['renorm', 'ghosts']})).toBe('composite');
    got.forEach((g, i) => expect(maxRelativeError(g, want[i])).toBeLessThan(1e-5));
  });
});
