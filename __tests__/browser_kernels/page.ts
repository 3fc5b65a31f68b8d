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
import {setThreadsCount, setWasmPaths} from '@tensorflow/tfjs-backend-wasm';
import {BATCH_NORM_TRAIN_GRAD_KERNEL, batchNormalization, batchNormInfer, batchNormTrain} from '../../src';
import {simdLoopsAvailable} from '../../src/kernels/simd';
import {BASE_INTERFACE_FLAG} from '../../src/ops/dispatch';
import {trainStep} from '../../src/ops/train_step';
import {checkCommon} from '../../src/ops/validate';
import {BrowserProblem as Problem, fromJson, maskOf, STEP_MOMENTUM, toJson} from '../support/browser_problems';

/** What a backend computed for a problem. */
export interface ProblemResult {
  backend: string;
  train: {y: number[]; mean: number[]; variance: number[]};
  /** Gradients of the training-mode loss for x, gamma, beta (gamma/beta empty when null). */
  trainGrads: {dx: number[]; dgamma: number[]; dbeta: number[]};
  inferY: number[];
  /** Gradients of Σ y_infer·dy for x, mean, variance, gamma, beta (all empty unless inferGradients). */
  inferGrads: {dx: number[]; dmean: number[]; dvariance: number[]; dgamma: number[]; dbeta: number[]};
  /** Names of the kernels each part ran (tf.profile). */
  kernels: {train: string[]; trainGrads: string[]; infer: string[]};
  /** On webgl: whether x and dy were packed textures when the kernels ran. */
  packed: {x: boolean; dy: boolean};
  /** The layer's training step (problems with `step`), else null. */
  step: StepResult | null;
  /** Masked training (problems with `masked`), else null. */
  masked: MaskedResult | null;
}

/**
 * The layer's training step as BatchNorm runs it (ops/train_step.ts: the moving update inside the
 * training kernel where the backend's kernel declares it, else tf ops around it), with gamma, beta
 * and the moving statistics shaped [channels, 1] (flexibleParams; on webgl in the problem's layout,
 * packed or not), momentum STEP_MOMENTUM; the gradients of Σy·dy for x, gamma, beta through the
 * tape; inference with the same [channels, 1] tensors.
 */
export interface StepResult extends TrainingValues {
  movingMean: number[];
  movingVariance: number[];
  inferY: number[];
  /** Shapes of the updated moving mean and of dgamma (the inputs' [channels, 1]). */
  shapes: {movingMean: number[]; dgamma: number[]};
  /** The kernels the forward step ran (tf.profile). */
  kernels: string[];
  /**
   * The same forward with every kernel counting as one written for the base interface
   * (TFJS_BATCHNORM_BASE_INTERFACE: no features, so the moving update runs in tf ops around it).
   */
  base: {y: number[]; movingMean: number[]; movingVariance: number[]; kernels: string[]};
}

/** A training forward's outputs and statistics, and the gradients of Σy·dy for x, gamma, beta (empty where null). */
export interface TrainingValues {
  y: number[]; mean: number[]; variance: number[];
  dx: number[]; dgamma: number[]; dbeta: number[];
}

/** batchNormTrain with the problem's mask (browser_problems.ts maskOf) and the tape gradients of Σy·dy. */
export type MaskedResult = TrainingValues;

/** tf.memory() fields the leak check compares. */
export interface MemorySnapshot {
  numTensors: number;
  numDataBuffers: number;
  /** Bytes of textures (webgl) or buffers (webgpu) held by live tensors; 0 elsewhere. */
  numBytesInGPU: number;
}

/** A half-float check: the input as the GPU holds it, and the layers' training-mode outputs. */
export interface HalfFloatResult {
  /** x and dy read back from the GPU (rounded to float16 by the upload). */
  x: number[];
  dy: number[];
  ours: {y: number[]; dx: number[]; mean: number[]; variance: number[]};
  stock: {y: number[]};
  /** Whether tfjs-backend-webgl used half-float textures. */
  halfFloat: boolean;
}

/** How the wasm backend runs in this page. */
export interface WasmInfo {
  threads: number;
  /** The backend's memory is a SharedArrayBuffer (tfjs's multi-threaded build). */
  sharedMemory: boolean;
  /** The SIMD module instantiated on that memory (simd.ts). */
  simdLoops: boolean;
  /** Tensor views the backend hands to kernels lie in that memory's current buffer (the SIMD loops' precondition). */
  viewsInMemory: boolean;
}

/** The page's API. */
export interface KernelLab {
  mode: string;
  backends(): string[];
  run(problem: Problem, backend: string): Promise<ProblemResult>;
  /** run() with the problem and the result as toJson text (fast to move in and out of the page). */
  runJson(problem: string, backend: string): Promise<string>;
  /**
   * Runs a problem three times and returns tf.memory() after the first and after the third run, and
   * while a small tensor lives on the backend (to show the GPU byte counter counts).
   */
  memory(problem: Problem, backend: string): Promise<{before: MemorySnapshot; after: MemorySnapshot; holding: MemorySnapshot}>;
  halfFloat(shape: number[], center: number, spread: number, seed: number): Promise<HalfFloatResult>;
  wasmInfo(): Promise<WasmInfo>;
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
if (mode === 'wasm') {
  setWasmPaths('/wasm/');
  setThreadsCount(2);  // tfjs would pick 1 thread on a 2-core machine; the build is the threaded one either way
}

async function use(backend: string): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  await tf.ready();
}

async function arrays(ts: Array<tf.Tensor | null>): Promise<number[][]> {
  return Promise.all(ts.map(async t => (t == null ? [] : Array.from(await t.data()))));
}

function names(profile: {kernels: Array<{name: string}>}): string[] {
  return profile.kernels.map(k => k.name);
}

/** The training-mode loss Σy·dy + Σmean·dmean + Σvariance·dvariance, through the op and tfjs's tape. */
function trainingLoss(p: Problem, dy: tf.Tensor, dmean: tf.Tensor | null, dvariance: tf.Tensor | null) {
  return (x: tf.Tensor, gamma: tf.Tensor | null, beta: tf.Tensor | null) => {
    const r = batchNormTrain(x, gamma, beta, {axis: p.axis, epsilon: p.epsilon});
    let total = tf.sum(tf.mul(r.y, dy));
    if (dmean != null) total = tf.add(total, tf.sum(tf.mul(r.mean, dmean)));
    if (dvariance != null) total = tf.add(total, tf.sum(tf.mul(r.variance, dvariance)));
    return total;
  };
}

/** Differentiates f(x, gamma?, beta?, …) for the tensors that are not null; returns one gradient per argument (null where none). */
function gradsFor(f: (...args: Array<tf.Tensor | null>) => tf.Tensor, args: Array<tf.Tensor | null>): Array<tf.Tensor | null> {
  const given = args.filter((t): t is tf.Tensor => t != null);
  const grads = tf.grads((...ts: tf.Tensor[]) => {
    let next = 0;
    return f(...args.map(a => (a == null ? null : ts[next++])));
  })(given);
  let next = 0;
  return args.map(a => (a == null ? null : grads[next++]));
}

async function run(p: Problem, backend: string): Promise<ProblemResult> {
  await use(backend);
  const opts = {axis: p.axis, epsilon: p.epsilon};
  const perChannel = (v: number[] | null) => (v == null ? null : tf.tensor1d(v));
  // A packed op's output (on webgl: tfjs's binary ops write packed textures), or the uploaded values.
  const viaOp = (t: tf.Tensor) => { const out = tf.tidy(() => tf.add(t, tf.scalar(0))); t.dispose(); return out; };
  const x = p.layout === 'unpacked' ? tf.tensor(p.x, p.shape) : viaOp(tf.tensor(p.x, p.shape));
  const dy = p.layout === 'packed' ? viaOp(tf.tensor(p.dy, p.shape)) : tf.tensor(p.dy, p.shape);
  const gamma = perChannel(p.gamma);
  const beta = perChannel(p.beta);
  const dmean = perChannel(p.dmean);
  const dvariance = perChannel(p.dvariance);
  const movingMean = tf.tensor1d(p.movingMean);
  const movingVariance = tf.tensor1d(p.movingVariance);
  const held: Array<tf.Tensor | null> = [x, dy, gamma, beta, dmean, dvariance, movingMean, movingVariance];
  // As the kernels will find them (an uploaded tensor has no texture until its first use).
  const packed = {x: isPacked(x), dy: isPacked(dy)};
  const keep = <T extends tf.Tensor | null>(t: T): T => { held.push(t); return t; };
  try {
    // tf.profile reuses one ProfileInfo object: take the names before the next profile.
    let profile = await tf.profile(() => {
      const r = batchNormTrain(x, gamma, beta, opts);
      return [r.y, r.mean, r.variance];
    });
    const trainKernels = names(profile);
    const [y, mean, variance] = (profile.result as tf.Tensor[]).map(keep);
    profile = await tf.profile(() => {
      if (p.gradients === 'tape') {
        const loss = trainingLoss(p, dy, dmean, dvariance);
        return gradsFor((...a) => loss(a[0]!, a[1], a[2]), [x, gamma, beta]).map(g => g ?? tf.zeros([0]));
      }
      // The gradient kernel itself, with the gradients of the mean and variance outputs (zeros when absent).
      const zeros = () => tf.zerosLike(mean);
      return tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD_KERNEL, {dy, x, gamma: gamma ?? tf.onesLike(mean), variance,
        dmean: dmean ?? zeros(), dvariance: dvariance ?? zeros()}, {axis: normalizedAxes(p), epsilon: p.epsilon}) as tf.Tensor[];
    });
    const gradKernels = names(profile);
    const [dx, dgamma, dbeta] = (profile.result as Array<tf.Tensor | null>).map(keep);
    profile = await tf.profile(() => batchNormInfer(x, movingMean, movingVariance, gamma, beta, opts));
    const inferKernels = names(profile);
    const inferY = keep(profile.result as tf.Tensor);
    const inferGrads = (p.inferGradients ?
      gradsFor((...a) => tf.sum(tf.mul(batchNormInfer(a[0]!, a[1]!, a[2]!, a[3], a[4], opts), dy)),
          [x, movingMean, movingVariance, gamma, beta]) : []).map(keep);
    const [ys, means, variances, dxs, dgammas, dbetas, inferYs, ...inferGradients] =
        await arrays([y, mean, variance, dx, gamma == null ? null : dgamma, beta == null ? null : dbeta, inferY, ...inferGrads]);
    const [idx = [], idm = [], idv = [], idg = [], idb = []] = inferGradients;
    const step = p.step ? await layerStep(p, x, dy) : null;
    const masked = p.masked ? await maskedTraining(p, x, dy) : null;
    return {
      step, masked,
      backend: tf.getBackend(),
      packed,
      train: {y: ys, mean: means, variance: variances},
      trainGrads: {dx: dxs, dgamma: dgammas, dbeta: dbetas},
      inferY: inferYs,
      inferGrads: {dx: idx, dmean: idm, dvariance: idv, dgamma: idg, dbeta: idb},
      kernels: {train: trainKernels, trainGrads: gradKernels, infer: inferKernels},
    };
  } finally {
    tf.dispose(held.filter((t): t is tf.Tensor => t != null));
  }
}

/** Differentiates f for the tensors that are not null, with dy as the upstream gradient; returns one gradient per argument ([] where null). */
function upstreamGrads(f: (...args: Array<tf.Tensor | null>) => tf.Tensor, args: Array<tf.Tensor | null>, dy: tf.Tensor): Array<tf.Tensor | null> {
  const given = args.filter((t): t is tf.Tensor => t != null);
  const grads = tf.grads((...ts: tf.Tensor[]) => {
    let next = 0;
    return f(...args.map(a => (a == null ? null : ts[next++])));
  })(given, dy);
  let next = 0;
  return args.map(a => (a == null ? null : grads[next++]));
}

/** See StepResult. */
async function layerStep(p: Problem, x: tf.Tensor, dy: tf.Tensor): Promise<StepResult> {
  const held: Array<tf.Tensor | null> = [];
  const keep = <T extends tf.Tensor | null>(t: T): T => { held.push(t); return t; };
  // [channels, 1], packed (the output of a packed op on webgl) unless the problem's layout is unpacked.
  const column = (v: number[] | null) => {
    if (v == null) return null;
    const t = tf.tensor2d(v, [v.length, 1]);
    if (p.layout === 'unpacked') return keep(t);
    const out = tf.tidy(() => tf.add(t, tf.scalar(0)));
    t.dispose();
    return keep(out);
  };
  try {
    const [gamma, beta, movingMean, movingVariance] = [p.gamma, p.beta, p.movingMean, p.movingVariance].map(column);
    const args = () => checkCommon('page', x, p.axis, p.epsilon);
    const forward = () => tf.profile(() => {
      const r = trainStep(args(), gamma, beta, {moving: {mean: movingMean!, variance: movingVariance!, momentum: STEP_MOMENTUM}});
      return [r.y, r.mean, r.variance, r.updated!.movingMean, r.updated!.movingVariance];
    });
    const profile = await forward();
    const kernels = names(profile);
    const outputs = (profile.result as tf.Tensor[]).map(keep);
    tf.env().set(BASE_INTERFACE_FLAG, true);
    const baseProfile = await forward().finally(() => tf.env().set(BASE_INTERFACE_FLAG, false));
    const baseKernels = names(baseProfile);
    const [baseY, , , baseMean, baseVariance] = (baseProfile.result as tf.Tensor[]).map(keep);
    const grads = upstreamGrads((...a) => trainStep({...args(), x: a[0]!}, a[1], a[2]).y, [x, gamma, beta], dy).map(keep);
    const inferY = keep(batchNormInfer(x, movingMean!, movingVariance!, gamma, beta, {axis: p.axis, epsilon: p.epsilon}));
    const [y, mean, variance, mm, mv, dx, dgamma, dbeta, iy, by, bm, bv] = await arrays([...outputs, ...grads, inferY, baseY, baseMean, baseVariance]);
    return {y, mean, variance, movingMean: mm, movingVariance: mv, dx, dgamma, dbeta, inferY: iy, kernels,
      base: {y: by, movingMean: bm, movingVariance: bv, kernels: baseKernels},
      shapes: {movingMean: outputs[3].shape, dgamma: grads[1]?.shape ?? []}};
  } finally {
    tf.dispose(held.filter((t): t is tf.Tensor => t != null));
  }
}

/** See MaskedResult. */
async function maskedTraining(p: Problem, x: tf.Tensor, dy: tf.Tensor): Promise<MaskedResult> {
  const mask = tf.tensor(maskOf(p), p.shape.slice(0, -1), 'bool');
  const perChannel = (v: number[] | null) => (v == null ? null : tf.tensor1d(v));
  const [gamma, beta] = [perChannel(p.gamma), perChannel(p.beta)];
  const held: Array<tf.Tensor | null> = [mask, gamma, beta];
  try {
    const opts = {axis: p.axis, epsilon: p.epsilon, mask};
    const r = batchNormTrain(x, gamma, beta, opts);
    held.push(r.y, r.mean, r.variance);
    const grads = upstreamGrads((...a) => batchNormTrain(a[0]!, a[1], a[2], opts).y, [x, gamma, beta], dy);
    held.push(...grads);
    const [y, mean, variance, dx, dgamma, dbeta] = await arrays([r.y, r.mean, r.variance, ...grads]);
    return {y, mean, variance, dx, dgamma, dbeta};
  } finally {
    tf.dispose(held.filter((t): t is tf.Tensor => t != null));
  }
}

/** Whether a tensor's webgl texture is packed (false on other backends). */
function isPacked(t: tf.Tensor): boolean {
  if (tf.getBackend() !== 'webgl') return false;
  const backend = tf.backend() as unknown as {texData: {get(dataId: object): {isPacked?: boolean}}};
  return backend.texData.get(t.dataId).isPacked === true;
}

/** The problem's channel axes, sorted and non-negative (the kernels' attribute). */
function normalizedAxes(p: Problem): number[] {
  return (Array.isArray(p.axis) ? p.axis : [p.axis]).map(a => (a < 0 ? a + p.shape.length : a)).sort((a, b) => a - b);
}

function snapshot(): MemorySnapshot {
  const m = tf.memory() as tf.MemoryInfo & {numBytesInGPU?: number};
  return {numTensors: m.numTensors, numDataBuffers: m.numDataBuffers, numBytesInGPU: m.numBytesInGPU ?? 0};
}

async function memory(p: Problem, backend: string): Promise<{before: MemorySnapshot; after: MemorySnapshot; holding: MemorySnapshot}> {
  await run(p, backend);  // compiles every program and fills the texture/buffer pools
  const before = snapshot();
  await run(p, backend);
  await run(p, backend);
  const after = snapshot();
  const probe = tf.tidy(() => tf.add(tf.ones([65536]), tf.scalar(1)));
  await probe.data();
  const holding = snapshot();
  probe.dispose();
  return {before, after, holding};
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
    const stored = [tf.add(x, tf.scalar(0)), tf.add(dy, tf.scalar(0))];  // as the GPU holds them
    held.push(...stored);
    const yOurs = ours.apply(x, {training: true}) as tf.Tensor;
    const yStock = stock.apply(x, {training: true}) as tf.Tensor;
    held.push(yOurs, yStock);
    const r = batchNormTrain(x, null, null, {});
    held.push(r.y, r.mean, r.variance);
    const dx = tf.grad((xs: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(xs, null, null, {}).y, dy)))(x);
    held.push(dx);
    const [xq, dyq, y, mean, variance, dxs, ys] = await arrays([...stored, yOurs, r.mean, r.variance, dx, yStock]);
    return {x: xq, dy: dyq, ours: {y, dx: dxs, mean, variance}, stock: {y: ys}, halfFloat: !tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED')};
  } finally {
    tf.dispose(held);
    ours.dispose();
    stock.dispose();
  }
}

async function wasmInfo(): Promise<WasmInfo> {
  await use('wasm');
  const backend = tf.backend() as unknown as {typedArrayFromHeap(t: tf.Tensor): Float32Array;
    wasm: {wasmMemory?: WebAssembly.Memory; asm?: {memory?: WebAssembly.Memory}; _get_threads_count?: () => number}};
  const memoryObject = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  const probe = tf.ones([1024]);
  try {
    return {
      threads: backend.wasm._get_threads_count?.() ?? 1,
      sharedMemory: typeof SharedArrayBuffer !== 'undefined' && memoryObject?.buffer instanceof SharedArrayBuffer,
      simdLoops: simdLoopsAvailable(backend.wasm),
      viewsInMemory: backend.typedArrayFromHeap(probe).buffer === memoryObject?.buffer,
    };
  } finally {
    probe.dispose();
  }
}

function availableBackends(): string[] {
  return Object.keys(tf.engine().registryFactory);
}

try {
  const runJson = async (problem: string, backend: string) => toJson(await run(fromJson<Problem>(problem), backend));
  window.kernelLab = {mode, backends: availableBackends, run, runJson, memory, halfFloat, wasmInfo};
} catch (e) {
  window.kernelLabError = e instanceof Error ? e.message : String(e);
}
