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
import {Bench} from 'tinybench';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {backendAvailability, BackendName} from '../__tests__/support/backends';
import {maxRelativeError} from '../__tests__/support/golden';
import {checkTargets, ContenderResult, Machine, markdownMachine, markdownSimdTable, markdownTable, markdownTargets, Mode, Row, stockNotes, writeResults} from './report';
import {markdownVariantTable, VARIANT_NOTES, VariantRow, variantTargetSummary} from './variants';
import {BenchShape, Contender, ContenderName, Inputs, inferenceStep, makeContender, makeInputs, SHAPES, trainingStep} from './workloads';

/** How long to measure: rounds alternate the contenders; each round runs each task ≥ minIterations and ≥ timeMs. */
interface Plan {
  rounds: number;
  minIterations: number;
  timeMs: number;
  warmupIterations: number;
  warmupMs: number;
}

// Five short rounds rather than one long one: other processes' bursts then hit a few samples, not a median.
const FULL: Plan = {rounds: 5, minIterations: 2, timeMs: 200, warmupIterations: 1, warmupMs: 300};
const QUICK: Plan = {rounds: 1, minIterations: 1, timeMs: 50, warmupIterations: 1, warmupMs: 0};

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

/** Median of samples pooled over rounds. */
function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Times `names` on one (shape, mode), interleaved round by round, and profiles one call of each. */
async function measure(names: ContenderName[], mode: Mode, shape: BenchShape, inputs: Inputs, plan: Plan):
    Promise<Map<ContenderName, ContenderResult>> {
  const contenders = names.map(name => makeContender(name, shape));
  const samples = new Map<ContenderName, number[]>(names.map(n => [n, []]));
  const leaked = new Map<ContenderName, number>(names.map(n => [n, 0]));
  const step = STEPS[mode];
  try {
    for (let round = 0; round < plan.rounds; round++) {
      const bench = new Bench({
        iterations: plan.minIterations, time: plan.timeMs, warmup: round === 0,
        warmupIterations: plan.warmupIterations, warmupTime: plan.warmupMs, retainSamples: true, throws: true,
      });
      // Alternate the order, so slow drift (heat, GC pressure, other processes) hits all alike.
      const order = round % 2 === 0 ? contenders : [...contenders].reverse();
      for (const c of order) {
        let before = 0;
        bench.add(c.name, () => tf.dispose(step(c, inputs)), {
          beforeAll: () => { before = tf.memory().numTensors; },
          afterAll: () => { leaked.set(c.name, leaked.get(c.name)! + tf.memory().numTensors - before); },
        });
      }
      bench.runSync();
      for (const task of bench.tasks) {
        const result = task.result;
        if (!('latency' in result) || result.latency.samples == null) throw new Error(`${task.name}: no samples (${result.state})`);
        samples.get(task.name as ContenderName)!.push(...result.latency.samples);
      }
    }
    const results = new Map<ContenderName, ContenderResult>();
    for (const c of contenders) {
      const startBytes = tf.memory().numBytes;
      const profile = await tf.profile(() => { tf.dispose(step(c, inputs)); });
      const all = samples.get(c.name)!;
      results.set(c.name, {status: 'ok', medianMs: median(all), samples: all.length,
        peakBytes: Math.max(0, profile.peakBytes - startBytes), kernels: profile.kernels.length, leakedTensors: leaked.get(c.name)});
    }
    return results;
  } finally {
    for (const c of contenders) c.dispose();
  }
}

/** Issue 11: a training step with renorm and with ghost batches against a plain one, interleaved. */
async function benchVariants(backend: BackendName, shape: BenchShape, inputs: Inputs, plan: Plan, variantRows: VariantRow[]): Promise<void> {
  const measured = await measure(['ours', 'ours-renorm', 'ours-ghost'], 'training', shape, inputs, plan);
  const row: VariantRow = {backend, shape: shape.id, shapeLabel: shape.label, plain: measured.get('ours')!,
    renorm: measured.get('ours-renorm')!, ghost: measured.get('ours-ghost')!};
  variantRows.push(row);
  console.log(`  ${backend} ${shape.label} training: plain ${row.plain.medianMs!.toFixed(2)} ms, renorm ${row.renorm.medianMs!.toFixed(2)} ms, ` +
    `ghost batches ${row.ghost.medianMs!.toFixed(2)} ms`);
}

async function benchBackend(backend: BackendName, shapes: BenchShape[], plan: Plan, rows: Row[], variantRows: VariantRow[]): Promise<void> {
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
      await benchVariants(backend, shape, inputs, plan, variantRows);
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
    write: {type: 'boolean', default: false},
    help: {type: 'boolean', default: false},
  }});
  if (values.help) {
    console.log('npm run bench -- [--quick] [--backend cpu,wasm,tensorflow] [--shape nhwc,nchw,dense,rank5] [--write]\n' +
      '  --quick  one short round (a smoke run; numbers are rough)\n' +
      '  --write  write bench/results.{json,md} even for a quick or partial run (a full run always writes)');
    return;
  }
  const backends = listOption(values.backend, ['cpu', 'wasm', 'tensorflow'], 'backend') as BackendName[];
  const shapes = SHAPES.filter(s => listOption(values.shape, SHAPES.map(x => x.id), 'shape').includes(s.id));
  const plan = values.quick ? QUICK : FULL;
  const options = process.argv.slice(2).join(' ');
  const skipped: string[] = [];
  const rows: Row[] = [];
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
    await benchBackend(backend, shapes, plan, rows, variantRows);
  }
  const machine = await machineInfo(options, skipped, loadBefore);
  const checks = checkTargets(rows);
  console.log(`\n${markdownMachine(machine)}\n\n${markdownTable(rows)}\n`);
  for (const note of stockNotes(rows)) console.log(note);
  console.log(`\nTargets (issue 4, at [32,32,32,64]):\n${markdownTargets(checks)}`);
  const simd = markdownSimdTable(rows);
  if (simd) console.log(`\nWhat the SIMD WebAssembly loops buy (wasm backend, our layer):\n${simd}`);
  const variants = `${markdownVariantTable(variantRows)}\n\n${VARIANT_NOTES}\n\n${variantTargetSummary(variantRows)}`;
  console.log(`\nBatch Renormalization and ghost batches (training step):\n${variants}`);
  const leaks = rows.filter(r => (r.ours.leakedTensors ?? 0) !== 0 || (r.oursJs?.leakedTensors ?? 0) !== 0);
  for (const r of variantRows.filter(v => (v.renorm.leakedTensors ?? 0) !== 0 || (v.ghost.leakedTensors ?? 0) !== 0)) {
    console.error(`error: ours ${r.backend} ${r.shape} renorm/ghost leaked ${r.renorm.leakedTensors}/${r.ghost.leakedTensors} tensors`);
    process.exitCode = 1;
  }
  for (const r of rows.filter(r => (r.stock.leakedTensors ?? 0) !== 0)) {
    console.log(`warning: stock ${r.backend} ${r.shape} ${r.mode} leaked ${r.stock.leakedTensors} tensors while timed`);
  }
  if (!values.quick && values.backend == null && values.shape == null || values.write) {
    writeResults(__dirname, machine, rows, checks, {variants: variantRows}, [
      '## Batch Renormalization and ghost batches (issue 11): training step vs plain', '', variants, '']);
    console.log('\nwrote bench/results.json and bench/results.md');
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
