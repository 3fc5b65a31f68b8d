/**
 * What a Node program does with the installed package, checked against plain float64 numbers.
 * Shared by cjs.cjs (require) and esm.mjs (import): each passes the modules it loaded its own way.
 * Prints one JSON line of measurements; throws (exit code 1) on the first check that fails.
 *
 * Tolerances: forward values are O(1) float32 results, measured within 1.1e-7 of float64 here (tfjs 4.22, cpu);
 * 1e-5 leaves a margin of 90x and still fails on any formula error (those are O(0.1) or more).
 */
import assert from 'node:assert/strict';
import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

const FORWARD_TOLERANCE = 1e-5;

/** Per-column mean, biased variance and normalized values of a row-major [rows, cols] array, in float64. */
function reference(x, rows, cols, epsilon) {
  const mean = Array.from({length: cols}, (_, c) => {
    let s = 0;
    for (let r = 0; r < rows; r++) s += x[r * cols + c];
    return s / rows;
  });
  const variance = mean.map((m, c) => {
    let s = 0;
    for (let r = 0; r < rows; r++) s += (x[r * cols + c] - m) ** 2;
    return s / rows;
  });
  const y = x.map((v, i) => (v - mean[i % cols]) / Math.sqrt(variance[i % cols] + epsilon));
  return {mean, variance, y};
}

function maxAbsDifference(a, b) {
  assert.equal(a.length, b.length);
  return Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
}

/**
 * @param tf @tensorflow/tfjs-core (with a backend registered)
 * @param tfl @tensorflow/tfjs-layers
 * @param bn the tfjs-batchnorm main entry
 * @param op the tfjs-batchnorm/op entry
 * @param nodeEntry the tfjs-batchnorm/node entry
 */
export async function runChecks(tf, tfl, bn, op, nodeEntry) {
  await tf.setBackend('cpu');
  const results = {tfjsCore: tf.version_core, tfjsLayers: tfl.version_layers};

  // Every entry is the same module instance in Node ('.' resolves to ./node there).
  assert.equal(op.batchNormTrain, bn.batchNormTrain, 'tfjs-batchnorm/op and tfjs-batchnorm export the same op');
  assert.equal(nodeEntry.BatchNorm, bn.BatchNorm, "tfjs-batchnorm/node and tfjs-batchnorm (node condition) are one module");
  assert.equal(typeof bn.fileHandler, 'function', "in Node, 'tfjs-batchnorm' exports fileHandler");
  for (const kernel of [bn.BATCH_NORM_TRAIN_KERNEL, bn.BATCH_NORM_TRAIN_GRAD_KERNEL, bn.BATCH_NORM_INFER_KERNEL]) {
    assert.ok(tf.getKernel(kernel, 'cpu') != null, `kernel ${kernel} is registered on cpu`);
  }

  // The op against float64, through the fused cpu kernel.
  const rows = 5, cols = 3, epsilon = 1e-3;
  const xValues = Float32Array.from({length: rows * cols}, (_, i) => Math.sin(i * 1.7) * 2 + (i % cols));
  const want = reference(Array.from(xValues), rows, cols, epsilon);
  const before = tf.memory().numTensors;
  const x = tf.tensor2d(xValues, [rows, cols]);
  const {y, mean, variance} = bn.batchNormTrain(x, null, null, {epsilon});
  results.opMaxError = Math.max(maxAbsDifference(await y.data(), want.y), maxAbsDifference(await mean.data(), want.mean),
      maxAbsDifference(await variance.data(), want.variance));
  assert.ok(results.opMaxError <= FORWARD_TOLERANCE, `batchNormTrain within ${FORWARD_TOLERANCE} of float64 (got ${results.opMaxError})`);
  // d(sum(y))/dx is exactly 0 for batch normalization (the mean is subtracted): the gradient ran.
  const dx = tf.grad(input => tf.sum(bn.batchNormTrain(input, null, null, {epsilon}).y))(x);
  results.gradMaxAbs = Math.max(...Array.from(await dx.data(), Math.abs));
  assert.ok(results.gradMaxAbs <= 1e-5, `d(sum y)/dx is 0 within 1e-5 (got ${results.gradMaxAbs})`);
  tf.dispose([x, y, mean, variance, dx]);
  assert.equal(tf.memory().numTensors, before, 'the op leaves no tensor behind');

  // The layer in a model: fit, then a file:// round trip.
  const xs = tf.tensor2d(Float32Array.from({length: 64 * 4}, (_, i) => Math.cos(i * 0.37) * 3 + 5), [64, 4]);
  const ys = tf.tensor2d(Float32Array.from({length: 64}, (_, i) => (Math.cos(i * 4 * 0.37) > 0 ? 1 : 0)), [64, 1]);
  const model = tfl.sequential({layers: [
    tfl.layers.dense({inputShape: [4], units: 8, kernelInitializer: tfl.initializers.glorotUniform({seed: 1})}),
    bn.batchNormalization({momentum: 0.9}),
    tfl.layers.activation({activation: 'relu'}),
    tfl.layers.dense({units: 1, activation: 'sigmoid', kernelInitializer: tfl.initializers.glorotUniform({seed: 2})}),
  ]});
  model.compile({optimizer: tf.train.adam(0.05), loss: 'binaryCrossentropy'});
  const history = await model.fit(xs, ys, {epochs: 30, batchSize: 16, shuffle: false, verbose: 0});
  const losses = history.history.loss;
  results.lossFirst = losses[0];
  results.lossLast = losses[losses.length - 1];
  assert.ok(results.lossLast < 0.7 * results.lossFirst, `the loss fell by 30% or more (${results.lossFirst} -> ${results.lossLast})`);

  const dir = mkdtempSync(join(tmpdir(), 'tfjs-batchnorm-consumer-'));
  try {
    await model.save(`file://${dir}`);
    const loaded = await tfl.loadLayersModel(`file://${join(dir, 'model.json')}`);
    results.loadedClasses = loaded.layers.map(l => l.getClassName());
    assert.deepEqual(results.loadedClasses, ['Dense', 'TfjsBatchNorm>BatchNorm', 'Activation', 'Dense']);
    const [p1, p2] = [model, loaded].map(m => tf.tidy(() => m.predict(xs).dataSync()));
    results.roundTripMaxDifference = maxAbsDifference(p1, p2);
    assert.equal(results.roundTripMaxDifference, 0, 'predictions after the file:// round trip are identical');
    loaded.dispose();
  } finally {
    rmSync(dir, {recursive: true, force: true});
  }
  model.dispose();
  tf.dispose([xs, ys]);
  console.log(JSON.stringify(results));
  return results;
}
