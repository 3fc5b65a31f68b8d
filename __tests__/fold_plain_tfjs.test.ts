/**
 * A folded model needs nothing from this package: saved with file:// (model.json + weights.bin),
 * it loads and predicts in a separate Node process that requires only @tensorflow/tfjs
 * (support/plain_tfjs_predict.js), and predicts what the original model (with its batch norms)
 * does, within the fold tolerance of fold.test.ts (max|Δ| / max|output| ≤ 2e-6; measured here:
 * ≤ 2.5e-7).
 */
import * as tf from '@tensorflow/tfjs';
import {execFile} from 'child_process';
import * as fs from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import {promisify} from 'util';
import {foldBatchNorm} from '../src/node'; // the Node entry: it registers the file:// handler used below
import {FOLD_WORKLOADS} from '../bench/fold_workloads';
import {errorRelativeToMagnitude} from './support/deploy_models';

const FOLD_TOLERANCE = 2e-6;
const CHILD = path.join(__dirname, 'support', 'plain_tfjs_predict.js');

beforeAll(async () => {
  await tf.setBackend('cpu');
});

let tmp: string;
beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tfjs-batchnorm-fold-'));
});
afterEach(async () => {
  await fs.rm(tmp, {recursive: true, force: true});
});

test.each(FOLD_WORKLOADS.map(w => [w.label, w] as const))('%s: folded, saved, loaded and run by plain tfjs in another process', async (_, workload) => {
  const original = workload.build();
  const folded = await foldBatchNorm(original);
  await folded.save(`file://${tmp}`);
  const saved = await fs.readFile(path.join(tmp, 'model.json'), 'utf8');
  expect(saved).not.toMatch(/TfjsBatchNorm|BatchNormalization/);

  const shape = [2, ...workload.inputShape.slice(1)];
  const x = tf.randomNormal(shape, 0.5, 1, 'float32', 5);
  await fs.writeFile(path.join(tmp, 'input.json'), JSON.stringify({shape, values: Array.from(x.dataSync())}));
  await promisify(execFile)(process.execPath, [CHILD, tmp], {cwd: path.join(__dirname, '..'), timeout: 90_000});
  const child = JSON.parse(await fs.readFile(path.join(tmp, 'output.json'), 'utf8')) as {values: number[]; loaded: string[]};

  expect(child.loaded).toEqual([]);  // nothing outside node_modules: not this package
  const want = (original.predict(x) as tf.Tensor).dataSync();
  expect(child.values).toHaveLength(want.length);
  expect(errorRelativeToMagnitude(child.values, want)).toBeLessThanOrEqual(FOLD_TOLERANCE);
  tf.dispose(x);
  folded.dispose();
  original.dispose();
});
