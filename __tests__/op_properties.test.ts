/**
 * Property tests (fast-check): batchNormTrain and batchNormInfer against the float64 reference
 * (support/reference.ts) over random problems (support/problems.ts: ranks 2–5, any channel axes,
 * offsets up to 1000 spreads, optional gamma/beta/mask), on every backend and path. Every output is
 * compared: y, mean, variance and the gradients for x, gamma, beta (with gradients arriving at the
 * mean and variance outputs too) in training; y and the gradients for x, mean, variance, gamma and
 * beta in inference.
 *
 * Error measure: |got − want| / (1 + |want|), elementwise max. Measured worst over 600 problems
 * (seeds 1, 2 and the default, 200 runs each) on cpu and wasm, fused and composite paths:
 *   training  y 2.5e-7, mean 4.0e-7, variance 2.0e-7, dx 2.0e-5, dgamma 1.1e-6, dbeta 3.1e-7
 *   inference y 1.3e-7, dx 1.1e-7, dmean 1.9e-6, dvariance 1.6e-6, dgamma 4.7e-7, dbeta 3.1e-7
 * (dx in training is the masked cases: Keras' 1e-7 in the mask-weight sum is resolved only to
 * float32's 6e-8 and amplified by 1/√ε). Tolerances below are about 10× those (5× for dx, 8–10×
 * for dmean/dvariance). FC_SEED and FC_RUNS override the seed (fixed, so CI is deterministic) and
 * the number of problems per property; MEASURE=1 prints the worst errors seen.
 */
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import {batchNormInfer, batchNormTrain} from '../src';
import {describeEachPath} from './support/backends';
import {maxRelativeError} from './support/golden';
import {describeProblem, Problem, problems} from './support/problems';
import {refInfer, refInferGrad, refTrain, refTrainGrad} from './support/reference';

const NUM_RUNS = Number(process.env.FC_RUNS ?? 80);
const SEED = Number(process.env.FC_SEED ?? 20261128);

/** Float32 tensors for the optional arguments, in the order they are differentiated. */
function optional(p: Problem) {
  return {
    gamma: p.gamma == null ? null : tf.tensor1d(p.gamma as Float32Array),
    beta: p.beta == null ? null : tf.tensor1d(p.beta as Float32Array),
  };
}

/** Everything batchNormTrain gives for a problem, as plain arrays. */
function runTrain(p: Problem): Record<string, Float32Array> {
  return tf.tidy(() => {
    const x = tf.tensor(p.x as Float32Array, p.shape);
    const {gamma, beta} = optional(p);
    const mask = p.mask == null ? null : tf.tensor(p.mask, p.shape.slice(0, -1));
    const options = {axis: p.axis, epsilon: p.epsilon, mask};
    const forward = batchNormTrain(x, gamma, beta, options);
    const args = [x, ...(gamma == null ? [] : [gamma]), ...(beta == null ? [] : [beta])];
    const grads = tf.grads((...a: tf.Tensor[]) => {
      const g = gamma == null ? null : a[1];
      const b = beta == null ? null : a[a.length - 1];
      const r = batchNormTrain(a[0], g, b, options);
      return tf.addN([tf.sum(tf.mul(r.y, tf.tensor(p.dy, p.shape))), tf.sum(tf.mul(r.mean, tf.tensor1d(p.dmean))),
        tf.sum(tf.mul(r.variance, tf.tensor1d(p.dvariance)))]);
    })(args);
    const out: Record<string, Float32Array> = {
      y: forward.y.dataSync() as Float32Array, mean: forward.mean.dataSync() as Float32Array,
      variance: forward.variance.dataSync() as Float32Array, dx: grads[0].dataSync() as Float32Array,
    };
    if (gamma != null) out.dgamma = grads[1].dataSync() as Float32Array;
    if (beta != null) out.dbeta = grads[grads.length - 1].dataSync() as Float32Array;
    return out;
  });
}

/** Everything batchNormInfer gives for a problem (with its moving statistics), as plain arrays. */
function runInfer(p: Problem): Record<string, Float32Array> {
  return tf.tidy(() => {
    const x = tf.tensor(p.x as Float32Array, p.shape);
    const m = tf.tensor1d(p.movingMean);
    const v = tf.tensor1d(p.movingVariance);
    const {gamma, beta} = optional(p);
    const options = {axis: p.axis, epsilon: p.epsilon};
    const y = batchNormInfer(x, m, v, gamma, beta, options);
    const args = [x, m, v, ...(gamma == null ? [] : [gamma]), ...(beta == null ? [] : [beta])];
    const grads = tf.grads((...a: tf.Tensor[]) => {
      const g = gamma == null ? null : a[3];
      const b = beta == null ? null : a[a.length - 1];
      return tf.sum(tf.mul(batchNormInfer(a[0], a[1], a[2], g, b, options), tf.tensor(p.dy, p.shape)));
    })(args);
    const out: Record<string, Float32Array> = {
      y: y.dataSync() as Float32Array, dx: grads[0].dataSync() as Float32Array,
      dmean: grads[1].dataSync() as Float32Array, dvariance: grads[2].dataSync() as Float32Array,
    };
    if (gamma != null) out.dgamma = grads[3].dataSync() as Float32Array;
    if (beta != null) out.dbeta = grads[grads.length - 1].dataSync() as Float32Array;
    return out;
  });
}

/** The reference's answers for the same fields. */
function referenceTrain(p: Problem): Record<string, ArrayLike<number>> {
  const {y, mean, variance} = refTrain(p);
  const {dx, dgamma, dbeta} = refTrainGrad(p, p.dy, p.dmean, p.dvariance);
  return {y, mean, variance, dx, dgamma, dbeta};
}

function referenceInfer(p: Problem): Record<string, ArrayLike<number>> {
  const y = refInfer(p, p.movingMean, p.movingVariance);
  const {dx, dmean, dvariance, dgamma, dbeta} = refInferGrad(p, p.movingMean, p.movingVariance, p.dy);
  return {y, dx, dmean, dvariance, dgamma, dbeta};
}

/** Tolerances per field, from the measured errors (see the header). */
const TRAIN_TOLERANCE: Record<string, number> = {y: 2e-6, mean: 4e-6, variance: 2e-6, dx: 2e-4, dgamma: 1e-5, dbeta: 5e-6};
const INFER_TOLERANCE: Record<string, number> = {y: 2e-6, dx: 1e-6, dmean: 2e-5, dvariance: 2e-5, dgamma: 5e-6, dbeta: 5e-6};

/** Largest error seen per field in this run (printed with MEASURE=1, to set the tolerances). */
const worst: Record<string, number> = {};

function check(label: string, got: Record<string, Float32Array>, want: Record<string, ArrayLike<number>>,
               tolerance: Record<string, number>, p: Problem): boolean {
  for (const field of Object.keys(got)) {
    const error = maxRelativeError(got[field], want[field]);
    worst[`${label} ${field}`] = Math.max(worst[`${label} ${field}`] ?? 0, error);
    if (!(error <= tolerance[field])) {
      throw new Error(`${label} ${field}: error ${error} > ${tolerance[field]} for ${describeProblem(p)}`);
    }
  }
  return true;
}

describeEachPath('properties against the float64 reference', (backend, path) => {
  afterAll(() => {
    if (process.env.MEASURE) console.log(`MEASURE ${backend}/${path}`, JSON.stringify(worst));
  });

  test('batchNormTrain: y, mean, variance, dx, dgamma, dbeta (masked or not)', () => {
    const before = tf.memory().numTensors;
    fc.assert(fc.property(problems(), p => check(`${backend}/${path} train`, runTrain(p), referenceTrain(p), TRAIN_TOLERANCE, p)),
        {numRuns: NUM_RUNS, seed: SEED});
    expect(tf.memory().numTensors).toBe(before);
  });

  test('batchNormInfer: y, dx, dmean, dvariance, dgamma, dbeta', () => {
    const before = tf.memory().numTensors;
    fc.assert(fc.property(problems({masked: false}), p => check(`${backend}/${path} infer`, runInfer(p), referenceInfer(p), INFER_TOLERANCE, p)),
        {numRuns: NUM_RUNS, seed: SEED});
    expect(tf.memory().numTensors).toBe(before);
  });
});
