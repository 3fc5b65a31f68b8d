/**
 * The dispatch table (src/ops/dispatch.ts): each row decides what it says, and on cpu and wasm the
 * kernels that actually run (tf.profile) are the ones the table names, for every mode, with and
 * without TFJS_BATCHNORM_FORCE_COMPOSITE, for adjacent and non-adjacent axes and ranks 4 and 5. A
 * backend that registers kernels under this package's names is picked up by that registration alone.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization, batchNormInfer, batchNormTrain} from '../src';
import {BatchNormInfer, BatchNormTrain, BatchNormTrainGrad} from '../src/kernel_names';
import {BASE_INTERFACE_FLAG, decide, DISPATCH_TABLE, FORCE_COMPOSITE_FLAG, implementationFor, Implementation, kernelFeatures, Mode, Situation} from '../src/ops/dispatch';
import {normalizeAxes} from '../src/ops/channel_axes';
import {cpuCopy, describeEachBackend, removeCpuCopies} from './support/backends';

const ordinary: Situation = {mode: 'train', fusedKernel: true, features: [], uses: [], adjacentAxes: true, rank: 4, backendKernelBroadcasts: true, masked: false};

// First in the file (and in the mutation suite), before any test sets them: their defaults.
test('the test flags are off by default', () => {
  expect(tf.env().getBool(FORCE_COMPOSITE_FLAG)).toBe(false);
  expect(tf.env().getBool(BASE_INTERFACE_FLAG)).toBe(false);
});

describe('the table', () => {
  test.each([
    [{mode: 'masked', fusedKernel: true}, 'composite'],
    [{mode: 'train'}, 'fused'],
    [{mode: 'trainGrad'}, 'fused'],
    [{mode: 'infer'}, 'fused'],
    [{mode: 'train', adjacentAxes: false}, 'composite'],
    [{mode: 'infer', adjacentAxes: false}, 'backend'],
    [{mode: 'infer', adjacentAxes: false, backendKernelBroadcasts: false}, 'composite'],
    [{mode: 'train', fusedKernel: false}, 'composite'],
    [{mode: 'trainGrad', fusedKernel: false}, 'composite'],
    [{mode: 'infer', fusedKernel: false}, 'backend'],
    [{mode: 'infer', fusedKernel: false, rank: 5}, 'composite'],
    [{mode: 'infer', fusedKernel: false, rank: 2}, 'backend'],
    [{mode: 'infer', fusedKernel: false, backendKernelBroadcasts: false}, 'composite'],
    [{mode: 'train', fusedKernel: false, rank: 2}, 'composite'],
    // A fused kernel runs only what it declares.
    [{mode: 'trainGrad', uses: ['renorm']}, 'composite'],
    [{mode: 'trainGrad', uses: ['renorm', 'ghosts'], features: ['renorm', 'ghosts']}, 'fused'],
    [{mode: 'train', uses: ['flexibleParams'], features: ['renorm']}, 'composite'],
    // The parts of a training step: in the training kernel when it declares them all, else tf ops around it.
    [{mode: 'movingUpdate', features: ['movingUpdate']}, 'fused'],
    [{mode: 'movingUpdate', features: []}, 'composite'],
    [{mode: 'renorm', features: ['renorm', 'movingUpdate'], uses: ['renorm', 'movingUpdate']}, 'fused'],
    [{mode: 'renorm', features: ['renorm'], uses: ['renorm', 'movingUpdate']}, 'composite'],
    [{mode: 'ghosts', features: ['ghosts'], masked: true}, 'composite'],
    [{mode: 'ghosts', features: ['ghosts'], adjacentAxes: false}, 'composite'],
    [{mode: 'ghosts', features: ['ghosts'], fusedKernel: false}, 'composite'],
    [{mode: 'ghosts', features: ['ghosts']}, 'fused'],
  ] as Array<[Partial<Situation>, Implementation]>)('%j → %s', (change, expected) => {
    expect(decide({...ordinary, ...change})).toBe(expected);
  });

  test('every row says when it applies', () => {
    expect(DISPATCH_TABLE.map(r => r.when)).toEqual([
      'always (no fused masked kernel)',
      'kernel registered for the backend, axes adjacent, composite not forced, the features the call uses declared',
      'rank <= 4 and the backend\'s FusedBatchNorm broadcasts per channel',
      'otherwise',
      'unmasked, training kernel registered, axes adjacent, composite not forced, this feature and every other the step uses declared',
      'otherwise',
    ]);
  });

  test('a mode the table does not know is an error, not a silent choice', () => {
    expect(() => decide({...ordinary, mode: 'ghost' as Mode})).toThrow(/tfjs-batchnorm: no dispatch rule for \{"mode":"ghost"/);
  });
});

/** What each implementation shows in the kernel list. */
function expectKernels(names: string[], implementation: Implementation, ours: string, what: string): void {
  const seen = {ours: names.includes(ours), backend: names.includes('FusedBatchNorm')};
  const want = {ours: implementation === 'fused', backend: implementation === 'backend'};
  expect({what, ...seen}).toEqual({what, ...want});
}

describeEachBackend('the table on a real backend', () => {
  const configs: Array<{shape: number[]; axis: number | number[]}> = [
    {shape: [2, 3, 4, 5], axis: -1}, {shape: [2, 3, 4, 5], axis: 1}, {shape: [2, 3, 4, 5], axis: [1, 3]},
    {shape: [2, 3, 2, 2, 5], axis: -1}, {shape: [2, 3, 2, 2, 5], axis: [2, 3]},
  ];
  for (const forced of [false, true]) {
    test.each(configs)(`forced composite ${forced}: shape $shape axis $axis`, async ({shape, axis}) => {
      const axes = normalizeAxes(axis, shape.length);
      const x = tf.randomNormal(shape);
      const channels = axes.reduce((n, a) => n * shape[a], 1);
      const stats = tf.ones([channels]);
      const mask = tf.ones(shape.slice(0, -1));
      tf.env().set(FORCE_COMPOSITE_FLAG, forced);
      try {
        const expected = (mode: Mode) => implementationFor(mode, shape.length, axes);
        // The table's answers here, spelled out: cpu/wasm have every kernel; forced hides them.
        const adjacent = axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
        const trailing = adjacent && axes[axes.length - 1] === shape.length - 1;
        expect(expected('train')).toBe(!forced && adjacent ? 'fused' : 'composite');
        expect(expected('infer')).toBe(!forced && adjacent ? 'fused' : shape.length <= 4 && trailing ? 'backend' : 'composite');
        expect(expected('masked')).toBe('composite');

        const train = await tf.profile(() => tf.tidy(() => {
          tf.grad((xi: tf.Tensor) => tf.sum(tf.square(batchNormTrain(xi, null, null, {axis}).y)))(x);
        }));
        expectKernels(train.kernelNames, expected('train'), BatchNormTrain, 'training forward');
        expectKernels(train.kernelNames, expected('train'), BatchNormTrainGrad, 'training gradient');
        const infer = await tf.profile(() => tf.tidy(() => {
          tf.grad((xi: tf.Tensor) => tf.sum(tf.square(batchNormInfer(xi, stats, stats, null, null, {axis}))))(x);
        }));
        expectKernels(infer.kernelNames, expected('infer'), BatchNormInfer, 'inference');
        const masked = await tf.profile(() => tf.tidy(() => {
          tf.grad((xi: tf.Tensor) => tf.sum(tf.square(batchNormTrain(xi, null, null, {axis, mask}).y)))(x);
        }));
        expectKernels(masked.kernelNames, 'composite', BatchNormTrain, 'masked');
      } finally {
        tf.env().set(FORCE_COMPOSITE_FLAG, false);
      }
      tf.dispose([x, stats, mask]);
    });
  }
}, ['cpu', 'wasm']);

describe('a backend is picked up by registering kernels under this package\'s names', () => {
  afterAll(() => removeCpuCopies('bn-test', 'bn-base'));

  test('a copy of cpu with the kernels runs them fused; without the gradient kernel, the gradient is the closed form in tf ops', async () => {
    await tf.setBackend(cpuCopy('bn-test'));
    expect(implementationFor('train', 2, [1])).toBe('fused');
    tf.unregisterKernel(BatchNormTrainGrad, 'bn-test');
    expect(implementationFor('train', 2, [1])).toBe('fused');
    expect(implementationFor('trainGrad', 2, [1])).toBe('composite');
    const x = tf.tensor2d([[1, 2], [3, 5], [4, 4]]);
    const {kernelNames, result} = await tf.profile(() => tf.grad((xi: tf.Tensor) => tf.sum(tf.square(batchNormTrain(xi, null, null).y)))(x));
    expect(kernelNames).toContain(BatchNormTrain);
    expect(kernelNames).not.toContain(BatchNormTrainGrad);
    tf.unregisterKernel(BatchNormTrain, 'bn-test');
    expect(implementationFor('train', 2, [1])).toBe('composite');
    tf.dispose([x, result as tf.Tensor]);
  });

  test('kernels registered without features (the base interface) get base inputs; the layer composes the rest around them', async () => {
    // Re-registered as a backend written for the base interface would register them: no `features`.
    const baseKernels = [BatchNormTrain, BatchNormTrainGrad, BatchNormInfer].map(kernelName =>
      ({kernelName, kernelFunc: (tf.getKernel(kernelName, 'cpu') as tf.KernelConfig).kernelFunc}));
    await tf.setBackend(cpuCopy('bn-base', baseKernels));
    expect(kernelFeatures(BatchNormTrain, 'bn-base')).toEqual([]);
    // A feature declared false is not declared.
    const {kernelFunc} = tf.getKernel(BatchNormInfer, 'cpu') as tf.KernelConfig;
    tf.unregisterKernel(BatchNormInfer, 'bn-base');
    tf.registerKernel({kernelName: BatchNormInfer, backendName: 'bn-base', kernelFunc, features: {flexibleParams: true, renorm: false}} as tf.KernelConfig);
    expect(kernelFeatures(BatchNormInfer, 'bn-base')).toEqual(['flexibleParams']);
    expect(kernelFeatures(BatchNormTrain, 'cpu')).toEqual(['flexibleParams', 'movingUpdate', 'renorm', 'ghosts']);
    for (const mode of ['movingUpdate', 'renorm', 'ghosts'] as const) expect(implementationFor(mode, 2, [1])).toBe('composite');
    const layer = batchNormalization({scale: false});
    const x = tf.tensor2d([[1, 2], [3, 5], [4, 4], [0, 1]]);
    tf.dispose(layer.apply(x) as tf.Tensor);
    const inputs: Array<Record<string, number[]>> = [];
    const {kernels} = await tf.profile(() => tf.dispose(layer.apply(x, {training: true}) as tf.Tensor));
    for (const k of kernels.filter(k => k.name === BatchNormTrain)) inputs.push({shapes: k.inputShapes.map(s => (s as number[]).length)});
    // x, gamma (filled: the base interface has no absent gamma), beta: no moving statistics as inputs.
    expect(inputs).toEqual([{shapes: [2, 1, 1]}]);
    expect(kernels.map(k => k.name)).toContain('Multiply');
    layer.dispose();
    x.dispose();
  });
});
