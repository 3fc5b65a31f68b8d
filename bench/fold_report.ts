/**
 * The folding rows as a Markdown table, and bench/fold_results.{json,md} (Node: the benchmark
 * scripts import this; the browser page only measures, with fold.ts).
 */
import {writeFileSync} from 'fs';
import * as path from 'path';
import {fmtMs, FoldRow} from './fold';

/** The folding table in Markdown. */
export function markdownFoldTable(rows: FoldRow[]): string {
  const head = ['backend', 'model', 'before ms', 'folded ms', 'speed-up', 'kernels before / folded', 'BNs folded', 'max abs difference / max abs output'];
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map(r => `| ${[
    r.backend, r.label, fmtMs(r.beforeMs), fmtMs(r.afterMs), `${(r.beforeMs / r.afterMs).toFixed(2)}×`,
    `${r.kernelsBefore} / ${r.kernelsAfter}`, r.batchNormsFolded, r.error.toExponential(1),
  ].join(' | ')} |`)].join('\n');
}

export const FOLD_NOTES = `Inference: \`predict\` on one batch of the model with this package's BatchNorm layers (weights set
as after training) and of the copy \`foldBatchNorm\` returns, timed interleaved in one process (tinybench
medians), so the speed-up is a ratio measured under the same load. Kernels: those one call runs (tf.profile).
The last column is the folded model's largest difference from the original relative to the output's magnitude
(float32 rounding). The convnet is the one \`npm start\` trains (examples/mnist_model.ts); the MobileNet block is
depthwise 3×3 → BN → ReLU6 → pointwise 1×1 → BN → ReLU6 (bench/fold_workloads.ts). The webgl rows come from
\`npm run bench -- --browser\` (bench/results-browser.md), with the same workloads.`;

/** Writes bench/fold_results.json and bench/fold_results.md under `dir`, after `machine` (a Markdown paragraph). */
export function writeFoldResults(dir: string, machine: string, machineJson: object, rows: FoldRow[]): void {
  writeFileSync(path.join(dir, 'fold_results.json'), `${JSON.stringify({machine: machineJson, rows}, null, 2)}\n`);
  writeFileSync(path.join(dir, 'fold_results.md'), ['# Folding batch norm: inference before and after', '', machine, '',
    markdownFoldTable(rows), '', FOLD_NOTES, ''].join('\n'));
}
