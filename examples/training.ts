/**
 * The training loop of the Node examples: model.fit one epoch at a time on the training images in
 * a given order (so each example decides how batches are formed), with a progress bar per epoch,
 * the loss of every batch and the test accuracy after every epoch; and the results table.
 */
import * as tf from '@tensorflow/tfjs';
import {SingleBar} from 'cli-progress';
import {Split} from './mnist_data';

/** How one run trains. */
export interface RunSpec {
  /** Shown on the progress bars (padded to `labelWidth`). */
  label: string;
  batchSize: number;
  epochs: number;
  /** The order of the training images in an epoch: consecutive runs of batchSize are the batches. */
  order: (epoch: number) => number[];
}

/** What a run measured. */
export interface RunCurves {
  /** Training loss of every batch, at x = epochs done (fractional). */
  batchLoss: Array<[number, number]>;
  /** Test accuracy before training (x = 0) and after each epoch. */
  testAccuracy: Array<[number, number]>;
  /** Mean training loss of the last epoch. */
  finalLoss: number;
  secondsPerEpoch: number;
}

/** Trains a compiled model as `spec` says and records its curves. */
export async function trainRun(model: tf.LayersModel, spec: RunSpec, data: {train: Split, test: Split}, labelWidth = 28): Promise<RunCurves> {
  const result: RunCurves = {batchLoss: [], testAccuracy: [[0, testAccuracy(model, data.test.xs, data.test.ys)]], finalLoss: NaN, secondsPerEpoch: 0};
  const tty = process.stdout.isTTY === true;
  let trainingSeconds = 0;
  for (let epoch = 0; epoch < spec.epochs; epoch++) {
    const indices = spec.order(epoch);
    const batches = Math.ceil(indices.length / spec.batchSize);
    const bar = new SingleBar({
      stream: process.stdout,
      format: `${spec.label.padEnd(labelWidth)} epoch ${epoch + 1}/${spec.epochs} [{bar}] {value}/{total} batches  ` +
        'loss {loss}  test accuracy {accuracy}',
      barsize: 20, hideCursor: true,
    });
    bar.start(batches, 0, {loss: '-', accuracy: '-'});
    const order = tf.tensor1d(indices, 'int32');
    const [xs, ys] = [tf.gather(data.train.xs, order), tf.gather(data.train.ys, order)];
    const started = performance.now();
    const history = await model.fit(xs, ys, {
      batchSize: spec.batchSize, epochs: 1, shuffle: false, verbose: 0,
      callbacks: {onBatchEnd: async (batch, logs) => {
        const loss = logs?.loss ?? NaN;
        result.batchLoss.push([epoch + (batch + 1) / batches, loss]);
        bar.update(batch + 1, {loss: loss.toFixed(3)});
      }},
    });
    trainingSeconds += (performance.now() - started) / 1000;
    tf.dispose([order, xs, ys]);
    result.finalLoss = history.history.loss[0] as number;
    result.testAccuracy.push([epoch + 1, testAccuracy(model, data.test.xs, data.test.ys)]);
    const accuracy = `${(100 * result.testAccuracy[epoch + 1][1]).toFixed(1)}%`;
    bar.update(batches, {loss: result.finalLoss.toFixed(4), accuracy});
    bar.stop();
    // Off a terminal the bar draws nothing; a plain line per epoch keeps logs readable.
    if (!tty) {
      console.log(`${spec.label.padEnd(labelWidth)} epoch ${epoch + 1}/${spec.epochs}  loss ${result.finalLoss.toFixed(4)}  test accuracy ${accuracy}`);
    }
  }
  result.secondsPerEpoch = trainingSeconds / spec.epochs;
  return result;
}

/** Prints a Markdown table: the first column left-aligned, the others right-aligned. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(row => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  console.log(['', line(header), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n'));
}

/** The final test accuracy of a run, as a percentage. */
export function finalAccuracy(curves: RunCurves): string {
  return `${(100 * curves.testAccuracy[curves.testAccuracy.length - 1][1]).toFixed(1)}%`;
}

/** Fraction of test images classified correctly, in inference mode (normalization uses its moving statistics). */
export function testAccuracy(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor): number {
  return tf.tidy(() => {
    const predicted = (model.predict(xs) as tf.Tensor).argMax(-1);
    return predicted.equal(ys.argMax(-1)).mean().arraySync() as number;
  });
}
