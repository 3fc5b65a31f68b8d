/**
 * The folding rows of `npm run bench`: inference (predict on one batch) of each FOLD_WORKLOADS
 * model before and after foldBatchNorm, timed interleaved in one process (timing.ts), with the
 * kernels one call runs and the folded model's agreement with the original. Writes
 * bench/fold_results.{json,md}.
 */
import {writeFileSync} from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import {foldBatchNorm} from '../src';
import {errorRelativeToMagnitude} from '../__tests__/support/deploy_models';
import {FOLD_WORKLOADS} from './fold_workloads';
import {median, Plan, timeInterleaved} from './timing';

/** One workload on one backend, before and after folding. */
export interface FoldRow {
  backend: string;
  workload: string;
  label: string;
  beforeMs: number;
  afterMs: number;
  samples: number;
  kernelsBefore: number;
  kernelsAfter: number;
  batchNormsFolded: number;
  /** max|folded − original| / max|original| on the benchmark batch. */
  error: number;
  leakedTensors: number;
}

const fmtMs = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));

function predictOnce(model: tf.LayersModel, x: tf.Tensor): tf.Tensor {
  // The whole batch in one call (predict would split it into batches of 32).
  return model.predict(x, {batchSize: x.shape[0]}) as tf.Tensor;
}

/** Times every workload before and after folding on `backend`. */
export async function benchFold(backend: string, plan: Plan): Promise<FoldRow[]> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialize`);
  await tf.ready();
  const rows: FoldRow[] = [];
  for (const workload of FOLD_WORKLOADS) {
    const original = workload.build();
    const {model: folded, report} = await foldBatchNorm(original, {report: true});
    const x = tf.randomNormal(workload.inputShape, 0.5, 1, 'float32', 3);
    try {
      const [want, got] = [original, folded].map(m => tf.tidy(() => predictOnce(m, x).dataSync()));
      const timed = timeInterleaved([
        {name: 'before', run: () => predictOnce(original, x).dispose()},
        {name: 'after', run: () => predictOnce(folded, x).dispose()},
      ], plan);
      const kernels = async (m: tf.LayersModel) => (await tf.profile(() => { predictOnce(m, x).dispose(); })).kernels.length;
      const [before, after] = [timed.get('before')!, timed.get('after')!];
      rows.push({
        backend, workload: workload.id, label: workload.label,
        beforeMs: median(before.samples), afterMs: median(after.samples), samples: Math.min(before.samples.length, after.samples.length),
        kernelsBefore: await kernels(original), kernelsAfter: await kernels(folded), batchNormsFolded: report.folded.length,
        error: errorRelativeToMagnitude(got, want), leakedTensors: before.leakedTensors + after.leakedTensors,
      });
      const r = rows[rows.length - 1];
      console.log(`  ${r.backend} ${r.label}: before ${fmtMs(r.beforeMs)} ms, folded ${fmtMs(r.afterMs)} ms (${(r.beforeMs / r.afterMs).toFixed(2)}×)`);
    } finally {
      x.dispose();
      folded.dispose();
      original.dispose();
    }
  }
  return rows;
}

/** The folding table in Markdown. */
export function markdownFoldTable(rows: FoldRow[]): string {
  const head = ['backend', 'model', 'before ms', 'folded ms', 'speed-up', 'kernels before / folded', 'BNs folded', 'max abs difference / max abs output'];
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map(r => `| ${[
    r.backend, r.label, fmtMs(r.beforeMs), fmtMs(r.afterMs), `${(r.beforeMs / r.afterMs).toFixed(2)}×`,
    `${r.kernelsBefore} / ${r.kernelsAfter}`, r.batchNormsFolded, r.error.toExponential(1),
  ].join(' | ')} |`)].join('\n');
}

const NOTES = `Inference: \`predict\` on one batch of the model with this package's BatchNorm layers (weights set
as after training) and of the copy \`foldBatchNorm\` returns, timed interleaved in one process (tinybench
medians), so the speed-up is a ratio measured under the same load. Kernels: those one call runs (tf.profile).
The last column is the folded model's largest difference from the original relative to the output's magnitude
(float32 rounding). The convnet is the one \`npm start\` trains (examples/mnist_model.ts); the MobileNet block is
depthwise 3×3 → BN → ReLU6 → pointwise 1×1 → BN → ReLU6 (bench/fold_workloads.ts, which the browser benchmark
can reuse for a webgl row).`;

/** Writes bench/fold_results.json and bench/fold_results.md under `dir`, after `machine` (a Markdown paragraph). */
export function writeFoldResults(dir: string, machine: string, machineJson: object, rows: FoldRow[]): void {
  writeFileSync(path.join(dir, 'fold_results.json'), `${JSON.stringify({machine: machineJson, rows}, null, 2)}\n`);
  writeFileSync(path.join(dir, 'fold_results.md'), ['# Folding batch norm: inference before and after', '', machine, '',
    markdownFoldTable(rows), '', NOTES, ''].join('\n'));
}
