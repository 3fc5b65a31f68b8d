/**
 * Issue 11's rows: one training step of this package's layer with Batch Renormalization and with
 * ghost batches, against the same layer without them (timed interleaved in the same process by
 * run.ts), and the target that each costs at most 1.5× a plain step on cpu and wasm.
 */
import type {ContenderResult} from './report';

/** The three training-step timings of one (backend, shape). */
export interface VariantRow {
  backend: string;
  shape: string;
  shapeLabel: string;
  plain: ContenderResult;
  renorm: ContenderResult;
  ghost: ContenderResult;
}

/** The settings benchmarked, for the table's caption. */
export const VARIANT_NOTES = `*plain* is the training step of the main table (forward in training mode with the moving-statistics
update, gradients for x, gamma and beta); *renorm* the same with \`renorm: true\` and the paper's final clipping
(rmax 3, rmin 1/3, dmax 5); *ghost* with \`virtualBatchSize: 8\` (4 ghost batches per batch of 32; 32 of the 256
dense rows). All three are timed interleaved, round by round, in the same process.`;

const TARGET = 1.5;

const ms = (r: ContenderResult) => (r.medianMs == null ? '–' : r.medianMs < 10 ? r.medianMs.toFixed(2) : r.medianMs.toFixed(1));
const ratio = (r: ContenderResult, plain: ContenderResult) =>
  (r.medianMs == null || plain.medianMs == null ? undefined : r.medianMs / plain.medianMs);
const cell = (value: number | undefined) => (value == null ? '–' : `${value.toFixed(2)}×${value <= TARGET ? '' : ' (over 1.5×)'}`);

/** The variant rows as a Markdown table. */
export function markdownVariantTable(rows: VariantRow[]): string {
  const lines = ['| backend | shape | plain ms | renorm ms | renorm / plain | ghost ms | ghost / plain | kernels plain / renorm / ghost |',
    '|---|---|---|---|---|---|---|---|'];
  for (const {backend, shapeLabel, plain, renorm, ghost} of rows) {
    lines.push(`| ${[backend, shapeLabel, ms(plain), ms(renorm), cell(ratio(renorm, plain)), ms(ghost), cell(ratio(ghost, plain)),
      `${plain.kernels ?? '–'} / ${renorm.kernels ?? '–'} / ${ghost.kernels ?? '–'}`].join(' | ')} |`);
  }
  return lines.join('\n');
}

/** How many rows meet the ≤ 1.5× target, per variant, as one line. */
export function variantTargetSummary(rows: VariantRow[]): string {
  const met = (pick: (r: VariantRow) => ContenderResult) => rows.filter(r => (ratio(pick(r), r.plain) ?? Infinity) <= TARGET).length;
  return `Target (issue 11): a renorm or ghost-batch training step ≤ ${TARGET}× a plain one — renorm meets it in ` +
    `${met(r => r.renorm)} of ${rows.length} rows, ghost batches in ${met(r => r.ghost)} of ${rows.length}.`;
}
