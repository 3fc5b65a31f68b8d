/**
 * Batch-norm problems for the browser suites, as plain arrays, with their float64 reference answers
 * (reference.ts). Inputs are rounded to float32 first, since that is what every backend receives.
 */
import type {GoldenCase} from './golden';
import {mulberry32} from './random';
import {refChannelCount, refInfer, refInferGrad, RefProblem, refTrain, refTrainGrad} from './reference';

/** One problem (the shape __tests__/browser_kernels/page.ts takes). */
export interface BrowserProblem {
  name: string;
  shape: number[];
  axis: number | number[];
  epsilon: number;
  x: number[];
  dy: number[];
  gamma: number[] | null;
  beta: number[] | null;
  dmean: number[] | null;
  dvariance: number[] | null;
  movingMean: number[];
  movingVariance: number[];
  /**
   * How the page takes the training gradients: `kernel` calls the gradient kernel directly (few
   * shaders to compile); `tape` differentiates the loss through the op with tf.grads.
   */
  gradients: 'kernel' | 'tape';
  /** Whether the page also differentiates the inference-mode output (tf ops: many shaders to compile). */
  inferGradients: boolean;
  /**
   * How x and dy reach the kernels on webgl: `unpacked` (uploaded values), `packed` (the output of
   * a packed op, as most tfjs webgl ops write), `mixed` (x packed, dy unpacked).
   */
  layout: 'unpacked' | 'packed' | 'mixed';
  /**
   * Whether the page also runs the layer's training step (moving update, per-channel tensors shaped
   * [channels, 1]); generated problems do, golden cases not (they check the op only).
   */
  step: boolean;
  /** Whether the page also runs masked training (a Keras mask; tf ops: many shaders to compile). */
  masked: boolean;
}

/** The float64 answers for every output the page returns. */
export interface ProblemAnswers {
  y: Float64Array;
  mean: Float64Array;
  variance: Float64Array;
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
  inferY: Float64Array;
  inferDx: Float64Array;
  inferDmean: Float64Array;
  inferDvariance: Float64Array;
  inferDgamma: Float64Array;
  inferDbeta: Float64Array;
}

function sortedAxes(axis: number | number[], rank: number): number[] {
  return (Array.isArray(axis) ? axis : [axis]).map(a => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
}

function adjacentAxes(axes: number[]): boolean {
  return axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
}

/** Options of a generated problem. */
export interface ProblemSpec {
  name: string;
  shape: number[];
  axis: number | number[];
  /** x = offset + spread·(uniform in [−1, 1]). */
  offset?: number;
  spread?: number;
  epsilon?: number;
  affine?: boolean;
  /** Gradients arriving at the mean and variance outputs (as when a caller differentiates through them). */
  statsGradients?: boolean;
  /** BrowserProblem.gradients (default `kernel`). */
  gradients?: 'kernel' | 'tape';
  /** BrowserProblem.inferGradients (default false). */
  inferGradients?: boolean;
  /** BrowserProblem.layout (default `packed`). */
  layout?: BrowserProblem['layout'];
  /** BrowserProblem.masked (default false). */
  masked?: boolean;
}

/** A generated problem with seeded values. */
export function makeProblem(spec: ProblemSpec, seed: number): BrowserProblem {
  const random = mulberry32(seed);
  const signed = () => 2 * random() - 1;
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const channels = refChannelCount(spec.shape, sortedAxes(spec.axis, spec.shape.length));
  const perChannel = (f: () => number) => Array.from({length: channels}, () => Math.fround(f()));
  const affine = spec.affine ?? true;
  return {
    name: spec.name, shape: spec.shape, axis: spec.axis, epsilon: spec.epsilon ?? 1e-3,
    x: Array.from({length: size}, () => Math.fround((spec.offset ?? 0) + (spec.spread ?? 1) * signed())),
    dy: Array.from({length: size}, () => Math.fround(signed())),
    gamma: affine ? perChannel(() => 0.5 + random()) : null,
    beta: affine ? perChannel(signed) : null,
    dmean: spec.statsGradients ? perChannel(signed) : null,
    dvariance: spec.statsGradients ? perChannel(signed) : null,
    movingMean: perChannel(() => (spec.offset ?? 0) + signed()),
    movingVariance: perChannel(() => 0.5 + random()),
    gradients: spec.gradients ?? 'kernel', inferGradients: spec.inferGradients ?? false, layout: spec.layout ?? 'packed',
    step: true, masked: spec.masked ?? false,
  };
}

/** A golden case as a problem (its inputs are already float32 values). */
export function goldenProblem(c: GoldenCase): BrowserProblem {
  return {
    name: `golden ${c.name}`, shape: c.shape, axis: c.axis, epsilon: c.epsilon, x: c.x, dy: c.dy,
    gamma: c.scale ? c.gamma : null, beta: c.center ? c.beta : null, dmean: null, dvariance: null,
    movingMean: c.moving_mean0, movingVariance: c.moving_variance0, inferGradients: false, layout: 'unpacked', step: false, masked: false,
    // The gradient kernel needs adjacent channel axes; other axes differentiate through the op.
    gradients: adjacentAxes(sortedAxes(c.axis, c.shape.length)) ? 'kernel' : 'tape',
  };
}

/** The float64 answers of a problem. */
export function answers(p: BrowserProblem): ProblemAnswers {
  const ref: RefProblem = {shape: p.shape, axes: sortedAxes(p.axis, p.shape.length), x: p.x, gamma: p.gamma, beta: p.beta, epsilon: p.epsilon};
  const train = refTrain(ref);
  const grads = refTrainGrad(ref, p.dy, p.dmean, p.dvariance);
  const infer = refInferGrad(ref, p.movingMean, p.movingVariance, p.dy);
  return {
    y: train.y, mean: train.mean, variance: train.variance, dx: grads.dx, dgamma: grads.dgamma, dbeta: grads.dbeta,
    inferY: refInfer(ref, p.movingMean, p.movingVariance), inferDx: infer.dx, inferDmean: infer.dmean,
    inferDvariance: infer.dvariance, inferDgamma: infer.dgamma, inferDbeta: infer.dbeta,
  };
}

/** The momentum of the page's training steps (Keras' default). */
export const STEP_MOMENTUM = 0.99;

/**
 * The mask of a problem's masked run: x's shape without its last axis, position i kept unless
 * i % 3 == 0 (so every channel keeps most of its values and loses some).
 */
export function maskOf(p: BrowserProblem): number[] {
  const size = p.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return Array.from({length: size}, (_, i) => (i % 3 === 0 ? 0 : 1));
}

/**
 * The float64 answers of a training run with dy as the only upstream gradient (none at the mean
 * and variance), masked with maskOf(p) (as Keras 3 weights, broadcast over the last axis) or not.
 */
export function trainAnswers(p: BrowserProblem, masked: boolean): {y: Float64Array; mean: Float64Array; variance: Float64Array;
  dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array} {
  const mask = maskOf(p);
  const last = p.shape[p.shape.length - 1];
  const ref: RefProblem = {shape: p.shape, axes: sortedAxes(p.axis, p.shape.length), x: p.x, gamma: p.gamma, beta: p.beta,
    epsilon: p.epsilon, weights: masked ? p.x.map((_, i) => mask[Math.floor(i / last)]) : null};
  const train = refTrain(ref);
  const grads = refTrainGrad(ref, p.dy, null, null);
  return {...train, dx: grads.dx, dgamma: grads.dgamma, dbeta: grads.dbeta};
}

/**
 * JSON that keeps NaN and ±Infinity (as strings), for moving problems and results in and out of a
 * page: one string crosses Playwright's protocol far faster than arrays of numbers.
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

/** The inverse of toJson. */
export function fromJson<T>(text: string): T {
  const special: Record<string, number> = {NaN, Infinity, '-Infinity': -Infinity};
  return JSON.parse(text, (_key, v: unknown) => (typeof v === 'string' && v in special ? special[v] : v)) as T;
}
