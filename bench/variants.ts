/**
 * The variants rows of `npm run bench` (issue 11): one training step of this package's layer with
 * Batch Renormalization and with ghost batches, against the same layer without them, timed
 * interleaved in one process (timing.ts), with the kernels one step runs; the target is at most
 * 1.5× a plain step. Writes bench/variant_results.{json,md}.
 */
import {writeFileSync} from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import {median, Plan, timeInterleaved} from './timing';
import {BenchShape, ContenderName, makeContender, makeInputs, trainingStep} from './workloads';

/** One variant's training step on one (backend, shape). */
export interface VariantTiming {
  medianMs: number;
  samples: number;
  kernels: number;
  leakedTensors: number;
}

/** The three training-step timings of one (backend, shape). */
export interface VariantRow {
  backend: string;
  shape: string;
  shapeLabel: string;
  plain: VariantTiming;
  renorm: VariantTiming;
  ghost: VariantTiming;
}

const TARGET = 1.5;
const VARIANTS: Array<[keyof Pick<VariantRow, 'plain' | 'renorm' | 'ghost'>, ContenderName]> =
    [['plain', 'ours'], ['renorm', 'ours-renorm'], ['ghost', 'ours-ghost']];

const fmtMs = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));

/** Times a plain, a renorm and a ghost-batch training step on every shape, interleaved. */
export async function benchVariants(backend: string, shapes: BenchShape[], plan: Plan): Promise<VariantRow[]> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialize`);
  await tf.ready();
  const rows: VariantRow[] = [];
  for (const shape of shapes) {
    const inputs = makeInputs(shape);
    const contenders = VARIANTS.map(([, name]) => makeContender(name, shape));
    try {
      const step = (i: number) => tf.dispose(trainingStep(contenders[i], inputs));
      const timed = timeInterleaved(contenders.map((c, i) => ({name: c.name, run: () => step(i)})), plan);
      const timings: VariantTiming[] = [];
      // One profile at a time: tf.profile records every kernel the engine runs while it is open.
      for (const [i, c] of contenders.entries()) {
        const {samples, leakedTensors} = timed.get(c.name)!;
        const kernels = (await tf.profile(() => step(i))).kernels.length;
        timings.push({medianMs: median(samples), samples: samples.length, kernels, leakedTensors});
      }
      const row = {backend, shape: shape.id, shapeLabel: shape.label,
        ...Object.fromEntries(VARIANTS.map(([key], i) => [key, timings[i]]))} as VariantRow;
      rows.push(row);
      console.log(`  ${backend} ${shape.label} training: plain ${fmtMs(row.plain.medianMs)} ms, renorm ${fmtMs(row.renorm.medianMs)} ms, ` +
        `ghost batches ${fmtMs(row.ghost.medianMs)} ms`);
    } finally {
      for (const c of contenders) c.dispose();
      tf.dispose([inputs.x, inputs.dy]);
    }
  }
  return rows;
}

const ratioCell = (variant: VariantTiming, plain: VariantTiming) => {
  const ratio = variant.medianMs / plain.medianMs;
  return `${ratio.toFixed(2)}×${ratio <= TARGET ? '' : ' (over 1.5×)'}`;
};

/** The variants table in Markdown. */
export function markdownVariantTable(rows: VariantRow[]): string {
  const head = ['backend', 'shape', 'plain ms', 'renorm ms', 'renorm / plain', 'ghost ms', 'ghost / plain', 'kernels plain / renorm / ghost'];
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map(({backend, shapeLabel, plain, renorm, ghost}) => `| ${[
    backend, shapeLabel, fmtMs(plain.medianMs), fmtMs(renorm.medianMs), ratioCell(renorm, plain), fmtMs(ghost.medianMs),
    ratioCell(ghost, plain), `${plain.kernels} / ${renorm.kernels} / ${ghost.kernels}`,
  ].join(' | ')} |`)].join('\n');
}

/** How many rows meet the ≤ 1.5× target, per variant, as one line. */
export function variantTargetSummary(rows: VariantRow[]): string {
  const met = (key: 'renorm' | 'ghost') => rows.filter(r => r[key].medianMs / r.plain.medianMs <= TARGET).length;
  return `Target (issue 11): a renorm or ghost-batch training step ≤ ${TARGET}× a plain one — met by renorm in ` +
    `${met('renorm')} of ${rows.length} rows, by ghost batches in ${met('ghost')} of ${rows.length}.`;
}

const NOTES = `One training step (forward in training mode with the moving-statistics update, gradients for x, gamma
and beta, as in the main table) of this package's layer: *plain*; *renorm* with \`renorm: true\` and the paper's final
clipping (rmax 3, rmin 1/3, dmax 5); *ghost* with 4 ghost batches per batch (\`virtualBatchSize\` = batch size / 4:
8 for the batches of 32, 64 for the 256 dense rows, 2 for the rank-5 batch of 8). Timed interleaved in one process (tinybench medians), so the ratios hold under the same load.
Both variants run on the existing op: renorm adds a statistics pass (the op once more, its output unused) and ~70
small per-channel kernels; ghost batches of channels-last input add a transpose each way in the forward and backward
passes. Where they miss the target, the fused kernels would need the support listed in the README.`;

/** Writes bench/variant_results.json and bench/variant_results.md under `dir`, after `machine` (a Markdown paragraph). */
export function writeVariantResults(dir: string, machine: string, machineJson: object, rows: VariantRow[]): void {
  writeFileSync(path.join(dir, 'variant_results.json'), `${JSON.stringify({machine: machineJson, rows}, null, 2)}\n`);
  writeFileSync(path.join(dir, 'variant_results.md'), ['# Batch Renormalization and ghost batches: training step vs plain', '',
    machine, '', markdownVariantTable(rows), '', NOTES, '', variantTargetSummary(rows), ''].join('\n'));
}
