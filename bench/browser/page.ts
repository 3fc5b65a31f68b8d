/**
 * The browser benchmark's page (bundled and driven by host.ts): the rows of the Node benchmark
 * (measure.ts, workloads.ts) on webgl, webgpu and tfjs's multi-threaded wasm build (the page is
 * cross-origin isolated), and the convnet epoch (ours vs stock vs no normalization) on the GPU
 * backends. GPU steps are timed until one value of each result has been read back (readOneValue).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import {setWasmPaths} from '@tensorflow/tfjs-backend-wasm';
import '../../src';
import {simdLoopsAvailable} from '../../src/kernels/simd';
import {benchFold, FoldRow} from '../fold';
import {benchBackend, convnetEpochs, convnetPlan, readOneValue} from '../measure';
import type {Plan} from '../timing';
import type {ConvnetResult, Row} from '../report';
import {SHAPES} from '../workloads';

/** What host.ts asks for. */
export interface BrowserBenchOptions {
  backends: string[];
  shapeIds: string[];
  plan: Plan;
  /** Time convnet epochs (full or quick plan), or not. */
  convnet: 'full' | 'quick' | 'none';
  /** Time the folding workloads (bench/fold.ts) on webgl, before and after foldBatchNorm. */
  fold: boolean;
}

/** What the page measured, and where. */
export interface BrowserBenchResult {
  rows: Row[];
  convnet: ConvnetResult[];
  /** The folding rows (webgl). */
  fold: FoldRow[];
  /** The browser, renderer, adapter and wasm build, in words. */
  environment: string[];
  skipped: string[];
}

declare global {
  interface Window {
    benchPage?: {run(options: BrowserBenchOptions): Promise<BrowserBenchResult>};
  }
}

setWasmPaths('/wasm/');

/** The label of the wasm rows: this page always gets tfjs's threaded build (cross-origin isolated). */
const WASM_LABEL = 'wasm (threads)';

async function describeBackend(backend: string): Promise<string> {
  if (backend === 'webgl') {
    const gl = (tf.backend() as unknown as {gpgpu: {gl: WebGL2RenderingContext}}).gpgpu.gl;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(gl.getParameter(info == null ? gl.RENDERER : info.UNMASKED_RENDERER_WEBGL));
    return `webgl: WebGL ${tf.env().getNumber('WEBGL_VERSION')}, ${renderer}, ${tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED') ? 'float32' : 'float16'} textures`;
  }
  if (backend === 'webgpu') {
    const gpu = (navigator as unknown as {gpu: {requestAdapter(): Promise<{info?: Record<string, string>} | null>}}).gpu;
    const info = (await gpu.requestAdapter())?.info ?? {};
    return `webgpu: adapter ${[info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown'}`;
  }
  const module = (tf.backend() as unknown as {wasm: {wasmMemory?: WebAssembly.Memory; _get_threads_count?: () => number}}).wasm;
  const shared = module.wasmMemory?.buffer instanceof SharedArrayBuffer;
  return `wasm: ${shared ? 'multi-threaded' : 'single-threaded'} SIMD build (${module._get_threads_count?.() ?? 1} threads), ` +
    `this package's SIMD loops ${simdLoopsAvailable(module) ? 'on' : 'OFF (JS loops)'}`;
}

async function run(options: BrowserBenchOptions): Promise<BrowserBenchResult> {
  const result: BrowserBenchResult = {rows: [], convnet: [], fold: [], environment: [navigator.userAgent], skipped: []};
  const shapes = SHAPES.filter(s => options.shapeIds.includes(s.id));
  tf.env().set('PROD', true);  // no debug-mode checks inside the timings
  for (const backend of options.backends) {
    if (!(await tf.setBackend(backend).catch(() => false))) {
      result.skipped.push(`${backend} backend (it did not start in this browser)`);
      continue;
    }
    await tf.ready();
    result.environment.push(await describeBackend(backend));
    console.log(`${backend}:`);
    const gpu = backend !== 'wasm';
    const rows = await benchBackend(backend, shapes, options.plan, gpu ? readOneValue : undefined);
    result.rows.push(...rows.map(r => (gpu ? r : {...r, backend: WASM_LABEL})));
    // tfjs-backend-wasm 4.22 cannot train conv2d (no Conv2DBackpropFilter): the convnet runs on the GPU backends.
    if (options.convnet !== 'none' && gpu) result.convnet.push(...await convnetEpochs(backend, convnetPlan(backend, options.convnet === 'quick')));
    // Issue 12's webgl row: inference before and after foldBatchNorm, each prediction read back.
    if (options.fold && backend === 'webgl') result.fold.push(...await benchFold(backend, options.plan, readOneValue));
  }
  return result;
}

window.benchPage = {run};
