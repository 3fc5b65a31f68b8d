/**
 * The measurements behind `npm run bench`, shared by the Node benchmark (run.ts) and the browser
 * one (browser/page.ts): whether the stock layer runs and agrees with ours, and tinybench timings
 * of both contenders in one process, interleaved round by round, warm-up first, medians of the
 * pooled samples; peak bytes and kernel counts from tf.profile.
 *
 * On GPU backends (webgl, webgpu) a step only queues work; `settle` waits for it by reading back one
 * value of every result, so the times are those of the GPU work, not of queueing it.
 */
import * as tf from '@tensorflow/tfjs';
import {maxRelativeError} from '../__tests__/support/compare';
import type {ContenderResult, ConvnetResult, Mode, Row} from './report';
import {median, Plan, timeInterleaved, timeInterleavedAsync} from './timing';
import {BenchShape, Contender, ContenderName, convnetData, convnetModel, CONVNET_VARIANTS, Inputs, inferenceStep, makeContender, makeInputs, trainingStep} from './workloads';

/** Beyond this relative difference (|a−b|/(1+|b|)) from ours, the stock layer's results count as wrong. */
const AGREEMENT_TOLERANCE = 1e-3;

type Step = (c: Contender, inputs: Inputs) => tf.Tensor | tf.Tensor[];
const STEPS: Record<Mode, Step> = {inference: inferenceStep, training: trainingStep};

/** Waits until a step's results are computed (GPU backends), given them. */
export type Settle = (results: tf.Tensor[]) => Promise<void>;

/** Reads back one value of each result: waits for the GPU without timing a full download. */
export const readOneValue: Settle = async results => {
  const firsts = tf.tidy(() => results.map(t => tf.slice(tf.reshape(t, [-1]), 0, 1)));
  await Promise.all(firsts.map(t => t.data()));
  tf.dispose(firsts);
};

function errorMessage(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 160);
}

function asList(out: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
  return Array.isArray(out) ? out : [out];
}

/** Runs one step and returns its outputs as plain arrays (then disposes them). */
async function outputsOf(step: Step, c: Contender, inputs: Inputs): Promise<Float32Array[]> {
  const list = asList(step(c, inputs));
  const values = await Promise.all(list.map(t => t.data() as Promise<Float32Array>));
  tf.dispose(list);
  return values;
}

/**
 * Whether the stock layer runs this step, and agrees with ours. Fresh contenders, so both start
 * from the same weights; a throwing stock layer may leak tensors, which we cannot free.
 */
async function compareWithOurs(mode: Mode, shape: BenchShape, inputs: Inputs): Promise<ContenderResult> {
  const ours = makeContender('ours', shape);
  let stock: Contender | undefined;
  try {
    stock = makeContender('stock', shape);
    const want = await outputsOf(STEPS[mode], ours, inputs);
    const got = await outputsOf(STEPS[mode], stock, inputs);
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
async function measure(names: ContenderName[], mode: Mode, shape: BenchShape, inputs: Inputs, plan: Plan, settle?: Settle):
    Promise<Map<ContenderName, ContenderResult>> {
  const contenders = names.map(name => makeContender(name, shape));
  const step = STEPS[mode];
  try {
    const timed = settle == null ?
      timeInterleaved(contenders.map(c => ({name: c.name, run: () => tf.dispose(step(c, inputs))})), plan) :
      await timeInterleavedAsync(contenders.map(c => ({name: c.name, run: async () => {
        const results = asList(step(c, inputs));
        await settle(results);
        tf.dispose(results);
      }})), plan);
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

/**
 * The rows of one backend (already set with tf.setBackend): for each shape, inference and the
 * training step, ours against stock (and, on wasm, ours with the JS loops).
 */
export async function benchBackend(backend: string, shapes: BenchShape[], plan: Plan, settle?: Settle): Promise<Row[]> {
  const rows: Row[] = [];
  for (const shape of shapes) {
    const inputs = makeInputs(shape);
    try {
      for (const mode of ['inference', 'training'] as Mode[]) {
        const check = await compareWithOurs(mode, shape, inputs);
        const names: ContenderName[] = ['ours', ...(backend === 'wasm' ? ['ours-js' as const] : []),
          ...(check.status === 'fails' ? [] : ['stock' as const])];
        const measured = await measure(names, mode, shape, inputs, plan, settle);
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
  return rows;
}

/** How the convnet epochs are timed: `samples` images in batches of `batchSize`, `rounds` timed epochs per model. */
export interface ConvnetPlan {
  samples: number;
  batchSize: number;
  rounds: number;
}

/** Fewer images on webgpu, whose conv2d gradients are about 10× slower than webgl's on SwiftShader. */
export function convnetPlan(backend: string, quick: boolean): ConvnetPlan {
  if (quick) return {samples: 64, batchSize: 64, rounds: 1};
  return backend === 'webgpu' ? {samples: 64, batchSize: 64, rounds: 2} : {samples: 256, batchSize: 64, rounds: 3};
}

/**
 * Times one training epoch (model.fit) of each convnet variant (workloads.ts: without normalization,
 * with and without biases; with the stock layer; with ours) on the current backend: one untimed
 * epoch each first (shader compilation), then `rounds` epochs per model, the models alternating;
 * medians.
 */
export async function convnetEpochs(backend: string, plan: ConvnetPlan): Promise<ConvnetResult[]> {
  const {xs, ys} = convnetData(plan.samples);
  const models = CONVNET_VARIANTS.map(variant => ({variant, model: convnetModel(variant), times: [] as number[]}));
  // yieldEvery 'never': no waits for the next animation frame between batches inside the timings.
  const epoch = async (model: tf.Sequential) => {
    const start = performance.now();
    await model.fit(xs, ys, {epochs: 1, batchSize: plan.batchSize, shuffle: false, verbose: 0, yieldEvery: 'never'});
    return performance.now() - start;
  };
  try {
    for (const m of models) await epoch(m.model);
    for (let round = 0; round < plan.rounds; round++) {
      for (const m of round % 2 === 0 ? models : [...models].reverse()) m.times.push(await epoch(m.model));
    }
    const results = models.map(m => ({backend, variant: m.variant, epochMs: median(m.times), epochs: m.times.length,
      images: plan.samples}));
    console.log(`  ${backend} convnet epoch: ${results.map(r => `${r.variant} ${r.epochMs.toFixed(0)} ms`).join(', ')}`);
    return results;
  } finally {
    for (const m of models) m.model.dispose();
    tf.dispose([xs, ys]);
  }
}
