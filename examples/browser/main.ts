/**
 * The browser demo (bundled by serve.ts into dist/demo.js): trains a small classifier with this
 * package's batchNormalization on a GPU backend — webgl, or webgpu with `?backend=webgpu` (cpu when
 * the requested one is unavailable) — plots its loss live, saves it to IndexedDB and loads it back;
 * and computes the layer's outputs on that backend and on cpu for channels-last and channels-first
 * inputs. Tensors are read with `await data()` (webgpu has no synchronous read). Everything measured
 * goes to window.demoResult, which __tests__/browser.test.ts reads; the page shows the same numbers.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
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

/** The GPU backends the demo can run on. */
export type GpuBackend = 'webgl' | 'webgpu';

/** What the demo found; read by the browser test. */
export interface DemoResult {
  /** The backend asked for (?backend=, default webgl). */
  requested: GpuBackend;
  /** The backend that ran (cpu when the requested one did not initialize). */
  backend: string;
  /** tf.env WEBGL_VERSION when webgl ran, else 0. */
  webglVersion: number;
  /** The GPU the backend ran on: WebGL's renderer string, or the WebGPU adapter's vendor and architecture; '' without one. */
  renderer: string;
  /** The layer's outputs per layout, on the GPU backend and on cpu; gpu is null where the GPU backend is unavailable. */
  vsCpu: Record<'channelsLast' | 'channelsFirst', {gpu: LayerOutputs | null, cpu: LayerOutputs}>;
  /** Mean training loss per epoch. */
  losses: number[];
  trainAccuracy: number;
  /** The IndexedDB round trip, checked in detail (see compareRoundTrip). */
  weightsIdentical: boolean;
  cpuPredictionsIdentical: boolean;
  /** Max |difference| of the two models' predictions on cpu (0 when identical). */
  cpuPredictionsMaxDifference: number;
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

/** Where the trained model is saved, one per requested backend (the pages share the origin's IndexedDB). */
const modelUrl = (backend: GpuBackend) => `indexeddb://tfjs-batchnorm-demo-${backend}`;
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

/** The GPU `backend` ran on, as the browser names it ('' when there is none). */
async function gpuRenderer(backend: string): Promise<string> {
  if (backend === 'webgl') {
    const gl = document.createElement('canvas').getContext('webgl2');
    if (gl == null) return '';
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    return String(gl.getParameter(info != null ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  }
  if (backend === 'webgpu') {
    type Adapter = {info?: {vendor: string, architecture: string}};
    const adapter = await (navigator as unknown as {gpu?: {requestAdapter(): Promise<Adapter | null>}}).gpu?.requestAdapter();
    return adapter?.info != null ? `${adapter.info.vendor} ${adapter.info.architecture}`.trim() : '';
  }
  return '';
}

/** A tensor's values as a plain array, read asynchronously (the only way on webgpu); disposes it. */
async function values(t: tf.Tensor): Promise<number[]> {
  const data = Array.from(await t.data());
  t.dispose();
  return data;
}

/** Fixed pseudo-random values (seeded tfjs generator), identical whichever backend is active. */
async function seededValues(size: number, seed: number, mean = 0, stdDev = 1): Promise<Float32Array> {
  return Float32Array.from(await values(tf.randomNormal([size], mean, stdDev, 'float32', seed)));
}

/**
 * The layer's outputs on `backend` for x of `shape` with channels on `axis`. Inputs and weights are
 * the same numbers on every backend; a fresh layer per backend keeps variables on their backend.
 */
async function layerOutputs(backend: string, shape: number[], axis: number): Promise<LayerOutputs> {
  await tf.setBackend(backend);
  const channels = shape[axis];
  const size = shape.reduce((a, b) => a * b, 1);
  // Inputs off zero mean and unit scale, so the normalization has something to undo.
  const [xValues, probeValues, gamma, beta, mean, variance] = await Promise.all([
    seededValues(size, 1, 3, 2), seededValues(size, 2), seededValues(channels, 3, 1, 0.5), seededValues(channels, 4),
    seededValues(channels, 5), seededValues(channels, 6)]);
  const layer = batchNormalization({axis, momentum: 0.9,
    weights: [tf.tensor1d(gamma), tf.tensor1d(beta), tf.tensor1d(mean), tf.tensor1d(variance.map(v => v * v + 0.5))]});
  const [training, movingMean, movingVariance, inference, inputGradient] = tf.tidy(() => {
    const x = tf.tensor(xValues, shape);
    const probe = tf.tensor(probeValues, shape);
    const y = layer.apply(x, {training: true}) as tf.Tensor;
    const [m, v] = layer.getWeights().slice(2).map(w => w.clone());
    const yInference = layer.apply(x, {training: false}) as tf.Tensor;
    const dx = tf.grad(input => (layer.apply(input, {training: true}) as tf.Tensor).mul(probe).sum())(x);
    return [y, m, v, yInference, dx];
  });
  const result = {training: await values(training), movingMean: await values(movingMean),
    movingVariance: await values(movingVariance), inference: await values(inference), inputGradient: await values(inputGradient)};
  layer.dispose();
  return {backend: tf.getBackend(), values: result};
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
 * on the active backend and on cpu (ROUND_TRIP_TOLERANCE is 0). The cpu side moves no tensor between
 * backends: tfjs's webgpu backend reads GPU data back for such a move through a canvas, which changes
 * the values (measured: predictions off by 0.67), so the original's weights come from the arrays read
 * here with `await data()`, and the saved model is loaded again, on cpu.
 */
async function compareRoundTrip(model: tf.LayersModel, loaded: tf.LayersModel, probeValues: Float32Array,
                                probeShape: number[], url: string, backend: string) {
  const weights = async (m: tf.LayersModel) => Promise.all(m.getWeights().map(w => w.data() as Promise<Float32Array>));
  const [original, reloaded] = [await weights(model), await weights(loaded)];
  const weightsIdentical = original.length === reloaded.length && original.every((w, i) => bitwiseEqual(w, reloaded[i]));
  const predict = (m: tf.LayersModel) => values(tf.tidy(() => m.predict(tf.tensor(probeValues, probeShape)) as tf.Tensor));
  const predictionsBeforeSave = await predict(model);
  const predictionsAfterLoad = await predict(loaded);
  const predictionsMaxDifference = Math.max(...predictionsBeforeSave.map((v, i) => Math.abs(v - predictionsAfterLoad[i])));

  await tf.setBackend('cpu');
  const originalOnCpu = buildModel();
  const cpuWeights = model.getWeights().map((w, i) => tf.tensor(original[i], w.shape));
  originalOnCpu.setWeights(cpuWeights);
  tf.dispose(cpuWeights);
  const loadedOnCpu = await tf.loadLayersModel(url);
  const [cpuBefore, cpuAfter] = [await predict(originalOnCpu), await predict(loadedOnCpu)];
  const cpuPredictionsIdentical = bitwiseEqual(cpuBefore, cpuAfter);
  const cpuPredictionsMaxDifference = Math.max(...cpuBefore.map((v, i) => Math.abs(v - cpuAfter[i])));
  originalOnCpu.dispose();
  loadedOnCpu.dispose();
  await tf.setBackend(backend);
  return {weightsIdentical, cpuPredictionsIdentical, cpuPredictionsMaxDifference, predictionsBeforeSave, predictionsAfterLoad,
    predictionsMaxDifference, loadedLayerClasses: loaded.layers.map(l => l.getClassName())};
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
  const requested: GpuBackend = new URLSearchParams(location.search).get('backend') === 'webgpu' ? 'webgpu' : 'webgl';
  const gpu = await tf.setBackend(requested).catch(() => false);
  if (!gpu) await tf.setBackend('cpu');
  const backend = tf.getBackend();
  const webglVersion = backend === 'webgl' ? tf.env().getNumber('WEBGL_VERSION') : 0;
  const renderer = await gpuRenderer(backend);
  status(`backend: ${backend}${gpu ? ` (${renderer})` : ` (${requested} unavailable)`}; comparing ${requested} and cpu…`);

  const layouts = {channelsLast: {shape: [4, 5, 6, 3], axis: 3}, channelsFirst: {shape: [4, 3, 5, 6], axis: 1}};
  const vsCpu = {} as DemoResult['vsCpu'];
  for (const [name, {shape, axis}] of Object.entries(layouts) as Array<[keyof typeof layouts, {shape: number[], axis: number}]>) {
    const cpu = await layerOutputs('cpu', shape, axis);
    const onGpu = gpu ? await layerOutputs(requested, shape, axis) : null;
    vsCpu[name] = {gpu: onGpu, cpu};
    if (onGpu != null) {
      const diff = maxAbsDifference(onGpu.values, cpu.values);
      reportCheck(`${name}: ${requested} vs cpu`, diff <= 1e-4, `max |difference| ${diff.toExponential(2)} (outputs, moving statistics, input gradient)`);
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

  const url = modelUrl(requested);
  status(`saving to ${url} and loading back…`);
  await model.save(url);
  const loaded = await tf.loadLayersModel(url);
  const probe = xs.slice(0, 30);
  const roundTrip = await compareRoundTrip(model, loaded, await probe.data() as Float32Array, probe.shape, url, backend);
  probe.dispose();
  const idbMatch = roundTrip.weightsIdentical && roundTrip.cpuPredictionsIdentical &&
      roundTrip.predictionsMaxDifference <= ROUND_TRIP_TOLERANCE;
  reportCheck('IndexedDB round trip', idbMatch, `weights ${roundTrip.weightsIdentical ? 'bitwise identical' : 'DIFFER'}; ` +
      `predictions on cpu ${roundTrip.cpuPredictionsIdentical ? 'bitwise identical' : 'DIFFER'}, on ${backend} max |difference| ` +
      `${roundTrip.predictionsMaxDifference.toExponential(2)}; loaded layers: ${roundTrip.loadedLayerClasses.join(', ')}`);
  tf.dispose([xs, ys]);
  model.dispose();
  loaded.dispose();

  status(`done (backend ${backend})`);
  return {requested, backend, webglVersion, renderer, vsCpu, losses, trainAccuracy, ...roundTrip, idbMatch, modelUrl: url};
}

run().then(result => {
  window.demoResult = result;
}, (e: Error) => {
  window.demoError = `${e.message}\n${e.stack ?? ''}`;
  status(`error: ${e.message}`);
});
