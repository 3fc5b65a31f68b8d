/**
 * What the benchmark measures: the shapes, and the two contenders (this package's BatchNorm layer
 * and the stock tf.layers.batchNormalization) behind one interface, so inference and the training
 * step are timed with exactly the same code for both.
 */
import * as tf from '@tensorflow/tfjs';
import {buildModel, convnet, IMAGE_SIZE} from '../examples/mnist_model';
import {batchNormalization} from '../src';
import {SIMD_FLAG} from '../src/kernels/simd';
import {channelCount, normalizeAxes} from '../src/ops/channel_axes';

/** One benchmarked input: its shape and channel axis. */
export interface BenchShape {
  id: string;
  label: string;
  shape: number[];
  axis: number;
}

/** The shapes of issue 4 (the first is the one its targets are stated at), and issue 14's small ones (a dense layer, a small conv batch). */
export const SHAPES: BenchShape[] = [
  {id: 'nhwc', label: '[32,32,32,64] channels-last', shape: [32, 32, 32, 64], axis: -1},
  {id: 'nchw', label: '[32,64,32,32] channels-first', shape: [32, 64, 32, 32], axis: 1},
  {id: 'dense', label: '[256,1024] dense', shape: [256, 1024], axis: -1},
  {id: 'rank5', label: '[8,16,16,16,32] rank 5', shape: [8, 16, 16, 16, 32], axis: -1},
  {id: 'small-dense', label: '[64,64] dense', shape: [64, 64], axis: -1},
  {id: 'small-nhwc', label: '[32,8,8,32] channels-last', shape: [32, 8, 8, 32], axis: -1},
];

/**
 * `ours-js`: our layer with the SIMD WebAssembly loops turned off (on wasm: what SIMD buys).
 * `ours-renorm`, `ours-ghost`: our layer with Batch Renormalization, or with ghost batches (issue 11).
 */
export type ContenderName = 'ours' | 'ours-js' | 'stock' | 'ours-renorm' | 'ours-ghost';

/** Our variants as benchmarked: renorm with the paper's final clipping; 4 ghost batches per batch. */
const VARIANT_ARGS: Partial<Record<ContenderName, (shape: number[]) => Record<string, unknown>>> = {
  'ours-renorm': () => ({renorm: true, renormClipping: {rmax: 3, rmin: 1 / 3, dmax: 5}}),
  'ours-ghost': shape => ({virtualBatchSize: shape[0] / 4}),
};

/** A batch-norm implementation under test: a forward pass and the variables it trains. */
export interface Contender {
  readonly name: ContenderName;
  /** y for x; in training mode this also updates the moving statistics, as a layer does. */
  apply(x: tf.Tensor, training: boolean): tf.Tensor;
  trainable(): tf.Variable[];
  /** Runs a whole step (forward and backward) in this contender's settings. */
  run<T>(step: () => T): T;
  dispose(): void;
}

const MOMENTUM = 0.99;

/**
 * Per-channel starting weights [gamma, beta, movingMean, movingVariance], distinct per channel so a
 * layer that mixes channels up (the stock layer in channels-first inference) shows wrong results.
 */
function initialWeights(channels: number): tf.Tensor1D[] {
  return tf.tidy(() => {
    const c = tf.range(0, channels, 1, 'float32');
    return [tf.add(1, tf.mul(0.5, tf.sin(c))), tf.mul(0.1, tf.cos(c)), tf.add(3, tf.mul(0.2, tf.sin(tf.mul(c, 0.7)))),
      tf.add(4, tf.mul(0.5, tf.cos(tf.mul(c, 0.3))))];
  });
}

/**
 * A layer built by one inference call (which is how tfjs-layers builds weights) and given the
 * common starting weights. Throws where the layer cannot run the shape at all (stock: rank 5).
 */
function layerContender(name: ContenderName, layer: tf.layers.Layer, shape: number[], axis: number): Contender {
  try {
    tf.tidy(() => { layer.apply(tf.zeros(shape), {training: false}); });
  } catch (e) {
    if (layer.built) layer.dispose();
    throw e;
  }
  const init = initialWeights(channelCount(shape, normalizeAxes(axis, shape.length)));
  // Renorm's extra weights start as the paper's: moving_stddev and renorm_stddev = √moving_variance,
  // renorm_mean = moving_mean. Ghost batches' weights have Keras 2's shape: the same values reshaped.
  const extra = layer.weights.length > 4 ? tf.tidy(() => [tf.sqrt(init[3]), init[2].clone(), tf.sqrt(init[3])]) : [];
  const values = [...init, ...extra].map((t, i) => t.reshape(layer.weights[i].shape as number[]));
  layer.setWeights(values);
  tf.dispose([...init, ...extra, ...values]);
  return {
    name,
    apply: (x, training) => layer.apply(x, {training}) as tf.Tensor,
    trainable: () => layer.trainableWeights.map(w => w.read() as tf.Variable),
    run: name === 'ours-js' ? withoutSimd : step => step(),
    dispose: () => { layer.dispose(); },
  };
}

function withoutSimd<T>(step: () => T): T {
  const saved = tf.env().getBool(SIMD_FLAG);
  tf.env().set(SIMD_FLAG, false);
  try {
    return step();
  } finally {
    tf.env().set(SIMD_FLAG, saved);
  }
}

/** Creates a fresh contender, with the same starting weights whichever it is. */
export function makeContender(name: ContenderName, {shape, axis}: BenchShape): Contender {
  const args = {axis, momentum: MOMENTUM};
  return layerContender(name, name === 'stock' ? tf.layers.batchNormalization(args) :
      batchNormalization({...args, ...VARIANT_ARGS[name]?.(shape)}), shape, axis);
}

/** The benchmark inputs: x (a variable, so its gradient is taken like gamma's) and the upstream dy. */
export interface Inputs {
  x: tf.Variable;
  dy: tf.Tensor;
}

/** Deterministic inputs; x has a non-zero mean per channel so the statistics matter. */
export function makeInputs({shape}: BenchShape): Inputs {
  return tf.tidy(() => ({
    x: tf.variable(tf.add(tf.randomNormal(shape, 0, 2, 'float32', 1), 3), true),
    dy: tf.randomNormal(shape, 0, 1, 'float32', 2),
  }));
}

/** Inference: the layer applied with training false. Returns y (caller disposes). */
export function inferenceStep(c: Contender, {x}: Inputs): tf.Tensor {
  return c.run(() => c.apply(x, false));
}

/**
 * One training step: forward in training mode (moving statistics updated) and the gradients of
 * sum(y·dy) for x, gamma and beta. dy is handed to tf.grads as the upstream gradient, which is
 * exactly that gradient without timing a full-size multiply and its backward (as in a network,
 * where dy arrives from the layers above). Returns [dx, dgamma, dbeta] (caller disposes).
 */
export function trainingStep(c: Contender, {x, dy}: Inputs): tf.Tensor[] {
  // The layer reads its own variables; passing the same tensors as arguments makes tf.grads
  // differentiate with respect to them.
  return c.run(() => tf.grads(() => c.apply(x, true))([x, ...c.trainable()], dy));
}

/**
 * The convnet-epoch benchmark's models, all the `npm start` convnet: without normalization and
 * without biases (`none`: the normalized networks minus their batch-norm layers, the baseline),
 * without normalization with biases (`biases`: the `npm start` baseline, whose bias gradients are
 * reductions of their own), with the stock layer, with ours.
 */
export type ConvnetVariant = 'none' | 'biases' | 'stock' | 'ours';
export const CONVNET_VARIANTS: ConvnetVariant[] = ['none', 'biases', 'stock', 'ours'];

/** The learning rate of the convnet benchmark's SGD (the timing does not depend on it). */
const CONVNET_LEARNING_RATE = 0.1;

/** One of the convnet benchmark's models, compiled. */
export function convnetModel(variant: ConvnetVariant): tf.Sequential {
  if (variant !== 'none') return buildModel(variant === 'biases' ? 'none' : variant, CONVNET_LEARNING_RATE);
  const model = convnet(null, {useBias: false});
  model.compile({optimizer: tf.train.sgd(CONVNET_LEARNING_RATE), loss: 'categoricalCrossentropy'});
  return model;
}

/** Deterministic MNIST-sized images and one-hot labels for the convnet (the timing does not depend on the values). */
export function convnetData(samples: number): {xs: tf.Tensor4D; ys: tf.Tensor2D} {
  const classes = 10;
  return tf.tidy(() => ({
    xs: tf.randomNormal([samples, IMAGE_SIZE, IMAGE_SIZE, 1], 0, 1, 'float32', 4) as tf.Tensor4D,
    ys: tf.oneHot(tf.randomUniform([samples], 0, classes, 'int32', 5) as tf.Tensor1D, classes).toFloat() as tf.Tensor2D,
  }));
}
