/**
 * The page __tests__/browser_kernels.test.ts drives in headless Chromium (bundled by the test with
 * esbuild). It computes; the test checks. `window.kernelLab` runs a batch-norm problem on a named
 * backend (webgl, webgpu, wasm or cpu) and returns every output and gradient as plain arrays, with
 * the kernels that ran and the memory tfjs held before and after. The URL picks the setting, which
 * must be fixed before a backend starts: `?f16` forces half-float textures on webgl
 * (WEBGL_FORCE_F16_TEXTURES), `?wasm` serves tfjs's wasm files (the page is cross-origin isolated,
 * so tfjs picks its multi-threaded SIMD build).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import {setWasmPaths} from '@tensorflow/tfjs-backend-wasm';
import {batchNormalization, batchNormInfer, batchNormTrain} from '../../src';
import {simdLoopsAvailable} from '../../src/kernels/simd';

/** One problem, as plain arrays (row-major). Null gamma/beta: scale 1 / offset 0. */
export interface Problem {
  shape: number[];
  axis: number | number[];
  epsilon: number;
  x: number[];
  /** Upstream gradient of y (the loss is Σy·dy + Σmean·dmean + Σvariance·dvariance). */
  dy: number[];
  gamma: number[] | null;
  beta: number[] | null;
  dmean: number[] | null;
  dvariance: number[] | null;
  /** Statistics for inference mode. */
  movingMean: number[];
  movingVariance: number[];
}

/** What a backend computed for a problem. */
export interface ProblemResult {
  backend: string;
  train: {y: number[]; mean: number[]; variance: number[]};
  /** Gradients of the training-mode loss for x, gamma, beta (gamma/beta empty when null). */
  trainGrads: {dx: number[]; dgamma: number[]; dbeta: number[]};
  inferY: number[];
  /** Gradients of Σ y_infer·dy for x, mean, variance, gamma, beta. */
  inferGrads: {dx: number[]; dmean: number[]; dvariance: number[]; dgamma: number[]; dbeta: number[]};
  /** Names of the kernels each part ran (tf.profile). */
  kernels: {train: string[]; trainGrads: string[]; infer: string[]};
}

/** tf.memory() fields the leak check compares. */
export interface MemorySnapshot {
  numTensors: number;
  numDataBuffers: number;
  /** Bytes of textures (webgl) or buffers (webgpu) held by live tensors; 0 elsewhere. */
  numBytesInGPU: number;
}

/** A half-float check: the input as the GPU holds it, and the layers' training-mode outputs. */
export interface HalfFloatResult {
  /** x read back from the GPU (rounded to float16 by the upload). */
  x: number[];
  ours: {y: number[]; dx: number[]; mean: number[]; variance: number[]};
  stock: {y: number[]};
  floatPrecision: number;
}

/** How the wasm backend runs in this page. */
export interface WasmInfo {
  threads: number;
  sharedMemory: boolean;
  simdLoops: boolean;
}

/** The page's API. */
export interface KernelLab {
  mode: string;
  backends(): string[];
  run(problem: Problem, backend: string): Promise<ProblemResult>;
  /** Runs a problem three times and returns tf.memory() after the first and after the third run. */
  memory(problem: Problem, backend: string): Promise<{before: MemorySnapshot; after: MemorySnapshot}>;
  halfFloat(shape: number[], center: number, spread: number, seed: number): Promise<HalfFloatResult>;
  wasmInfo(): Promise<WasmInfo>;
  /** Kernels run by the layer's training step (forward, moving statistics, gradients) and inference. */
  layerKernels(shape: number[], axis: number, backend: string): Promise<{training: string[]; inference: string[]}>;
}

declare global {
  interface Window {
    kernelLab?: KernelLab;
    kernelLabError?: string;
  }
}

const params = new URLSearchParams(location.search);
const mode = params.has('f16') ? 'f16' : params.has('wasm') ? 'wasm' : 'gpu';
if (mode === 'f16') tf.env().set('WEBGL_FORCE_F16_TEXTURES', true);
if (mode === 'wasm') setWasmPaths('/wasm/');

async function use(backend: string): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  await tf.ready();
}

async function arrays(ts: Array<tf.Tensor | null>): Promise<number[][]> {
  return Promise.all(ts.map(async t => (t == null ? [] : Array.from(await t.data()))));
}

function names(profile: tf.ProfileInfo): string[] {
  return profile.kernels.map(k => k.name);
}

async function run(p: Problem, backend: string): Promise<ProblemResult> {
  await use(backend);
  const opts = {axis: p.axis, epsilon: p.epsilon};
  const perChannel = (v: number[] | null) => (v == null ? null : tf.tensor1d(v));
  const x = tf.tensor(p.x, p.shape);
  const dy = tf.tensor(p.dy, p.shape);
  const gamma = perChannel(p.gamma);
  const beta = perChannel(p.beta);
  const dmean = perChannel(p.dmean);
  const dvariance = perChannel(p.dvariance);
  const movingMean = tf.tensor1d(p.movingMean);
  const movingVariance = tf.tensor1d(p.movingVariance);
  const held: tf.Tensor[] = [];
  try {
    const trainProfile = await tf.profile(() => {
      const r = batchNormTrain(x, gamma, beta, opts);
      return [r.y, r.mean, r.variance];
    });
    // tf.profile reuses one ProfileInfo object: take what is needed before the next profile.
    const trainKernels = names(trainProfile);
    const trainOut = trainProfile.result as tf.Tensor[];
    held.push(...trainOut);
    // The training loss as a function of the tensors being differentiated (gamma/beta when given).
    const loss = (xs: tf.Tensor, g: tf.Tensor | null, b: tf.Tensor | null) => {
      const r = batchNormTrain(xs, g, b, opts);
      let total = tf.sum(tf.mul(r.y, dy));
      if (dmean != null) total = tf.add(total, tf.sum(tf.mul(r.mean, dmean)));
      if (dvariance != null) total = tf.add(total, tf.sum(tf.mul(r.variance, dvariance)));
      return total;
    };
    const wrt = [x, ...(gamma == null ? [] : [gamma]), ...(beta == null ? [] : [beta])];
    const gradProfile = await tf.profile(() => tf.grads((...args: tf.Tensor[]) =>
      loss(args[0], gamma == null ? null : args[1], beta == null ? null : args[gamma == null ? 1 : 2]))(wrt));
    const gradKernels = names(gradProfile);
    const grads = gradProfile.result as tf.Tensor[];
    held.push(...grads);
    const inferProfile = await tf.profile(() => batchNormInfer(x, movingMean, movingVariance, gamma, beta, opts));
    const inferKernels = names(inferProfile);
    const inferY = inferProfile.result as tf.Tensor;
    held.push(inferY);
    const inferWrt = [x, movingMean, movingVariance, ...(gamma == null ? [] : [gamma]), ...(beta == null ? [] : [beta])];
    const inferGrads = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(batchNormInfer(args[0], args[1], args[2],
      gamma == null ? null : args[3], beta == null ? null : args[gamma == null ? 3 : 4], opts), dy)))(inferWrt);
    held.push(...inferGrads);
    const [y, mean, variance, dx, ...rest] = await arrays([...trainOut, ...grads]);
    const dgamma = gamma == null ? [] : rest[0];
    const dbeta = beta == null ? [] : rest[gamma == null ? 0 : 1];
    const [iy, idx, idm, idv, ...irest] = await arrays([inferY, ...inferGrads]);
    return {
      backend: tf.getBackend(),
      train: {y, mean, variance},
      trainGrads: {dx, dgamma, dbeta},
      inferY: iy,
      inferGrads: {dx: idx, dmean: idm, dvariance: idv, dgamma: gamma == null ? [] : irest[0],
        dbeta: beta == null ? [] : irest[gamma == null ? 0 : 1]},
      kernels: {train: trainKernels, trainGrads: gradKernels, infer: inferKernels},
    };
  } finally {
    tf.dispose([...held, x, dy, movingMean, movingVariance]);
    tf.dispose([gamma, beta, dmean, dvariance].filter((t): t is tf.Tensor1D => t != null));
  }
}

function snapshot(): MemorySnapshot {
  const m = tf.memory() as tf.MemoryInfo & {numBytesInGPU?: number};
  return {numTensors: m.numTensors, numDataBuffers: m.numDataBuffers, numBytesInGPU: m.numBytesInGPU ?? 0};
}

async function memory(p: Problem, backend: string): Promise<{before: MemorySnapshot; after: MemorySnapshot}> {
  await run(p, backend);  // compiles every program and fills the texture/buffer pools
  const before = snapshot();
  await run(p, backend);
  await run(p, backend);
  return {before, after: snapshot()};
}

/** Deterministic N(0, 1) values (xorshift + Box–Muller), so a seed gives the same input everywhere. */
function normals(count: number, seed: number): number[] {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  return Array.from({length: count}, () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
}

async function halfFloat(shape: number[], center: number, spread: number, seed: number): Promise<HalfFloatResult> {
  await use('webgl');
  const size = shape.reduce((a, b) => a * b, 1);
  const x = tf.tensor(normals(size, seed).map(v => center + spread * v), shape);
  const dy = tf.tensor(normals(size, seed + 1), shape);
  const held: tf.Tensor[] = [x, dy];
  const ours = batchNormalization({momentum: 0.9});
  const stock = tf.layers.batchNormalization({momentum: 0.9});
  try {
    const stored = tf.add(x, tf.scalar(0));  // x as the GPU holds it
    held.push(stored);
    const yOurs = ours.apply(x, {training: true}) as tf.Tensor;
    const yStock = stock.apply(x, {training: true}) as tf.Tensor;
    held.push(yOurs, yStock);
    const r = batchNormTrain(x, null, null, {});
    held.push(r.y, r.mean, r.variance);
    const dx = tf.grad((xs: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(xs, null, null, {}).y, dy)))(x);
    held.push(dx);
    const [xq, y, mean, variance, dxs, ys] = await arrays([stored, yOurs, r.mean, r.variance, dx, yStock]);
    return {x: xq, ours: {y, dx: dxs, mean, variance}, stock: {y: ys}, floatPrecision: tf.backend().floatPrecision()};
  } finally {
    tf.dispose(held);
    ours.dispose();
    stock.dispose();
  }
}

async function wasmInfo(): Promise<WasmInfo> {
  await use('wasm');
  const module = (tf.backend() as unknown as {wasm: {wasmMemory?: WebAssembly.Memory; asm?: {memory?: WebAssembly.Memory};
    _get_threads_count?: () => number}}).wasm;
  const memoryObject = module.wasmMemory ?? module.asm?.memory;
  return {
    threads: module._get_threads_count?.() ?? 1,
    sharedMemory: typeof SharedArrayBuffer !== 'undefined' && memoryObject?.buffer instanceof SharedArrayBuffer,
    simdLoops: simdLoopsAvailable(module),
  };
}

async function layerKernels(shape: number[], axis: number, backend: string): Promise<{training: string[]; inference: string[]}> {
  await use(backend);
  const layer = batchNormalization({axis});
  const x = tf.variable(tf.randomNormal(shape, 3, 2));
  const dy = tf.randomNormal(shape);
  try {
    tf.tidy(() => { layer.apply(x, {training: false}); });  // builds the weights
    const step = () => tf.grads(() => layer.apply(x, {training: true}) as tf.Tensor)(
        [x, ...layer.trainableWeights.map(w => w.read())], dy);
    tf.dispose(step());
    const training = names(await tf.profile(() => { tf.dispose(step()); }));
    const inference = names(await tf.profile(() => { tf.dispose(layer.apply(x, {training: false}) as tf.Tensor); }));
    return {training, inference};
  } finally {
    tf.dispose([x, dy]);
    layer.dispose();
  }
}

function availableBackends(): string[] {
  return Object.keys(tf.engine().registryFactory);
}

try {
  window.kernelLab = {mode, backends: availableBackends, run, memory, halfFloat, wasmInfo, layerKernels};
} catch (e) {
  window.kernelLabError = e instanceof Error ? e.message : String(e);
}
