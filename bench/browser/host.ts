/**
 * `npm run bench -- --browser`: bundles page.ts, serves it cross-origin isolated, runs it in
 * headless Chromium (WebGL 2 and WebGPU on SwiftShader, tfjs's threaded wasm build), prints the
 * tables and writes bench/results-browser.{json,md}.
 *
 * SwiftShader is a CPU emulation of a GPU: the ratios and kernel counts carry over to real GPUs,
 * the milliseconds do not (../shared/gpu/README.md times webgpu on a real GPU).
 */
import * as os from 'os';
import {join} from 'path';
import {bundlePage, launchChromium, servePages, WASM_DIR} from '../../__tests__/support/chromium';
import {FOLD_NOTES, markdownFoldTable} from '../fold_report';
import type {Plan} from '../timing';
import {checkBrowserTargets, Machine, markdownConvnet, markdownMachine, markdownSimdTable, markdownTable, markdownTargets, stockNotes, writeResults} from '../report';
import {BenchShape, SHAPES} from '../workloads';
import type {BrowserBenchOptions, BrowserBenchResult} from './page';

/** The backends a browser run can measure. */
export const BROWSER_BACKENDS = ['webgl', 'webgpu', 'wasm'];

/** What run.ts passes on from the command line. */
export interface BrowserRun {
  backends: string[];
  shapes: BenchShape[];
  plan: Plan;
  quick: boolean;
  options: string;
  write: boolean;
  commit: string;
}

const NOTES = `Headless Chromium on **SwiftShader**, a CPU emulation of a GPU (WebGL 2 through ANGLE, WebGPU through
Dawn): the kernel counts and the ratios between contenders carry over to real GPUs, the milliseconds do
not — on a GPU, dispatch overhead dominates and fewer kernels matter more (../shared/gpu/README.md times
webgpu on a real GPU). Each GPU step is timed until one value of each result has been read back, so the
GPU work is inside the time. Times are medians (tinybench, ours and stock interleaved round by round,
after warm-up). *training* is the forward pass in training mode with the moving-statistics update, plus
the gradients of sum(y·dy) for x, gamma and beta; *inference* is the layer with \`training: false\`.
Kernels: tf.profile of one call. "wrong results" / "fails": the stock layer disagrees with ours beyond
1e-3 relative / throws. The wasm rows are tfjs's multi-threaded SIMD build (the page is cross-origin
isolated), with this package's SIMD loops in its shared memory.`;

const CONVNET_NOTES = `One training epoch (\`model.fit\`, SGD, batch 64, random 28×28×1 images) of the \`npm start\` convnet
(examples/mnist_model.ts: conv(16)–norm–relu–pool, conv(32)–norm–relu–pool, dense(64)–norm–relu, dense(10)):
without normalization and without biases (so that it differs from the normalized networks by the
batch-norm layers alone), without normalization with biases (as \`npm start\` builds it, for reference),
with the stock \`tf.layers.batchNormalization\`, with ours; medians of the timed epochs after one untimed
epoch each (shader compilation), models alternating. Fewer images on webgpu, whose conv2d gradients are
about 10× slower than webgl's on SwiftShader. "adds" is the epoch time over the model without
normalization and biases; on a busy machine epochs vary by about ±10%, so an overhead below that
reads as noise (even negative).`;

const FOLD_GPU_NOTE = `On webgl each prediction is timed until one value of it has been read back (the GPU work
inside the time), on SwiftShader: the kernel counts carry over to real GPUs, the milliseconds do not.`;

function browserMachine(result: BrowserBenchResult, run: BrowserRun, loadBefore: number): Machine {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.arch()}`, node: process.version, tfjs: '4.22.0', wasmSimd: true,
    wasmThreads: result.environment.some(e => e.startsWith('wasm: multi-threaded')), date: new Date().toISOString(),
    commit: run.commit, options: run.options, skipped: result.skipped,
    loadAverage: [loadBefore, os.loadavg()[0]].map(l => Math.round(l * 100) / 100),
    browser: result.environment.join('; '),
  };
}

/** Runs the browser benchmark and reports it like the Node one. */
export async function runBrowserBench(run: BrowserRun): Promise<void> {
  const loadBefore = os.loadavg()[0];
  const bundleDir = join(os.tmpdir(), 'tfjs-batchnorm-bench');
  await bundlePage(join(__dirname, 'page.ts'), join(bundleDir, 'bench.js'));
  const server = await servePages('/dist/bench.js', {'/dist/': bundleDir, '/wasm/': WASM_DIR});
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.on('console', m => { if (m.type() === 'log') console.log(m.text()); });
    const errors: string[] = [];
    page.on('pageerror', e => errors.push(e.message));
    await page.goto(`${server.url}index.html`);
    await page.waitForFunction(() => window.benchPage != null, undefined, {timeout: 60_000});
    // The convnet epochs are part of a run over every shape (they take minutes on SwiftShader).
    const convnet = run.shapes.length < SHAPES.length ? 'none' : run.quick ? 'quick' : 'full';
    const options: BrowserBenchOptions = {backends: run.backends, shapeIds: run.shapes.map(s => s.id), plan: run.plan, convnet,
      fold: convnet !== 'none'};
    const result = await page.evaluate(o => window.benchPage!.run(o), options);
    if (errors.length > 0) throw new Error(`the benchmark page failed: ${errors.join('; ')}`);
    const machine = browserMachine(result, run, loadBefore);
    const checks = checkBrowserTargets(result.rows, result.convnet);
    const convnetTable = markdownConvnet(result.convnet);
    console.log(`\n${markdownMachine(machine)}\n\n${markdownTable(result.rows)}\n`);
    for (const note of stockNotes(result.rows)) console.log(note);
    const simd = markdownSimdTable(result.rows);
    if (simd) console.log(`\nWhat the SIMD WebAssembly loops buy (threaded wasm, our layer):\n${simd}`);
    if (result.convnet.length > 0) console.log(`\nConvnet epoch:\n${convnetTable}`);
    const foldTable = markdownFoldTable(result.fold);
    if (result.fold.length > 0) console.log(`\nFolding batch norm (webgl inference, before and after foldBatchNorm):\n${foldTable}`);
    console.log(`\nTargets (issue 13):\n${markdownTargets(checks)}`);
    if (run.write) {
      writeResults(join(__dirname, '..'), machine, result.rows, checks, {
        basename: 'results-browser', title: 'Browser benchmark results (headless Chromium, SwiftShader)', notes: NOTES,
        sections: [...(result.convnet.length > 0 ? [`## Batch norm in a convnet epoch\n\n${convnetTable}\n\n${CONVNET_NOTES}`] : []),
          ...(result.fold.length > 0 ? [`## Folding batch norm (webgl inference)\n\n${foldTable}\n\n${FOLD_NOTES} ${FOLD_GPU_NOTE}`] : [])],
        targetsTitle: 'Targets (issue 13, at [32,32,32,64])', extra: {convnet: result.convnet, fold: result.fold},
      });
      console.log('\nwrote bench/results-browser.json and bench/results-browser.md');
    }
    // A negative count is not a leak: tensors of earlier work were freed while a timed call ran
    // (seen on the small shapes on webgl and webgpu, with or without this package's kernels).
    for (const r of result.rows.filter(row => (row.ours.leakedTensors ?? 0) < 0)) {
      console.log(`warning: ${r.backend} ${r.shape} ${r.mode}: ${-(r.ours.leakedTensors ?? 0)} tensors were freed while ours was timed`);
    }
    const leaks = result.rows.filter(r => (r.ours.leakedTensors ?? 0) > 0);
    for (const r of leaks) console.error(`error: ours ${r.backend} ${r.shape} ${r.mode} leaked ${r.ours.leakedTensors} tensors`);
    const foldLeaks = result.fold.filter(f => f.leakedTensors > 0);
    for (const r of foldLeaks) console.error(`error: ${r.backend} ${r.workload} leaked ${r.leakedTensors} tensors while timed`);
    if (leaks.length > 0 || foldLeaks.length > 0) process.exitCode = 1;
  } finally {
    await browser.close();
    await server.close();
  }
}
