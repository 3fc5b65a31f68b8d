/**
 * Test problems for the layer's variants (Batch Renormalization, ghost batches, both): a BatchNorm
 * layer given a distinct, non-trivial state per channel, the input (and mask), and the same problem
 * for the float64 reference (reference_variants.ts).
 */
import * as tf from '@tensorflow/tfjs';
import {BatchNorm, batchNormalization} from '../../src';
import {RefProblem} from './reference';
import {RefClipping, RefRenormState} from './reference_variants';

/** One layer configuration and input shape. */
export interface VariantCase {
  name: string;
  shape: number[];
  axis: number | number[];
  virtualBatchSize?: number;
  renorm?: {clipping: RefClipping; renormMomentum: number};
  scale?: boolean;
  center?: boolean;
  masked?: boolean;
}

export const MOMENTUM = 0.9;
export const EPSILON = 1e-3;

/** A case set up: the layer (built, state set), its input, and the reference's view of both. */
export interface VariantSetup {
  layer: BatchNorm;
  x: tf.Tensor;
  mask: tf.Tensor | null;
  problem: RefProblem;
  /** Renorm's state before the first step (null without renorm). */
  state: RefRenormState | null;
  /** The moving statistics before the first step. */
  movingMean: Float64Array;
  movingVariance: Float64Array;
  /** Frees the input and mask (the caller disposes the layer). */
  dispose(): void;
}

/** Sorted, non-negative channel axes of a case. */
export function caseAxes(c: VariantCase): number[] {
  const rank = c.shape.length;
  return (Array.isArray(c.axis) ? c.axis : [c.axis]).map(a => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
}

/** Per-channel values `f(c)` as float32-rounded float64 (what the layer's float32 weights hold). */
function perChannel(channels: number, f: (c: number) => number): Float64Array {
  return Float64Array.from({length: channels}, (_, c) => Math.fround(f(c)));
}

/** The weight shape the layer uses: the channel dims, or Keras 2's rank + 1 shape with ghost batches. */
export function weightShape(c: VariantCase): number[] {
  const axes = caseAxes(c);
  if (c.virtualBatchSize == null) return axes.map(a => c.shape[a]);
  const shape = c.shape.map((d, i) => (axes.includes(i) ? d : 1));
  shape.splice(1, 0, 1);
  return shape;
}

/** Seeded float32 values (as float64): x with mean ≈ 3 and spread ≈ 2, so the statistics matter. */
export function seededInput(shape: number[], seed: number): Float64Array {
  const t = tf.randomNormal(shape, 3, 2, 'float32', seed);
  const values = Float64Array.from(t.dataSync());
  t.dispose();
  return values;
}

/**
 * Builds the case's layer with its state, and the matching reference problem. `seed` picks the
 * input; the layer state is the same for every seed.
 */
export function setUpVariant(c: VariantCase, seed = 1): VariantSetup {
  const axes = caseAxes(c);
  const channels = axes.reduce((n, a) => n * c.shape[a], 1);
  const gamma = perChannel(channels, i => 1 + 0.5 * Math.sin(i + 1));
  const beta = perChannel(channels, i => 0.3 * Math.cos(i));
  const movingMean = perChannel(channels, i => 0.2 * Math.sin(0.7 * i));
  const movingVariance = perChannel(channels, i => 1.5 + 0.5 * Math.cos(0.3 * i));
  const state: RefRenormState | null = c.renorm == null ? null : {
    movingMean,
    movingStddev: perChannel(channels, i => 1.2 + 0.3 * Math.sin(1.3 * i)),
    renormMean: perChannel(channels, i => 2.5 + 0.6 * Math.cos(0.9 * i)),
    renormStddev: perChannel(channels, i => 1.5 + 0.5 * Math.sin(0.4 * i)),
  };
  const scale = c.scale ?? true;
  const center = c.center ?? true;
  const shape = weightShape(c);
  const values = [...(scale ? [gamma] : []), ...(center ? [beta] : []), movingMean, movingVariance,
    ...(state == null ? [] : [state.movingStddev, state.renormMean, state.renormStddev])];
  const initial = values.map(v => tf.tensor(Float32Array.from(v), shape));
  const layer = batchNormalization({
    axis: c.axis, momentum: MOMENTUM, epsilon: EPSILON, scale, center, weights: initial,
    virtualBatchSize: c.virtualBatchSize, renorm: c.renorm != null, renormClipping: c.renorm?.clipping,
    renormMomentum: c.renorm?.renormMomentum,
  });
  // Built by an inference-mode apply (which sets the constructor's weights; build alone does not).
  tf.tidy(() => { layer.apply(tf.zeros(c.shape)); });
  tf.dispose(initial);

  const xValues = seededInput(c.shape, seed);
  const x = tf.tensor(Float32Array.from(xValues), c.shape);
  const maskShape = c.shape.filter((_, i) => !axes.includes(i));
  const maskValues = c.masked ? seededMask(maskShape, seed + 100) : null;
  const mask = maskValues == null ? null : tf.tensor(Float32Array.from(maskValues), maskShape);
  const problem: RefProblem = {
    shape: c.shape, axes, x: xValues, epsilon: EPSILON,
    gamma: scale ? gamma : null, beta: center ? beta : null,
    weights: maskValues == null ? null : broadcastMask(maskValues, c.shape, axes),
  };
  return {layer, x, mask, problem, state, movingMean, movingVariance, dispose: () => tf.dispose([x, ...(mask ? [mask] : [])])};
}

/** A seeded 0/1 mask, about 70% ones. */
function seededMask(shape: number[], seed: number): Float64Array {
  const u = tf.randomUniform(shape, 0, 1, 'float32', seed);
  const values = Float64Array.from(u.dataSync(), v => (v > 0.3 ? 1 : 0));
  u.dispose();
  return values;
}

/** A mask (x's shape without the channel axes) repeated over the channel axes: one weight per element of x. */
function broadcastMask(mask: Float64Array, shape: number[], axes: number[]): Float64Array {
  const size = shape.reduce((n, d) => n * d, 1);
  const weights = new Float64Array(size);
  const index = shape.map(() => 0);
  for (let i = 0; i < size; i++) {
    let m = 0;
    shape.forEach((d, dim) => { if (!axes.includes(dim)) m = m * d + index[dim]; });
    weights[i] = mask[m];
    for (let dim = shape.length - 1; dim >= 0 && ++index[dim] === shape[dim]; dim--) index[dim] = 0;
  }
  return weights;
}

/** The layer's weights by name (the part after the last '/'), as float64 arrays. */
export function weightsByName(layer: tf.layers.Layer): Record<string, Float64Array> {
  return Object.fromEntries(layer.weights.map(w => [w.originalName.split('/').pop() as string, Float64Array.from(w.read().dataSync())]));
}
