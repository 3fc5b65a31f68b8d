/**
 * `npm run bench [-- --quick] [--backend cpu,wasm] [--shape nhwc,nchw] [--suite …] [--write] [--browser]`
 *
 * Times this package's batch norm against the stock tf.layers.batchNormalization (issue 4) with
 * tinybench (measure.ts, timing.ts): both contenders in the same process, interleaved round by
 * round, warm-up first, medians of the pooled samples; peak bytes and kernel counts from tf.profile;
 * prints the table and, for a full default run (or with --write), writes bench/results.json and
 * bench/results.md. `--browser` runs the layer rows in headless Chromium instead (browser/host.ts:
 * webgl, webgpu, threaded wasm, plus a convnet epoch) and writes bench/results-browser.{json,md}.
 */
import * as os from 'os';
import {execSync} from 'child_process';
import {parseArgs} from 'util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {backendAvailability, BackendName} from '../__tests__/support/backends';
import {BROWSER_BACKENDS, runBrowserBench} from './browser/host';
import {benchFold, FoldRow} from './fold';
import {markdownFoldTable, writeFoldResults} from './fold_report';
import {benchBackend} from './measure';
import {checkTargets, Machine, markdownMachine, markdownSimdTable, markdownTable, markdownTargets, Row, stockNotes, writeResults} from './report';
import {FULL, Plan, QUICK} from './timing';
import {benchVariants, markdownVariantTable, VariantRow, variantTargetSummary, writeVariantResults} from './variants';
import {BenchShape, SHAPES} from './workloads';

async function benchNodeBackend(backend: BackendName, shapes: BenchShape[], plan: Plan, rows: Row[]): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialize`);
  await tf.ready();
  rows.push(...await benchBackend(backend, shapes, plan));
}

function commitHash(): string {
  try {
    return execSync('git rev-parse --short HEAD', {cwd: __dirname, stdio: ['ignore', 'pipe', 'ignore']}).toString().trim();
  } catch {
    return 'unknown';  // not a git checkout
  }
}

async function machineInfo(options: string, skipped: string[], loadBefore: number): Promise<Machine> {
  const commit = commitHash();
  const wasmFlag = async (flag: string) => {
    try {
      return Boolean(await tf.env().getAsync(flag));
    } catch {
      return false;
    }
  };
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.arch()}`, node: process.version, tfjs: tf.version.tfjs,
    wasmSimd: await wasmFlag('WASM_HAS_SIMD_SUPPORT'), wasmThreads: await wasmFlag('WASM_HAS_MULTITHREAD_SUPPORT'),
    date: new Date().toISOString(), commit, options, skipped,
    loadAverage: [loadBefore, os.loadavg()[0]].map(l => Math.round(l * 100) / 100),
  };
}

function listOption(value: string | undefined, all: string[], what: string): string[] {
  if (value == null) return all;
  const list = value.split(',').map(s => s.trim()).filter(Boolean);
  const unknown = list.filter(v => !all.includes(v));
  if (unknown.length > 0) throw new Error(`--${what}: unknown ${unknown.join(', ')} (expected one or more of ${all.join(', ')})`);
  return list;
}

async function main(): Promise<void> {
  const {values} = parseArgs({options: {
    quick: {type: 'boolean', default: false},
    backend: {type: 'string'},
    shape: {type: 'string'},
    suite: {type: 'string'},
    write: {type: 'boolean', default: false},
    browser: {type: 'boolean', default: false},
    help: {type: 'boolean', default: false},
  }});
  if (values.help) {
    console.log('npm run bench -- [--quick] [--backend cpu,wasm,tensorflow] [--shape nhwc,nchw,dense,rank5,small-dense,small-nhwc] [--suite layer,fold,variants] [--write]\n' +
      '  --quick  one short round (a smoke run; numbers are rough)\n' +
      '  --suite  layer: our layer vs the stock one; fold: inference before and after foldBatchNorm;\n' +
      '           variants: training steps with renorm and ghost batches vs plain (default: all)\n' +
      '  --write  write bench/results.{json,md} even for a quick or partial run (a full run always writes)\n' +
      `  --browser  the layer rows in headless Chromium (--backend ${BROWSER_BACKENDS.join(',')}), plus a convnet epoch; ` +
      'writes bench/results-browser.{json,md}');
    return;
  }
  const shapes = SHAPES.filter(s => listOption(values.shape, SHAPES.map(x => x.id), 'shape').includes(s.id));
  const plan = values.quick ? QUICK : FULL;
  const options = process.argv.slice(2).join(' ');
  if (values.browser) {
    const backends = listOption(values.backend, BROWSER_BACKENDS, 'backend');
    const write = !values.quick && values.backend == null && values.shape == null || values.write;
    await runBrowserBench({backends, shapes, plan, quick: values.quick, options, write: write === true, commit: commitHash()});
    return;
  }
  const backends = listOption(values.backend, ['cpu', 'wasm', 'tensorflow'], 'backend') as BackendName[];
  const suites = listOption(values.suite, ['layer', 'fold', 'variants'], 'suite');
  const skipped: string[] = [];
  const rows: Row[] = [];
  const foldRows: FoldRow[] = [];
  const variantRows: VariantRow[] = [];
  const loadBefore = os.loadavg()[0];
  tf.env().set('PROD', true);  // no debug-mode checks inside the timings
  for (const backend of backends) {
    const {available, reason} = backendAvailability(backend);
    if (!available) {
      skipped.push(`${backend} backend (${reason})`);
      console.log(`skipping ${backend}: ${reason}`);
      continue;
    }
    console.log(`${backend}:`);
    if (suites.includes('layer')) await benchNodeBackend(backend, shapes, plan, rows);
    if (suites.includes('fold')) foldRows.push(...await benchFold(backend, plan));
    if (suites.includes('variants')) variantRows.push(...await benchVariants(backend, shapes, plan));
  }
  const machine = await machineInfo(options, skipped, loadBefore);
  const checks = checkTargets(rows);
  console.log(`\n${markdownMachine(machine)}\n`);
  if (suites.includes('layer')) {
    console.log(`${markdownTable(rows)}\n`);
    for (const note of stockNotes(rows)) console.log(note);
    console.log(`\nTargets (issue 4 at [32,32,32,64]; issue 14 at the small shapes):\n${markdownTargets(checks)}`);
    const simd = markdownSimdTable(rows);
    if (simd) console.log(`\nWhat the SIMD WebAssembly loops buy (wasm backend, our layer):\n${simd}`);
  }
  const leaks = rows.filter(r => (r.ours.leakedTensors ?? 0) !== 0 || (r.oursJs?.leakedTensors ?? 0) !== 0);
  for (const r of rows.filter(r => (r.stock.leakedTensors ?? 0) !== 0)) {
    console.log(`warning: stock ${r.backend} ${r.shape} ${r.mode} leaked ${r.stock.leakedTensors} tensors while timed`);
  }
  const write = !values.quick && values.backend == null && values.shape == null && values.suite == null || values.write;
  if (write && suites.includes('layer')) {
    writeResults(__dirname, machine, rows, checks);
    console.log('\nwrote bench/results.json and bench/results.md');
  }
  if (suites.includes('fold')) {
    console.log(`\nFolding batch norm (inference, before and after foldBatchNorm):\n${markdownFoldTable(foldRows)}`);
    if (write) {
      writeFoldResults(__dirname, markdownMachine(machine), machine, foldRows);
      console.log('wrote bench/fold_results.json and bench/fold_results.md');
    }
    for (const r of foldRows.filter(r => r.leakedTensors !== 0)) {
      console.error(`error: ${r.backend} ${r.workload} leaked ${r.leakedTensors} tensors while timed`);
      process.exitCode = 1;
    }
  }
  if (suites.includes('variants')) {
    console.log(`\nBatch Renormalization and ghost batches (training step vs plain):\n${markdownVariantTable(variantRows)}\n${variantTargetSummary(variantRows)}`);
    if (write) {
      writeVariantResults(__dirname, markdownMachine(machine), machine, variantRows);
      console.log('wrote bench/variant_results.json and bench/variant_results.md');
    }
    for (const r of variantRows.filter(v => v.plain.leakedTensors + v.renorm.leakedTensors + v.ghost.leakedTensors !== 0)) {
      console.error(`error: ours ${r.backend} ${r.shape} plain/renorm/ghost leaked ${r.plain.leakedTensors}/${r.renorm.leakedTensors}/${r.ghost.leakedTensors} tensors while timed`);
      process.exitCode = 1;
    }
  }
  if (leaks.length > 0) {
    for (const r of leaks) {
      console.error(`error: ours ${r.backend} ${r.shape} ${r.mode} leaked ${r.ours.leakedTensors} tensors (JS loops: ${r.oursJs?.leakedTensors ?? 0})`);
    }
    process.exitCode = 1;
  }
}

main().catch(e => {
  console.error(e);
  process.exitCode = 1;
});
