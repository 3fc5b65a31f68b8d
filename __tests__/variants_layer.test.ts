/**
 * The variants as layers: weights (names, order, shapes, initial values), inference unchanged,
 * frozen layers, the renormClipping schedule (its values at each step, and its step counter through
 * model.save / load), training inside fit, and memory. Numeric comparisons use the float64
 * reference (support/reference_variants.ts) at 1e-4 in |got − want|/(1 + |want|), like variants.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import {BatchNorm, batchNormalization, batchNormTrain} from '../src';
import {boundValueAt, RenormClipping} from '../src/layers/renorm_clipping';
import {describeEachBackend} from './support/backends';
import {expectClose} from './support/golden';
import {refRenormUpdate, refVariantTrain, RefRenormState} from './support/reference_variants';
import {saveToMemory} from './support/round_trip';
import {EPSILON, MOMENTUM, setUpVariant, VariantCase, weightsByName} from './support/variant_cases';

const TOLERANCE = 1e-4;

/** Builds a layer as apply does (an inference-mode call), so that it can be disposed later. */
function built<L extends tf.layers.Layer>(layer: L, shape: number[]): L {
  tf.tidy(() => { layer.apply(tf.zeros(shape)); });
  return layer;
}

describeEachBackend('Batch Renormalization and ghost batches as layers', () => {
  test('weights: the usual four, then moving_stddev, renorm_mean, renorm_stddev (and renorm_step with a schedule); √ initializers', () => {
    const names = (layer: tf.layers.Layer) => layer.weights.map(w => `${w.originalName.split('/').pop()}${w.trainable ? '' : ' (frozen)'} [${w.shape}]`);
    const renorm = batchNormalization({renorm: true, movingVarianceInitializer: tf.initializers.constant({value: 4}),
      movingMeanInitializer: tf.initializers.constant({value: 0.5})});
    built(renorm, [2, 3]);
    expect(names(renorm)).toEqual(['gamma [3]', 'beta [3]', 'moving_mean (frozen) [3]', 'moving_variance (frozen) [3]',
      'moving_stddev (frozen) [3]', 'renorm_mean (frozen) [3]', 'renorm_stddev (frozen) [3]']);
    const w = weightsByName(renorm);
    expect(Array.from(w.moving_stddev)).toEqual([2, 2, 2]);
    expect(Array.from(w.renorm_stddev)).toEqual([2, 2, 2]);
    expect(Array.from(w.renorm_mean)).toEqual([0.5, 0.5, 0.5]);

    const scheduled = batchNormalization({renorm: true, scale: false, renormClipping: {rmax: {from: 1, to: 3, endStep: 10}}});
    built(scheduled, [2, 3]);
    expect(names(scheduled).slice(-2)).toEqual(['renorm_stddev (frozen) [3]', 'renorm_step (frozen) []']);
    expect(weightsByName(scheduled).renorm_step[0]).toBe(0);

    // Ghost batches: Keras 2's weight shape (rank + 1 dims: a 1 for the ghost axis, the channel dims kept).
    const ghost = batchNormalization({axis: 1, virtualBatchSize: 2});
    built(ghost, [2, 3, 4, 5]);
    expect(ghost.weights.map(v => v.shape)).toEqual(Array(4).fill([1, 1, 3, 1, 1]));
    for (const layer of [renorm, scheduled, ghost]) layer.dispose();
  });

  test('inference is unchanged: the moving mean and variance, as plain batch normalization', () => {
    for (const c of [
      {name: 'renorm', shape: [4, 3, 5], axis: -1, renorm: {clipping: {rmax: 2}, renormMomentum: 0.9}},
      {name: 'ghost', shape: [4, 3, 5], axis: -1, virtualBatchSize: 2},
    ] as VariantCase[]) {
      const setup = setUpVariant(c);
      const plain = batchNormalization({axis: c.axis, epsilon: EPSILON, momentum: MOMENTUM});
      built(plain, c.shape);
      plain.setWeights(setup.layer.getWeights().slice(0, 4).map(t => t.reshape([5])));
      const x = tf.randomNormal([3, 3, 5], 2, 1, 'float32', 3); // a batch size the ghost batches do not divide
      const [a, b] = [setup.layer.apply(x) as tf.Tensor, plain.apply(x) as tf.Tensor];
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      tf.dispose([a, b, x]);
      plain.dispose();
      setup.layer.dispose();
      setup.dispose();
    }
  });

  test('a frozen layer (trainable = false) runs in inference mode in training and changes no weight, the step counter included', () => {
    const layer = batchNormalization({renorm: true, renormClipping: {rmax: {from: 1, to: 2, endStep: 4}}, virtualBatchSize: 2});
    const x = tf.randomNormal([4, 5], 2, 3, 'float32', 8);
    tf.dispose(layer.apply(x, {training: true}) as tf.Tensor); // a step, so that every weight has a value of its own
    layer.trainable = false;
    const before = layer.getWeights().map(t => Array.from(t.dataSync()));
    const [y, inference] = [layer.apply(x, {training: true}) as tf.Tensor, layer.apply(x) as tf.Tensor];
    expect(Array.from(y.dataSync())).toEqual(Array.from(inference.dataSync()));
    expect(layer.getWeights().map(t => Array.from(t.dataSync()))).toEqual(before);
    expect(before[before.length - 1]).toEqual([1]);
    tf.dispose([x, y, inference]);
    layer.dispose();
  });

  test('with inferenceStatistics \'batch\', inference normalizes the whole batch plainly and changes no weight', () => {
    const layer = batchNormalization({renorm: true, renormClipping: {rmax: {from: 1, to: 2, endStep: 4}}, virtualBatchSize: 2,
      inferenceStatistics: 'batch'});
    const x = tf.randomNormal([4, 5], 2, 3, 'float32', 8);
    tf.dispose(layer.apply(x, {training: true}) as tf.Tensor); // a step, so that every weight has a value of its own
    const before = layer.getWeights().map(t => Array.from(t.dataSync()));
    const [gamma, beta] = layer.getWeights().slice(0, 2).map(t => t.reshape([5]));
    const [y, want] = [layer.apply(x) as tf.Tensor, batchNormTrain(x, gamma, beta).y];
    expect(Array.from(y.dataSync())).toEqual(Array.from(want.dataSync()));
    expect(layer.getWeights().map(t => Array.from(t.dataSync()))).toEqual(before);
    tf.dispose([x, y, want, gamma, beta]);
    layer.dispose();
  });

  test('the clipping schedule: each training step uses the ramps at the step counter, which then advances', () => {
    const clipping: RenormClipping = {rmax: {from: 1, to: 1.5, startStep: 1, endStep: 3}, rmin: {from: 1, to: 0.8, endStep: 2}, dmax: {from: 0, to: 0.2, endStep: 4}};
    const c: VariantCase = {name: 'schedule', shape: [6, 4], axis: -1, renorm: {clipping: {}, renormMomentum: 0.8}};
    const setup = setUpVariant(c);
    // The same state in a layer with the schedule (setUpVariant's layer has no step counter).
    const layer = batchNormalization({epsilon: EPSILON, momentum: MOMENTUM, renorm: true, renormMomentum: 0.8, renormClipping: clipping});
    built(layer, c.shape);
    layer.setWeights([...setup.layer.getWeights(), tf.scalar(0)]);
    let state = setup.state as RefRenormState;
    for (let step = 0; step < 6; step++) {
      const at = (key: 'rmax' | 'rmin' | 'dmax') => boundValueAt(clipping[key], step);
      const x = tf.tidy(() => setup.x.mul(1 + 0.3 * step).add(step - 2));
      const problem = {...setup.problem, x: Float64Array.from(x.dataSync())};
      const want = refVariantTrain(problem, {renorm: {state, clipping: {rmax: at('rmax'), rmin: at('rmin'), dmax: at('dmax')}}});
      const y = layer.apply(x, {training: true}) as tf.Tensor;
      expectClose(y.dataSync(), want.y, TOLERANCE, `step ${step} y`);
      expect(weightsByName(layer).renorm_step[0]).toBe(step + 1);
      state = refRenormUpdate(state, want.mean, want.variance, MOMENTUM, 0.8, EPSILON);
      tf.dispose([x, y]);
    }
    layer.dispose();
    setup.layer.dispose();
    setup.dispose();
  });

  test('the step counter is saved and loaded with the model: training resumes exactly where it stopped', async () => {
    const model = () => tf.sequential({layers: [
      tf.layers.dense({name: 'dense', inputShape: [3], units: 4, kernelInitializer: tf.initializers.glorotUniform({seed: 1})}),
      batchNormalization({name: 'bn', renorm: true, renormClipping: {rmax: {from: 1, to: 3, endStep: 20}, dmax: {from: 0, to: 2, startStep: 2, endStep: 12}}}),
      tf.layers.dense({name: 'out', units: 1, kernelInitializer: tf.initializers.glorotUniform({seed: 2})}),
    ]});
    const compile = (m: tf.LayersModel) => m.compile({optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError'});
    const x = tf.randomNormal([8, 3], 1, 2, 'float32', 4);
    const y = tf.randomNormal([8, 1], 0, 1, 'float32', 5);
    const original = model();
    compile(original);
    await original.fit(x, y, {epochs: 3, batchSize: 4, shuffle: false, verbose: 0});
    expect(weightsByName(original.getLayer('bn')).renorm_step[0]).toBe(6);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(await saveToMemory(original)));
    expect(loaded.getLayer('bn')).toBeInstanceOf(BatchNorm);
    expect(weightsByName(loaded.getLayer('bn')).renorm_step[0]).toBe(6);
    compile(loaded);
    for (const m of [original, loaded]) await m.fit(x, y, {epochs: 2, batchSize: 4, shuffle: false, verbose: 0});
    expect(loaded.getWeights().map(w => Array.from(w.dataSync()))).toEqual(original.getWeights().map(w => Array.from(w.dataSync())));
    expect(weightsByName(loaded.getLayer('bn')).renorm_step[0]).toBe(10);
    tf.dispose([x, y]);
    original.dispose();
    loaded.dispose();
  });

  test('setWeights names renorm\'s weights when a count or shape does not fit', () => {
    const bn = batchNormalization({name: 'bn_rw', renorm: true, renormClipping: {dmax: {from: 0, to: 1, endStep: 5}}});
    built(bn, [2, 2]);
    const good = bn.getWeights();
    expect(() => bn.setWeights(good.slice(0, 7))).toThrow(
        /argument 'weights' has 7 tensors, expected 8: \[gamma, beta, moving_mean, moving_variance, moving_stddev, renorm_mean, renorm_stddev, renorm_step\]/);
    const wrongStep = [...good.slice(0, 7), tf.tensor1d([0])];
    expect(() => bn.setWeights(wrongStep)).toThrow(/\[7\] \(renorm_step\) has shape \[1\], expected shape \[\]/);
    tf.dispose(wrongStep[7]);
    bn.dispose();
  });

  test('trains inside fit (renorm with a schedule, ghost batches, both) with a stable tensor count', async () => {
    for (const args of [{renorm: true, renormClipping: {rmax: {from: 1, to: 3, endStep: 50}}}, {virtualBatchSize: 2}, {renorm: true, virtualBatchSize: 4}]) {
      const model = tf.sequential({layers: [
        tf.layers.dense({units: 4, inputShape: [3], kernelInitializer: tf.initializers.glorotUniform({seed: 21})}),
        batchNormalization(args),
        tf.layers.dense({units: 1, kernelInitializer: tf.initializers.glorotUniform({seed: 22})})]});
      model.compile({optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError'});
      const x = tf.randomNormal([16, 3], 0, 1, 'float32', 6);
      const y = tf.tidy(() => x.sum(1, true).mul(0.5));
      await model.fit(x, y, {epochs: 1, batchSize: 8, verbose: 0});
      const afterWarmUp = tf.memory().numTensors;
      const history = await model.fit(x, y, {epochs: 30, batchSize: 8, shuffle: false, verbose: 0});
      expect(tf.memory().numTensors).toBe(afterWarmUp);
      const losses = history.history.loss as number[];
      expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
      tf.dispose([x, y]);
      model.dispose();
    }
  });
});
