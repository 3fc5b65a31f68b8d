/**
 * `npm start`: the same small convnet trained on MNIST digits three ways — no normalization, the
 * stock tf.layers.batchNormalization, and this package's batchNormalization — at a learning rate
 * high enough for the batch-normalization paper's claim to show: it converges faster and tolerates
 * higher learning rates (at the default rate of 1 the network without it learns nothing; at
 * `--lr 0.1` it learns, more slowly). Prints a comparison table, saves our model with file://,
 * loads it back and checks the predictions are bit-identical, and writes the training curves as an
 * SVG chart next to the model.
 *
 *   npm start -- [--backend cpu|wasm|tensorflow] [--epochs N] [--out DIR] [--lr RATE]
 */
import * as tf from '@tensorflow/tfjs';
import {mkdir, writeFile} from 'fs/promises';
import {resolve} from 'path';
import {parseArgs} from 'util';
import '../src/node'; // the Node entry: it registers the file:// handler used below
import {BackendName, parseBackend, selectBackend} from './backend';
import {lineChartSvg, Series} from './chart';
import {disposeSplit, loadDigits, permutation, random, Split} from './mnist_data';
import {buildModel, Normalization, SEED} from './mnist_model';
import {finalAccuracy, printTable, RunCurves, trainRun} from './training';

// Ours is dashed: it is drawn last and would otherwise hide the stock layer's nearly equal curve.
const RUNS: Array<{norm: Normalization, label: string, color: string, dashed: boolean}> = [
  {norm: 'none', label: 'no normalization', color: '#d62728', dashed: false},
  {norm: 'stock', label: 'tf.layers.batchNormalization', color: '#1f77b4', dashed: false},
  {norm: 'ours', label: 'tfjs-batchnorm', color: '#2ca02c', dashed: true},
];

// Sized so that the three runs together take a few minutes on two cores with the wasm backend.
const TRAIN_SIZE = 4000;
const TEST_SIZE = 1000;
const BATCH_SIZE = 64;

interface Options {
  backend?: BackendName;
  epochs: number;
  out: string;
  learningRate: number;
}

function parseOptions(): Options {
  const {values} = parseArgs({options: {
    backend: {type: 'string'},
    epochs: {type: 'string', default: '5'},
    out: {type: 'string', default: 'models/mnist-bn'},
    lr: {type: 'string', default: '1'},
  }});
  const backend = parseBackend(values.backend);
  const epochs = Number(values.epochs);
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`--epochs is '${values.epochs}', expected a positive integer`);
  const learningRate = Number(values.lr);
  if (!(learningRate > 0)) throw new Error(`--lr is '${values.lr}', expected a positive number`);
  return {backend, epochs, out: resolve(values.out as string), learningRate};
}

interface RunResult extends RunCurves {
  model: tf.Sequential;
}

async function train(run: typeof RUNS[number], data: {train: Split, test: Split}, options: Options): Promise<RunResult> {
  const model = buildModel(run.norm, options.learningRate);
  const next = random(SEED + 1);
  const curves = await trainRun(model, {label: run.label, batchSize: BATCH_SIZE, epochs: options.epochs,
    order: () => permutation(TRAIN_SIZE, next)}, data);
  return {model, ...curves};
}

function printResults(results: Map<Normalization, RunResult>): void {
  printTable(['model', 'final loss', 'test accuracy', 's / epoch'], RUNS.map(run => {
    const r = results.get(run.norm) as RunResult;
    return [run.label, r.finalLoss.toFixed(4), finalAccuracy(r), r.secondsPerEpoch.toFixed(2)];
  }));
}
/** Saves with file://, loads back and compares the predictions on the test images bit for bit. */
async function saveAndReload(model: tf.LayersModel, test: Split, out: string): Promise<boolean> {
  await model.save(`file://${out}`);
  const reloaded = await tf.loadLayersModel(`file://${out}/model.json`);
  const [before, after] = [model, reloaded].map(m => tf.tidy(() => (m.predict(test.xs) as tf.Tensor).dataSync() as Float32Array));
  reloaded.dispose();
  // Bitwise: compare the raw bytes, so even -0 vs 0 or a NaN payload would count as a difference.
  return Buffer.from(before.buffer, before.byteOffset, before.byteLength)
    .equals(Buffer.from(after.buffer, after.byteOffset, after.byteLength));
}

function chartSvg(results: Map<Normalization, RunResult>, options: Options, backend: string): string {
  const series = (pick: (r: RunResult) => Array<[number, number]>): Series[] =>
    RUNS.map(run => ({name: run.label, color: run.color, dashed: run.dashed, points: pick(results.get(run.norm) as RunResult)}));
  const setting = `SGD lr ${options.learningRate}, batch ${BATCH_SIZE}, ${TRAIN_SIZE} images, ${backend}`;
  return lineChartSvg([
    // Above log(10) ≈ 2.3 (chance) nothing is learned: clip there so a diverging run does not flatten the rest.
    {title: `Training loss per batch (${setting})`, xLabel: 'epoch', yLabel: 'cross-entropy', series: series(r => r.batchLoss), xMin: 0, yMin: 0, yMax: 2.5},
    {title: `Test accuracy (${TEST_SIZE} held-out images)`, xLabel: 'epoch', yLabel: 'accuracy', series: series(r => r.testAccuracy), yMin: 0, yMax: 1},
  ]);
}

async function main(): Promise<void> {
  const options = parseOptions();
  const backend = await selectBackend(options.backend);
  console.log(`backend: ${backend}; ${TRAIN_SIZE} training and ${TEST_SIZE} test digits; ${options.epochs} epoch${options.epochs === 1 ? '' : 's'} of SGD, ` +
    `learning rate ${options.learningRate}, batch ${BATCH_SIZE}\n`);
  const data = loadDigits(TRAIN_SIZE, TEST_SIZE, SEED);
  const results = new Map<Normalization, RunResult>();
  for (const run of RUNS) results.set(run.norm, await train(run, data, options));
  printResults(results);

  await mkdir(options.out, {recursive: true});
  const ours = results.get('ours') as RunResult;
  const identical = await saveAndReload(ours.model, data.test, options.out);
  console.log(`\nmodel (tfjs-batchnorm): saved to ${options.out}/model.json, loaded back: ` +
    `predictions on the ${TEST_SIZE} test images ${identical ? 'are bitwise identical' : 'DIFFER'}`);
  const chartPath = `${options.out}/training-curves.svg`;
  await writeFile(chartPath, chartSvg(results, options, backend));
  console.log(`chart: ${chartPath}`);

  for (const r of results.values()) r.model.dispose();
  disposeSplit(data.train);
  disposeSplit(data.test);
  if (!identical) process.exitCode = 1;
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
