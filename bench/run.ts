/**
 * `npm run bench [-- --quick] [--backend cpu,wasm] [--shape nhwc,nchw] [--write]`
 *
 * Times this package's batch norm against the stock tf.layers.batchNormalization (issue 4) with
 * tinybench: both contenders in the same process, interleaved round by round, warm-up first,
 * medians of the pooled samples; peak bytes and kernel counts from tf.profile; prints the table
 * and, for a full default run (or with --write), writes bench/results.json and bench/results.md.
 */
import * as os from 'os';
import {execSync} from 'child_process';
import {parseArgs} from 'util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {backendAvailability, BackendName} from '../__tests__/support/backends';
import {maxRelativeError} from '../__tests__/support/golden';
import {checkTargets, ContenderResult, Machine, markdownMachine, markdownSimdTable, markdownTable, markdownTargets, Mode, Row, stockNotes, writeResults} from './report';
import {benchFold, FoldRow, markdownFoldTable, writeFoldResults} from './fold';
import {FULL, median, Plan, QUICK, timeInterleaved} from './timing';
import {benchVariants, markdownVariantTable, VariantRow, variantTargetSummary, writeVariantResults} from './variants';
import {BenchShape, Contender, ContenderName, Inputs, inferenceStep, makeContender, makeInputs, SHAPES, trainingStep} from './workloads';

/** Beyond this relative difference (|a−b|/(1+|b|)) from ours, the stock layer's results count as wrong. */
const AGREEMENT_TOLERANCE = 1e-3;

type Step = (c: Contender, inputs: Inputs) => tf.Tensor | tf.Tensor[];
const STEPS: Record<Mode, Step> = {inference: inferenceStep, training: trainingStep};

function errorMessage(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 160);
}

/** Runs one step and returns its outputs as plain arrays (then disposes them). */
function outputsOf(step: Step, c: Contender, inputs: Inputs): Float32Array[] {
  const out = step(c, inputs);
  const list = Array.isArray(out) ? out : [out];
  const values = list.map(t => t.dataSync() as Float32Array);
  tf.dispose(list);
  return values;
}

/**
 * Whether the stock layer runs this step, and agrees with ours. Fresh contenders, so both start
 * from the same weights; a throwing stock layer may leak tensors, which we cannot free.
 */
function compareWithOurs(mode: Mode, shape: BenchShape, inputs: Inputs): ContenderResult {
  const ours = makeContender('ours', shape);
  let stock: Contender | undefined;
  try {
    stock = makeContender('stock', shape);
    const want = outputsOf(STEPS[mode], ours, inputs);
    const got = outputsOf(STEPS[mode], stock, inputs);
    const worst = Math.max(...got.map((g, i) => maxRelativeError(g, want[i])));
    return worst <= AGREEMENT_TOLERANCE ? {status: 'ok'}
      : {status: 'wrong', note: `max relative difference from ours ${worst.toPrecision(2)} (tolerance ${AGREEMENT_TOLERANCE})`};
  } catch (e) {
    return {status: 'fails', note: `throws: ${errorMessage(e)}`};
  } finally {
    ours.dispose();
    stock?.dispose();
  }
}

/** Times `names` on one (shape, mode), interleaved round by round, and profiles one call of each. */
async function measure(names: ContenderName[], mode: Mode, shape: BenchShape, inputs: Inputs, plan: Plan):
    Promise<Map<ContenderName, ContenderResult>> {
  const contenders = names.map(name => makeContender(name, shape));
  const step = STEPS[mode];
  try {
    const timed = timeInterleaved(contenders.map(c => ({name: c.name, run: () => tf.dispose(step(c, inputs))})), plan);
    const results = new Map<ContenderName, ContenderResult>();
    for (const c of contenders) {
      const startBytes = tf.memory().numBytes;
      const profile = await tf.profile(() => { tf.dispose(step(c, inputs)); });
      const {samples, leakedTensors} = timed.get(c.name)!;
      results.set(c.name, {status: 'ok', medianMs: median(samples), samples: samples.length,
        peakBytes: Math.max(0, profile.peakBytes - startBytes), kernels: profile.kernels.length, leakedTensors});
    }
    return results;
  } finally {
    for (const c of contenders) c.dispose();
  }
}

async function benchBackend(backend: BackendName, shapes: BenchShape[], plan: Plan, rows: Row[]): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialize`);
  await tf.ready();
  for (const shape of shapes) {
    const inputs = makeInputs(shape);
    try {
      for (const mode of ['inference', 'training'] as Mode[]) {
        const check = compareWithOurs(mode, shape, inputs);
        const names: ContenderName[] = ['ours', ...(backend === 'wasm' ? ['ours-js' as const] : []),
          ...(check.status === 'fails' ? [] : ['stock' as const])];
        const measured = await measure(names, mode, shape, inputs, plan);
        const row: Row = {backend, shape: shape.id, shapeLabel: shape.label, mode, ours: measured.get('ours')!,
          stock: {...measured.get('stock'), ...check}, ...(measured.has('ours-js') ? {oursJs: measured.get('ours-js')} : {})};
        rows.push(row);
        const stock = row.stock.status === 'fails' ? 'fails' : `${row.stock.medianMs!.toFixed(2)} ms${row.stock.status === 'wrong' ? ' (wrong)' : ''}`;
        const js = row.oursJs ? `, ours with JS loops ${row.oursJs.medianMs!.toFixed(2)} ms` : '';
        console.log(`  ${backend} ${shape.label} ${mode}: ours ${row.ours.medianMs!.toFixed(2)} ms (${row.ours.samples} samples)${js}, stock ${stock}`);
      }
    } finally {
      tf.dispose([inputs.x, inputs.dy]);
    }
  }
}

async function machineInfo(options: string, skipped: string[], loadBefore: number): Promise<Machine> {
  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', {cwd: __dirname, stdio: ['ignore', 'pipe', 'ignore']}).toString().trim();
  } catch { /* not a git checkout: leave unknown */ }
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
    help: {type: 'boolean', default: false},
  }});
  if (values.help) {
    console.log('npm run bench -- [--quick] [--backend cpu,wasm,tensorflow] [--shape nhwc,nchw,dense,rank5,small-dense,small-nhwc] [--suite layer,fold,variants] [--write]\n' +
      '  --quick  one short round (a smoke run; numbers are rough)\n' +
      '  --suite  layer: our layer vs the stock one; fold: inference before and after foldBatchNorm;\n' +
      '           variants: training steps with renorm and ghost batches vs plain (default: all)\n' +
      '  --write  write bench/results.{json,md} even for a quick or partial run (a full run always writes)');
    return;
  }
  const backends = listOption(values.backend, ['cpu', 'wasm', 'tensorflow'], 'backend') as BackendName[];
  const shapes = SHAPES.filter(s => listOption(values.shape, SHAPES.map(x => x.id), 'shape').includes(s.id));
  const suites = listOption(values.suite, ['layer', 'fold', 'variants'], 'suite');
  const plan = values.quick ? QUICK : FULL;
  const options = process.argv.slice(2).join(' ');
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
    if (suites.includes('layer')) await benchBackend(backend, shapes, plan, rows);
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
