/**
 * BatchNorm: a drop-in replacement for tf.layers.batchNormalization (same arguments, defaults,
 * weights and config keys) built on batchNormTrain / batchNormInfer, so it is also correct where the
 * stock layer is not: any channel axis or list of axes, any rank >= 2, scale/center false in
 * training, trainable = false (Keras fine-tuning semantics) and masks (Keras 3 semantics).
 */
import {add, cast, div, mul, reshape, serialization, square, sub, sum, Tensor, tidy} from '@tensorflow/tfjs-core';
import {InputSpec, layers, LayerVariable, Shape} from '@tensorflow/tfjs-layers';
import type {Constraint} from '@tensorflow/tfjs-layers/dist/constraints';
import type {Initializer} from '@tensorflow/tfjs-layers/dist/initializers';
import type {BatchNormalizationLayerArgs} from '@tensorflow/tfjs-layers/dist/layers/normalization';
import type {Regularizer} from '@tensorflow/tfjs-layers/dist/regularizers';
import type {Kwargs} from '@tensorflow/tfjs-layers/dist/types';
import {callSiteTraining, InferenceStatistics} from '../deploy/call_site_training';
import {batchNormInfer} from '../ops/batch_norm_infer';
import {batchNormTrain, BatchNormTrainResult} from '../ops/batch_norm_train';
import {reductionAxes} from '../ops/channel_axes';
import {argumentError, AxisArg, checkAxes, checkEpsilon} from '../ops/validate';

/**
 * Every argument of tf.layers.batchNormalization (same names, same defaults), except that `axis`
 * may also be a list of axes: the channels are then every combination of those dimensions.
 */
export interface BatchNormArgs extends Omit<BatchNormalizationLayerArgs, 'axis'> {
  /** Channel axis, or list of axes; negative counts from the end. Default -1 (channels-last). */
  axis?: AxisArg;
  /**
   * Statistics used in inference (predict, evaluate, plain apply): 'moving' (default) or 'batch',
   * which normalizes every batch with its own statistics at inference too, as Keras does for
   * `BatchNormalization()(x, training=True)` (PyTorch: track_running_stats=False; Haiku:
   * test_local_stats=True). Training (fit) is unchanged; a frozen layer still uses the moving ones.
   */
  inferenceStatistics?: InferenceStatistics;
}

/** The arguments the stock layer parses into initializer, regularizer and constraint objects. */
const KERAS_OBJECT_ARGS = [
  'betaInitializer', 'gammaInitializer', 'movingMeanInitializer', 'movingVarianceInitializer',
  'betaRegularizer', 'gammaRegularizer', 'betaConstraint', 'gammaConstraint',
] as const;

/** What the stock layer's constructor holds after parsing KERAS_OBJECT_ARGS (private fields there). */
interface ParsedKerasObjects {
  betaInitializer: Initializer;
  gammaInitializer: Initializer;
  movingMeanInitializer: Initializer;
  movingVarianceInitializer: Initializer;
  betaRegularizer: Regularizer | null;
  gammaRegularizer: Regularizer | null;
  betaConstraint: Constraint | null;
  gammaConstraint: Constraint | null;
}

/**
 * Keras' backend epsilon (1e-7), which Keras 3 adds to the sum of mask weights so that a channel
 * whose positions are all masked gets mean 0 and variance 0 instead of NaN.
 */
const KERAS_BACKEND_EPSILON = 1e-7;

/**
 * Parses initializer/regularizer/constraint identifiers exactly as tf.layers.batchNormalization does.
 * tfjs-layers keeps getInitializer/getRegularizer/getConstraint and their serializers internal (not
 * exported from the package root, and its dist/ modules are ES modules a CommonJS build cannot
 * require), but the stock layer's constructor runs exactly those functions and its getConfig runs
 * the serializers. So a stock layer that is never built does the parsing and the serialization:
 * the same strings, config dicts and objects are accepted, with the same error messages. Created
 * without a name it also draws the next stock default name (batch_normalization_N), which BatchNorm
 * takes, so a model's layer and weight names are the ones the stock layer would have produced.
 */
function parseKerasObjects(args: BatchNormArgs): layers.Layer {
  const parserArgs: BatchNormalizationLayerArgs = {name: args.name, ...Object.fromEntries(KERAS_OBJECT_ARGS.map(key => [key, args[key]]))};
  try {
    return layers.batchNormalization(parserArgs);
  } catch (e) {
    throw new Error(`BatchNorm: ${(e as Error).message}`);
  }
}

/** The parsed objects, read from the stock layer; checked so a tfjs change fails loudly here. */
function parsedObjects(parser: layers.Layer): ParsedKerasObjects {
  const parsed = parser as unknown as ParsedKerasObjects;
  for (const key of KERAS_OBJECT_ARGS) {
    if (parsed[key] === undefined) {
      throw new Error(`BatchNorm: this version of @tensorflow/tfjs-layers does not expose the parsed '${key}'`);
    }
  }
  return parsed;
}

function checkAxisArgument(fn: string, axis: unknown): AxisArg {
  const list = Array.isArray(axis) ? axis : [axis];
  if (list.length === 0 || !list.every(a => Number.isInteger(a))) {
    throw argumentError(fn, 'axis', `is ${JSON.stringify(axis)}, expected an integer or a non-empty list of integers`);
  }
  // A copy, so that the caller's array and the config this layer reports stay independent.
  return Array.isArray(axis) ? [...axis] : (axis as number);
}

function checkMomentum(fn: string, momentum: unknown): number {
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
    throw argumentError(fn, 'momentum', `is ${JSON.stringify(momentum)}, expected a number in [0, 1]`);
  }
  return momentum;
}

function checkInferenceStatistics(fn: string, value: unknown): InferenceStatistics {
  if (value !== 'moving' && value !== 'batch') {
    throw argumentError(fn, 'inferenceStatistics', `is ${JSON.stringify(value)}, expected 'moving' or 'batch'`);
  }
  return value;
}

function checkBoolean(fn: string, name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw argumentError(fn, name, `is ${JSON.stringify(value)}, expected true or false`);
  return value;
}

/**
 * Keras 3 `BatchNormalization._moments` with a mask, to the letter: positions weighted by the mask
 * (cast to float), mean = Σw·x / (Σw + 1e-7), variance = Σw·(w·x − mean)² / (Σw + 1e-7), which for a
 * 0/1 mask is the biased mean and variance of the unmasked positions. The mask takes x's shape with
 * every channel dimension set to 1; Keras expands it at the last axis, which is the same thing for
 * axis = -1 and is generalized here to any channel axes. Composite tf ops differentiated by autodiff:
 * masked training is rare, so it does not get a fused kernel.
 */
export function maskedMoments(x: Tensor, mask: Tensor, axes: number[]): {mean: Tensor; variance: Tensor} {
  const reduce = reductionAxes(x.rank, axes);
  const weights = maskWeights(x, mask, axes);
  const weightedInputs = mul(weights, x);
  const sumOfWeights = add(sum(weights, reduce, true), KERAS_BACKEND_EPSILON);
  const mean = div(sum(weightedInputs, reduce, true), sumOfWeights);
  const variance = div(sum(mul(weights, square(sub(weightedInputs, mean))), reduce, true), sumOfWeights);
  return {mean, variance};
}

/** The weight of every position of x in the masked statistics, shaped to broadcast against x (recalibrate shares it). */
export function maskWeights(x: Tensor, mask: Tensor, axes: number[]): Tensor {
  return reshape(cast(mask, 'float32'), x.shape.map((d, i) => (axes.includes(i) ? 1 : d)));
}

/**
 * Batch normalization layer, a drop-in for tf.layers.batchNormalization: same arguments, defaults,
 * weights (gamma, beta, moving_mean, moving_variance) and config keys.
 */
export class BatchNorm extends layers.Layer {
  /** Registered name, Keras custom-object style; never collides with the stock 'BatchNormalization'. */
  static className = 'TfjsBatchNorm>BatchNorm';

  readonly axis: AxisArg;
  readonly momentum: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  readonly inferenceStatistics: InferenceStatistics;
  /** The stock layer that parsed and serializes the initializers, regularizers and constraints. */
  private readonly kerasObjects: layers.Layer;
  /** Sorted non-negative channel axes, known once the input rank is (build). */
  private channelAxes: number[] = [];
  private gamma: LayerVariable | null = null;
  private beta: LayerVariable | null = null;
  // Created by build, which apply runs before the first call.
  private movingMean!: LayerVariable;
  private movingVariance!: LayerVariable;

  constructor(args: BatchNormArgs = {}) {
    const kerasObjects = parseKerasObjects(args);
    super({...args, name: kerasObjects.name});
    this.kerasObjects = kerasObjects;
    const fn = this.errorPrefix();
    this.axis = checkAxisArgument(fn, args.axis ?? -1);
    this.momentum = checkMomentum(fn, args.momentum ?? 0.99);
    this.epsilon = checkEpsilon(fn, args.epsilon ?? 1e-3);
    this.center = checkBoolean(fn, 'center', args.center ?? true);
    this.scale = checkBoolean(fn, 'scale', args.scale ?? true);
    this.inferenceStatistics = checkInferenceStatistics(fn, args.inferenceStatistics ?? 'moving');
    // Normalization keeps every position, so the base computeMask passes the incoming mask on.
    this.supportsMasking = true;
  }

  /** Creates the weights in the stock order: gamma, beta, moving_mean, moving_variance. */
  override build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const fn = this.errorPrefix();
    const axes = checkAxes(fn, this.axis, shape.length);
    const undefinedAxis = axes.find(a => shape[a] == null);
    if (undefinedAxis !== undefined) {
      throw argumentError(fn, 'axis', `is ${JSON.stringify(this.axis)}, but axis ${undefinedAxis} of the input shape ` +
          `[${shape.map(d => d ?? 'null')}] is undefined; channel dimensions must be known to create the weights`);
    }
    this.channelAxes = axes;
    const channelDims = axes.map(a => shape[a] as number);
    // Weights given to the constructor are set right after build: refuse them now, before any
    // variable exists, so a bad list leaves nothing allocated.
    if (this.initialWeights != null) this.checkWeights(this.initialWeights, this.weightNames().map(() => channelDims));
    this.inputSpec = [new InputSpec({ndim: shape.length, axes: Object.fromEntries(axes.map((a, i) => [a, channelDims[i]]))})];
    const o = parsedObjects(this.kerasObjects);
    if (this.scale) this.gamma = this.addWeight('gamma', channelDims, undefined, o.gammaInitializer, o.gammaRegularizer ?? undefined, true, o.gammaConstraint ?? undefined);
    if (this.center) this.beta = this.addWeight('beta', channelDims, undefined, o.betaInitializer, o.betaRegularizer ?? undefined, true, o.betaConstraint ?? undefined);
    this.movingMean = this.addWeight('moving_mean', channelDims, undefined, o.movingMeanInitializer, undefined, false);
    this.movingVariance = this.addWeight('moving_variance', channelDims, undefined, o.movingVarianceInitializer, undefined, false);
    this.built = true;
  }

  /**
   * Training (`training: true` and the layer trainable): normalizes with the batch statistics and
   * moves the moving statistics toward them. Otherwise, including a frozen layer inside `fit`:
   * normalizes with the moving statistics and leaves them alone.
   */
  override call(inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor {
    return tidy(() => {
      const x = this.singleInput(inputs);
      const mask = this.checkMask(x, kwargs.mask);
      const modelTraining = kwargs.training === true;
      // A call-site argument (Keras `bn(x, training=True)`, kept in the layer's node) overrides the model's.
      const training = callSiteTraining(this) ?? modelTraining;
      const gamma = this.gamma?.read() ?? null;
      const beta = this.beta?.read() ?? null;
      const options = {axis: this.channelAxes, epsilon: this.epsilon};

      const useBatchStatistics = (training || this.inferenceStatistics === 'batch') && this.trainable;

      if (!useBatchStatistics) {
        return batchNormInfer(x, this.movingMean.read(), this.movingVariance.read(), gamma, beta, options);
      }
      const {y, mean, variance} = mask == null ?
          batchNormTrain(x, gamma, beta, options) :
          this.maskedBatchNormTrain(x, mask, gamma, beta);
      // Only a model being trained moves the statistics: predict and evaluate leave the model as it was.
      if (training && modelTraining) {
        this.updateMovingAverage(this.movingMean, mean);
        this.updateMovingAverage(this.movingVariance, variance);
      }
      return y;
    });
  }

  /**
   * setWeights with every tensor's count, shape and dtype checked before any is written, so a bad
   * list changes nothing (tfjs writes in order and fails midway); errors name the layer and weight.
   */
  override setWeights(weights: Tensor[]): void {
    if (!this.built) {
      throw new Error(`${this.errorPrefix()}: setWeights before the layer is built; apply it or call build(inputShape) ` +
          `first, or pass the weights to the constructor as 'weights'`);
    }
    this.checkWeights(weights, this.weights.map(w => w.shape as number[]));
    super.setWeights(weights);
  }

  /** The stock layer's config keys (initializers etc. serialized by tfjs-layers), then the base keys. */
  override getConfig(): serialization.ConfigDict {
    const stockConfig = this.kerasObjects.getConfig();
    const config: serialization.ConfigDict = {
      axis: this.axis,
      momentum: this.momentum,
      epsilon: this.epsilon,
      center: this.center,
      scale: this.scale,
    };
    for (const key of KERAS_OBJECT_ARGS) config[key] = stockConfig[key];
    // Written only when set, so a default layer's config stays the stock layer's, key for key.
    if (this.inferenceStatistics !== 'moving') config.inferenceStatistics = this.inferenceStatistics;
    return {...config, ...super.getConfig()};
  }

  /** Batch statistics from the masked moments; y through batchNormInfer, differentiable in them. */
  private maskedBatchNormTrain(x: Tensor, mask: Tensor, gamma: Tensor | null, beta: Tensor | null): BatchNormTrainResult {
    const {mean, variance} = maskedMoments(x, mask, this.channelAxes);
    const y = batchNormInfer(x, mean, variance, gamma, beta, {axis: this.channelAxes, epsilon: this.epsilon});
    return {y, mean: reshape(mean, [mean.size]), variance: reshape(variance, [variance.size])};
  }

  /** moving = moving·momentum + batch·(1 − momentum), the tfjs / Keras 3 convention. */
  private updateMovingAverage(moving: LayerVariable, batch: Tensor): void {
    const m = this.momentum;
    moving.write(add(mul(moving.read(), m), mul(reshape(batch, moving.shape as number[]), 1 - m)));
  }

  /** Weight names in the stock order: gamma (if scale), beta (if center), moving_mean, moving_variance. */
  private weightNames(): string[] {
    return [...(this.scale ? ['gamma'] : []), ...(this.center ? ['beta'] : []), 'moving_mean', 'moving_variance'];
  }

  /** Checks a weights list against the variables' shapes (every weight is float32): count, then each tensor. */
  private checkWeights(weights: unknown, shapes: number[][]): void {
    const fn = this.errorPrefix();
    const names = this.weightNames();
    if (!Array.isArray(weights) || weights.length !== shapes.length) {
      const got = Array.isArray(weights) ? `has ${weights.length} tensors` : `is ${String(weights)}`;
      throw argumentError(fn, 'weights', `${got}, expected ${shapes.length}: [${names.join(', ')}]`);
    }
    weights.forEach((w: unknown, i) => {
      const tensor = `a float32 tensor of shape [${shapes[i]}]`;
      const problem = !(w instanceof Tensor) ? `is ${String(w)}, expected ${tensor}` :
          w.isDisposed ? `is a disposed tensor, expected ${tensor}` :
          w.shape.join() !== shapes[i].join() ? `has shape [${w.shape}], expected shape [${shapes[i]}]` :
          w.dtype !== 'float32' ? `has dtype ${w.dtype}, expected float32` : null;
      if (problem != null) throw argumentError(fn, 'weights', `[${i}] (${names[i]}) ${problem}`);
    });
  }

  private singleInput(inputs: Tensor | Tensor[]): Tensor {
    if (!Array.isArray(inputs)) return inputs;
    if (inputs.length !== 1) {
      throw argumentError(this.errorPrefix(), 'inputs', `is a list of ${inputs.length} tensors, expected exactly one tensor`);
    }
    return inputs[0];
  }

  /** The mask must have x's shape without the channel axes (Keras 3: one dimension less than x). */
  private checkMask(x: Tensor, mask: unknown): Tensor | null {
    if (mask == null) return null;
    const expected = x.shape.filter((_, i) => !this.channelAxes.includes(i));
    if (!(mask instanceof Tensor) || mask.shape.join() !== expected.join()) {
      const got = mask instanceof Tensor ? `a tensor of shape [${mask.shape}]` : String(mask);
      throw argumentError(this.errorPrefix(), 'mask', `is ${got}, expected shape [${expected}]: the input shape ` +
          `[${x.shape}] without the channel axis (${this.channelAxes.join(', ')})`);
    }
    return mask;
  }

  private errorPrefix(): string {
    return `BatchNorm layer '${this.name}'`;
  }
}

serialization.registerClass(BatchNorm, 'TfjsBatchNorm', 'BatchNorm');

/** Creates a BatchNorm layer; same arguments and defaults as tf.layers.batchNormalization. */
export function batchNormalization(args?: BatchNormArgs): BatchNorm {
  return new BatchNorm(args);
}
