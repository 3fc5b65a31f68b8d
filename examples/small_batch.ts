/**
 * `npm run example:small-batch`: batch normalization's known weakness — small or unrepresentative
 * batches — and the two fixes this package adds, on the MNIST convnet of `npm start`:
 *
 *  (a) small batches: batches of 4, with plain batch normalization, with Batch Renormalization
 *      (with the paper's relaxation schedule), and ghost batches of 4 inside batches of 64;
 *  (b) non-i.i.d. batches: every batch of 32 holds 16 digits of each of two classes, with plain
 *      batch normalization, Batch Renormalization and ghost batches of 8;
 *
 * and plain batch normalization at batch 64 (i.i.d.) as the reference. Test accuracy is measured in
 * inference mode, with the moving statistics — where plain batch normalization fails when the batch
 * statistics it trained with do not match them. Prints a table and writes an SVG chart.
 *
 * Fair settings, the same for every run: the same images, epochs, initial weights and test set; SGD
 * with the learning rate proportional to the batch size (the same step per image: 0.5 at batch 64);
 * moving averages over the same number of images (momentum 1 − batch/640: 0.9 at batch 64, as in
 * `npm start`), for the moving statistics and renorm's alike.
 *
 *   npm run example:small-batch -- [--backend cpu|wasm|tensorflow] [--epochs N] [--out DIR]
 */
import * as tf from '@tensorflow/tfjs';
import {mkdir, writeFile} from 'fs/promises';
import {resolve} from 'path';
import {parseArgs} from 'util';
import {batchNormalization, BatchNormArgs} from '../src';
import {BackendName, parseBackend, selectBackend} from './backend';
import {lineChartSvg, Series} from './chart';
import {disposeSplit, loadDigits, permutation, random, Split} from './mnist_data';
import {convnet, SEED} from './mnist_model';
import {finalAccuracy, printTable, RunCurves, trainRun} from './training';

const TRAIN_SIZE = 2000;
const TEST_SIZE = 1000;
/** SGD learning rate per image: 0.5 at batch 64. */
const LEARNING_RATE_PER_IMAGE = 0.5 / 64;
/** Moving averages span about this many images, whatever the batch size. */
const AVERAGE_OVER_IMAGES = 640;

type Experiment = 'small' | 'non-iid' | 'reference';

/** One contender: how batches are formed and which normalization it uses. */
interface Run {
  id: string;
  label: string;
  experiment: Experiment;
  batchSize: number;
  /** Each batch from two classes only (half from each). */
  twoClassBatches: boolean;
  /** Arguments of every normalization layer, beyond the momentum (set from the batch size). */
  args: (steps: number) => BatchNormArgs;
  color: string;
  dashed?: boolean;
}

/**
 * The paper's relaxation schedule, scaled to this run's `steps` training steps (the paper's Inception
 * run: plain batch normalization for 5k steps, then rmax 1 → 3 by 40k and dmax 0 → 5 by 25k).
 */
function relaxedRenorm(steps: number): BatchNormArgs {
  const start = Math.round(0.05 * steps);
  return {renorm: true, renormClipping: {
    rmax: {from: 1, to: 3, startStep: start, endStep: Math.round(0.5 * steps)},
    rmin: {from: 1, to: 1 / 3, startStep: start, endStep: Math.round(0.5 * steps)},
    dmax: {from: 0, to: 5, startStep: start, endStep: Math.round(0.3 * steps)},
  }};
}

const RUNS: Run[] = [
  {id: 'bn4', label: 'BN, batch 4', experiment: 'small', batchSize: 4, twoClassBatches: false, args: () => ({}), color: '#d62728'},
  {id: 'renorm4', label: 'renorm, batch 4', experiment: 'small', batchSize: 4, twoClassBatches: false, args: relaxedRenorm, color: '#2ca02c'},
  {id: 'ghost4', label: 'ghost batches of 4', experiment: 'small', batchSize: 64, twoClassBatches: false,
    args: () => ({virtualBatchSize: 4}), color: '#9467bd'},
  {id: 'bn2c', label: 'BN, 2-class batches', experiment: 'non-iid', batchSize: 32, twoClassBatches: true, args: () => ({}), color: '#d62728'},
  {id: 'renorm2c', label: 'renorm, 2-class batches', experiment: 'non-iid', batchSize: 32, twoClassBatches: true, args: relaxedRenorm, color: '#2ca02c'},
  {id: 'ghost2c', label: 'ghost batches of 8', experiment: 'non-iid', batchSize: 32, twoClassBatches: true,
    args: () => ({virtualBatchSize: 8}), color: '#9467bd'},
  {id: 'bn64', label: 'BN, batch 64 (reference)', experiment: 'reference', batchSize: 64, twoClassBatches: false, args: () => ({}),
    color: '#1f77b4', dashed: true},
];

const LABEL_WIDTH = Math.max(...RUNS.map(r => r.label.length));

interface Options {
  backend?: BackendName;
  epochs: number;
  out: string;
}

function parseOptions(): Options {
  const {values} = parseArgs({options: {
    backend: {type: 'string'},
    epochs: {type: 'string', default: '3'},
    out: {type: 'string', default: 'models/small-batch'},
  }});
  const epochs = Number(values.epochs);
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`--epochs is '${values.epochs}', expected a positive integer`);
  return {backend: parseBackend(values.backend), epochs, out: resolve(values.out as string)};
}

/**
 * An epoch's order of the training images where every run of `batchSize` holds batchSize / 2 digits
 * of each of two classes: each class's images are shuffled and cut into half-batches, and the
 * half-batches are paired across classes at random (any left over are paired as they come).
 */
function twoClassOrder(labels: number[], batchSize: number, next: () => number): number[] {
  const half = batchSize / 2;
  const halves: number[][][] = Array.from({length: 10}, (_, digit) => {
    const members = labels.flatMap((l, i) => (l === digit ? [i] : []));
    const shuffled = permutation(members.length, next).map(i => members[i]);
    return Array.from({length: Math.floor(shuffled.length / half)}, (_, h) => shuffled.slice(h * half, (h + 1) * half));
  });
  const order: number[] = [];
  for (;;) {
    const available = halves.map((h, digit) => (h.length > 0 ? digit : -1)).filter(d => d >= 0);
    if (available.length < 2) break;
    const first = available.splice(Math.floor(next() * available.length), 1)[0];
    const second = available[Math.floor(next() * available.length)];
    order.push(...(halves[first].pop() as number[]), ...(halves[second].pop() as number[]));
  }
  return order;
}

async function train(run: Run, data: {train: Split, test: Split}, epochs: number): Promise<RunCurves> {
  const stepsPerEpoch = Math.floor(TRAIN_SIZE / run.batchSize);
  const args = {momentum: 1 - run.batchSize / AVERAGE_OVER_IMAGES, ...run.args(epochs * stepsPerEpoch)};
  if (args.renorm) args.renormMomentum = args.momentum;
  const model = convnet(() => batchNormalization(args));
  model.compile({optimizer: tf.train.sgd(LEARNING_RATE_PER_IMAGE * run.batchSize), loss: 'categoricalCrossentropy'});
  const next = random(SEED + 1);
  const order = () => (run.twoClassBatches ? twoClassOrder(data.train.labels, run.batchSize, next) :
    permutation(TRAIN_SIZE, next).slice(0, stepsPerEpoch * run.batchSize));
  try {
    return await trainRun(model, {label: run.label, batchSize: run.batchSize, epochs, order}, data, LABEL_WIDTH);
  } finally {
    model.dispose();
  }
}

function chartSvg(results: Map<string, RunCurves>, epochs: number, backend: string): string {
  const panel = (experiment: Experiment, title: string) => ({
    title, xLabel: 'epoch', yLabel: 'test accuracy (inference mode)', yMin: 0, yMax: 1, xMin: 0,
    series: RUNS.filter(r => r.experiment === experiment || r.experiment === 'reference').map((r): Series => ({
      name: r.label, color: r.color, dashed: r.dashed, points: (results.get(r.id) as RunCurves).testAccuracy})),
  });
  return lineChartSvg([
    panel('small', `(a) Batches of 4 (${TRAIN_SIZE} images, ${epochs} epochs, ${backend})`),
    panel('non-iid', '(b) Each batch of 32 from two classes'),
  ]);
}

async function main(): Promise<void> {
  const options = parseOptions();
  const backend = await selectBackend(options.backend);
  console.log(`backend: ${backend}; ${TRAIN_SIZE} training and ${TEST_SIZE} test digits; ${options.epochs} epochs of SGD for every run, ` +
    `learning rate ${LEARNING_RATE_PER_IMAGE * 64} × batch / 64, momentum 1 − batch / ${AVERAGE_OVER_IMAGES}\n`);
  const data = loadDigits(TRAIN_SIZE, TEST_SIZE, SEED);
  const results = new Map<string, RunCurves>();
  const started = performance.now();
  for (const run of RUNS) results.set(run.id, await train(run, data, options.epochs));
  const minutes = (performance.now() - started) / 60000;

  printTable(['run', 'batches', 'final loss', 'test accuracy (moving statistics)', 's / epoch'], RUNS.map(run => {
    const r = results.get(run.id) as RunCurves;
    const batches = run.twoClassBatches ? `${run.batchSize}, 2 classes` : `${run.batchSize}, i.i.d.`;
    return [run.label, batches, r.finalLoss.toFixed(4), finalAccuracy(r), r.secondsPerEpoch.toFixed(1)];
  }));
  await mkdir(options.out, {recursive: true});
  const chartPath = `${options.out}/small-batch.svg`;
  await writeFile(chartPath, chartSvg(results, options.epochs, backend));
  console.log(`\nchart: ${chartPath}\ntotal training time: ${minutes.toFixed(1)} min`);
  disposeSplit(data.train);
  disposeSplit(data.test);
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
