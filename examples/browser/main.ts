/**
 * The browser demo (bundled by serve.ts into dist/demo.js): trains a small classifier with this
 * package's batchNormalization on the webgl backend (cpu when WebGL is unavailable), plots its loss
 * live, saves it to IndexedDB and loads it back; and computes the layer's outputs on webgl and on
 * cpu for channels-last and channels-first inputs. Everything measured goes to window.demoResult,
 * which __tests__/browser.test.ts reads; the page shows the same numbers for a person.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization} from '../../src';
import {lineChartSvg} from '../chart';

/** What one backend computed for one input layout, as plain arrays (JSON-friendly for the test). */
export interface LayerOutputs {
  /** tf.getBackend() while they were computed. */
  backend: string;
  values: LayerValues;
}

/** The layer's results for one input. */
export interface LayerValues {
  /** y in training mode (batch statistics). */
  training: number[];
  /** The moving mean and variance after that training-mode call. */
  movingMean: number[];
  movingVariance: number[];
  /** y in inference mode (moving statistics). */
  inference: number[];
  /** d(sum(y · probe))/dx in training mode: the gradient through the batch statistics. */
  inputGradient: number[];
}

/** What the demo found; read by the browser test. */
export interface DemoResult {
  backend: string;
  /** tf.env WEBGL_VERSION (0 when webgl did not initialize). */
  webglVersion: number;
  /** The WebGL renderer string (e.g. ANGLE … SwiftShader), or '' without WebGL. */
  webglRenderer: string;
  /** The layer's outputs per layout and backend; null entries where a backend is unavailable. */
  webglVsCpu: Record<'channelsLast' | 'channelsFirst', {webgl: LayerOutputs | null, cpu: LayerOutputs}>;
  /** Mean training loss per epoch. */
  losses: number[];
  trainAccuracy: number;
  /** The IndexedDB round trip, checked in detail (see compareRoundTrip). */
  weightsIdentical: boolean;
  cpuPredictionsIdentical: boolean;
  predictionsBeforeSave: number[];
  predictionsAfterLoad: number[];
  predictionsMaxDifference: number;
  loadedLayerClasses: string[];
  /** The page's own verdict on the round trip: all of the above within ROUND_TRIP_TOLERANCE. */
  idbMatch: boolean;
  modelUrl: string;
}

declare global {
  interface Window {
    demoResult?: DemoResult;
    demoError?: string;
  }
}

const MODEL_URL = 'indexeddb://tfjs-batchnorm-demo';
const EPOCHS = 15;
const POINTS_PER_CLASS = 100;
const CLASSES = 3;
/** How far predictions of the loaded model may be from the original's: not at all. */
const ROUND_TRIP_TOLERANCE = 0;

function status(text: string): void {
  (document.getElementById('status') as HTMLElement).textContent = text;
}

function reportCheck(name: string, ok: boolean, detail: string): void {
  const row = (document.getElementById('checks') as HTMLTableElement).insertRow();
  row.insertCell().textContent = name;
  const cell = row.insertCell();
  cell.textContent = `${ok ? 'pass' : 'FAIL'} — ${detail}`;
  cell.className = ok ? 'pass' : 'fail';
}

function webglRenderer(): string {
  const gl = document.createElement('canvas').getContext('webgl2');
  if (gl == null) return '';
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  return String(gl.getParameter(info != null ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
}

/** Fixed pseudo-random values (seeded tfjs generator), identical whichever backend is active. */
function seededValues(size: number, seed: number, mean = 0, stdDev = 1): Float32Array {
  return tf.tidy(() => tf.randomNormal([size], mean, stdDev, 'float32', seed).dataSync() as Float32Array);
}

/**
 * The layer's outputs on `backend` for x of `shape` with channels on `axis`. Inputs and weights are
 * the same numbers on every backend; a fresh layer per backend keeps variables on their backend.
 */
async function layerOutputs(backend: string, shape: number[], axis: number): Promise<LayerOutputs> {
  await tf.setBackend(backend);
  const channels = shape[axis];
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tidy(() => {
    // Inputs off zero mean and unit scale, so the normalization has something to undo.
    const x = tf.tensor(seededValues(size, 1, 3, 2), shape);
    const probe = tf.tensor(seededValues(size, 2), shape);
    const weights = [
      tf.tensor1d(seededValues(channels, 3, 1, 0.5)), tf.tensor1d(seededValues(channels, 4)),
      tf.tensor1d(seededValues(channels, 5)), tf.tensor1d(seededValues(channels, 6)).square().add(0.5),
    ];
    const layer = batchNormalization({axis, momentum: 0.9, weights});
    const training = layer.apply(x, {training: true}) as tf.Tensor;
    const [movingMean, movingVariance] = layer.getWeights().slice(2);
    const inference = layer.apply(x, {training: false}) as tf.Tensor;
    const inputGradient = tf.grad(input => (layer.apply(input, {training: true}) as tf.Tensor).mul(probe).sum())(x);
    const list = (t: tf.Tensor) => Array.from(t.dataSync());
    const values = {training: list(training), movingMean: list(movingMean), movingVariance: list(movingVariance),
      inference: list(inference), inputGradient: list(inputGradient)};
    layer.dispose();
    return {backend: tf.getBackend(), values};
  });
}

/** The largest |a − b| over every array of the two results. */
function maxAbsDifference(a: LayerValues, b: LayerValues): number {
  const keys = Object.keys(a) as Array<keyof LayerValues>;
  return Math.max(...keys.flatMap(k => a[k].map((v, i) => Math.abs(v - b[k][i]))));
}

/** Three interleaved noisy spirals in the plane, in a fixed random order: small, not linearly separable. */
function spirals(): {xs: tf.Tensor2D, ys: tf.Tensor2D} {
  return tf.tidy(() => {
    const n = POINTS_PER_CLASS * CLASSES;
    const labels = tf.tensor1d(Array.from({length: n}, (_, i) => i % CLASSES), 'int32');
    const radius = tf.linspace(0.1, 1, n);
    const angle = radius.mul(4).add(labels.toFloat().mul((2 * Math.PI) / CLASSES)).add(tf.randomNormal([n], 0, 0.15, 'float32', 7));
    const xs = tf.stack([radius.mul(tf.cos(angle)), radius.mul(tf.sin(angle))], 1);
    // Generated by radius, so consecutive points are alike; batch statistics need mixed batches.
    // The order of seeded random keys is a seeded permutation (tfjs's own shuffle is unseeded).
    const order = tf.topk(tf.randomUniform([n], 0, 1, 'float32', 8), n).indices;
    return {xs: tf.gather(xs, order) as tf.Tensor2D, ys: tf.oneHot(tf.gather(labels, order), CLASSES).toFloat() as tf.Tensor2D};
  });
}

/** Whether two float32 arrays have the same bits (so -0 vs 0 or NaN payloads would count). */
function bitwiseEqual(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  const [x, y] = [new Uint32Array(new Float32Array(a).buffer), new Uint32Array(new Float32Array(b).buffer)];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * The saved-and-loaded model against the original: weights bit for bit, and predictions bit for bit
 * on cpu and on the active backend (ROUND_TRIP_TOLERANCE is 0).
 */
async function compareRoundTrip(model: tf.LayersModel, loaded: tf.LayersModel, probe: tf.Tensor, backend: string) {
  const predict = (m: tf.LayersModel) => tf.tidy(() => Array.from((m.predict(probe) as tf.Tensor).dataSync()));
  const weightsIdentical = model.getWeights().length === loaded.getWeights().length &&
      model.getWeights().every((w, i) => bitwiseEqual(w.dataSync(), loaded.getWeights()[i].dataSync()));
  // On the active backend first: switching backends moves (re-uploads) the weights.
  const predictionsBeforeSave = predict(model);
  const predictionsAfterLoad = predict(loaded);
  const predictionsMaxDifference = Math.max(...predictionsBeforeSave.map((v, i) => Math.abs(v - predictionsAfterLoad[i])));
  await tf.setBackend('cpu');
  const cpuPredictionsIdentical = bitwiseEqual(predict(model), predict(loaded));
  await tf.setBackend(backend);
  probe.dispose();
  return {weightsIdentical, cpuPredictionsIdentical, predictionsBeforeSave, predictionsAfterLoad, predictionsMaxDifference,
    loadedLayerClasses: loaded.layers.map(l => l.getClassName())};
}

/** dense → BatchNorm → relu, twice, then softmax; seeded initializers, so every run is the same. */
function buildModel(): tf.Sequential {
  const model = tf.sequential();
  [32, 32].forEach((units, i) => {
    model.add(tf.layers.dense({...(i === 0 ? {inputShape: [2]} : {}), units, useBias: false,
      kernelInitializer: tf.initializers.glorotUniform({seed: 10 + i})}));
    model.add(batchNormalization());
    model.add(tf.layers.activation({activation: 'relu'}));
  });
  model.add(tf.layers.dense({units: CLASSES, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: 12})}));
  model.compile({optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy', metrics: ['accuracy']});
  return model;
}

function plotLoss(losses: number[], backend: string): void {
  (document.getElementById('chart') as HTMLElement).innerHTML = lineChartSvg([{
    title: `Training loss (${backend})`, xLabel: 'epoch', yLabel: 'cross-entropy', xMin: 0, yMin: 0,
    series: [{name: 'tfjs-batchnorm', color: '#2ca02c', points: losses.map((loss, i) => [i + 1, loss])}],
  }]);
}

async function run(): Promise<DemoResult> {
  const webgl = await tf.setBackend('webgl').catch(() => false);
  if (!webgl) await tf.setBackend('cpu');
  const backend = tf.getBackend();
  const webglVersion = webgl ? tf.env().getNumber('WEBGL_VERSION') : 0;
  status(`backend: ${backend}${webgl ? ` (WebGL ${webglVersion})` : ' (WebGL unavailable)'}; comparing webgl and cpu…`);

  const layouts = {channelsLast: {shape: [4, 5, 6, 3], axis: 3}, channelsFirst: {shape: [4, 3, 5, 6], axis: 1}};
  const webglVsCpu = {} as DemoResult['webglVsCpu'];
  for (const [name, {shape, axis}] of Object.entries(layouts) as Array<[keyof typeof layouts, {shape: number[], axis: number}]>) {
    const cpu = await layerOutputs('cpu', shape, axis);
    const onWebgl = webgl ? await layerOutputs('webgl', shape, axis) : null;
    webglVsCpu[name] = {webgl: onWebgl, cpu};
    if (onWebgl != null) {
      const diff = maxAbsDifference(onWebgl.values, cpu.values);
      reportCheck(`${name}: webgl vs cpu`, diff <= 1e-4, `max |difference| ${diff.toExponential(2)} (outputs, moving statistics, input gradient)`);
    }
  }
  await tf.setBackend(backend);

  status(`training on ${backend}…`);
  const {xs, ys} = spirals();
  const model = buildModel();
  const losses: number[] = [];
  const history = await model.fit(xs, ys, {
    // The points are already in a random order; tfjs's shuffle is unseeded and would make runs differ.
    epochs: EPOCHS, batchSize: 32, shuffle: false,
    callbacks: {onEpochEnd: async (_epoch, logs) => {
      losses.push(logs?.loss ?? NaN);
      plotLoss(losses, backend);
      await tf.nextFrame();
    }},
  });
  const accuracies = history.history.acc;
  const trainAccuracy = accuracies[accuracies.length - 1] as number;
  reportCheck('loss fell', losses[losses.length - 1] < losses[0], `${losses[0].toFixed(3)} → ${losses[losses.length - 1].toFixed(3)}, training accuracy ${(100 * trainAccuracy).toFixed(1)}%`);

  status(`saving to ${MODEL_URL} and loading back…`);
  await model.save(MODEL_URL);
  const loaded = await tf.loadLayersModel(MODEL_URL);
  const roundTrip = await compareRoundTrip(model, loaded, tf.tidy(() => xs.slice(0, 30)), backend);
  const idbMatch = roundTrip.weightsIdentical && roundTrip.cpuPredictionsIdentical &&
      roundTrip.predictionsMaxDifference <= ROUND_TRIP_TOLERANCE;
  reportCheck('IndexedDB round trip', idbMatch, `weights ${roundTrip.weightsIdentical ? 'bitwise identical' : 'DIFFER'}; ` +
      `predictions on cpu ${roundTrip.cpuPredictionsIdentical ? 'bitwise identical' : 'DIFFER'}, on ${backend} max |difference| ` +
      `${roundTrip.predictionsMaxDifference.toExponential(2)}; loaded layers: ${roundTrip.loadedLayerClasses.join(', ')}`);
  tf.dispose([xs, ys]);
  model.dispose();
  loaded.dispose();

  status(`done (backend ${backend})`);
  return {backend, webglVersion, webglRenderer: webglRenderer(), webglVsCpu, losses, trainAccuracy,
    ...roundTrip, idbMatch, modelUrl: MODEL_URL};
}

run().then(result => {
  window.demoResult = result;
}, (e: Error) => {
  window.demoError = `${e.message}\n${e.stack ?? ''}`;
  status(`error: ${e.message}`);
});
