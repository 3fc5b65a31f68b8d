/**
 * The folding rows of `npm run bench` (cpu, wasm) and of `npm run bench -- --browser` (webgl):
 * inference (predict on one batch) of each FOLD_WORKLOADS model before and after foldBatchNorm,
 * timed interleaved in one process (timing.ts), with the kernels one call runs and the folded
 * model's agreement with the original. No Node modules here (the browser page bundles it): the
 * tables and files are fold_report.ts's.
 */
import * as tf from '@tensorflow/tfjs';
import {foldBatchNorm} from '../src';
import {errorRelativeToMagnitude} from '../__tests__/support/deploy_models';
import {FOLD_WORKLOADS} from './fold_workloads';
import type {Settle} from './measure';
import {median, Plan, timeInterleaved, timeInterleavedAsync} from './timing';

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

/** Milliseconds as the tables print them. */
export const fmtMs = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));

function predictOnce(model: tf.LayersModel, x: tf.Tensor): tf.Tensor {
  // The whole batch in one call (predict would split it into batches of 32).
  return model.predict(x, {batchSize: x.shape[0]}) as tf.Tensor;
}

/**
 * Times every workload before and after folding on `backend`. On GPU backends pass `settle`
 * (measure.ts's readOneValue): each prediction is then timed until one value is read back, so the
 * GPU work is inside the time.
 */
export async function benchFold(backend: string, plan: Plan, settle?: Settle): Promise<FoldRow[]> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialize`);
  await tf.ready();
  const rows: FoldRow[] = [];
  for (const workload of FOLD_WORKLOADS) {
    const original = workload.build();
    const {model: folded, report} = await foldBatchNorm(original, {report: true});
    const x = tf.randomNormal(workload.inputShape, 0.5, 1, 'float32', 3);
    try {
      const [want, got] = await Promise.all([original, folded].map(async m => {
        const y = predictOnce(m, x);
        const values = await y.data();
        y.dispose();
        return values;
      }));
      const models = {before: original, after: folded};
      const timed = settle == null ?
        timeInterleaved(Object.entries(models).map(([name, m]) => ({name, run: () => predictOnce(m, x).dispose()})), plan) :
        await timeInterleavedAsync(Object.entries(models).map(([name, m]) => ({name, run: async () => {
          const y = predictOnce(m, x);
          await settle([y]);
          y.dispose();
        }})), plan);
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

