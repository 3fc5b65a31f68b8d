/**
 * BatchNorm: a drop-in replacement for tf.layers.batchNormalization (same arguments, defaults,
 * weights and config keys) built on batchNormTrain / batchNormInfer, so it is also correct where the
 * stock layer is not: any channel axis or list of axes, any rank >= 2, scale/center false in
 * training, trainable = false (Keras fine-tuning semantics) and masks (Keras 3 semantics).
 */
import {add, cast, div, mul, reshape, serialization, square, sub, sum, Tensor, Tensor1D, tidy} from '@tensorflow/tfjs-core';
import {initializers, InputSpec, layers, LayerVariable, Shape} from '@tensorflow/tfjs-layers';
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
import {checkArgumentNames, checkAxisArgument, checkBoolean, checkInferenceStatistics, checkKerasCompatibility, checkMomentum,
  checkVirtualBatchSize, KerasCompatibilityArgs} from './config';
import {checkGhostAxes, fromView, ghostView, ghostWeightShape, meanOverGhosts, perGhost, plainView, StatisticsView} from './ghost';
import {updateMovingAverage} from './moving_statistics';
import {composeCorrection, RENORM_STEP_WEIGHT_NAME, RENORM_WEIGHT_NAMES, renormCorrection, RenormSettings, RenormState,
  sqrtInitializer, updateRenormStatistics} from './renorm';
import {checkRenormClipping, hasSchedule, RenormClipping} from './renorm_clipping';

/**
 * Every argument of tf.layers.batchNormalization (same names, same defaults), except that `axis`
 * may also be a list of axes: the channels are then every combination of those dimensions; plus
 * Batch Renormalization (Keras 3.14's renorm arguments) and ghost batches (Keras 2's virtual_batch_size).
 */
export interface BatchNormArgs extends Omit<BatchNormalizationLayerArgs, 'axis'> {
  /** Channel axis, or list of axes; negative counts from the end. Default -1 (channels-last). */
  axis?: AxisArg;
  /** Batch Renormalization (Ioffe 2017), as Keras 3.14. Default false. */
  renorm?: boolean;
  /**
   * Bounds of the renorm corrections: r to [rmin, rmax], d to [−dmax, dmax]; a missing key leaves
   * that side unbounded. Each bound is a number (Keras) or a ramp {from, to, startStep, endStep}
   * (the paper's relaxation schedule). Default {} (unbounded).
   */
  renormClipping?: RenormClipping | null;
  /** Momentum of renorm_mean and renorm_stddev. Default 0.99. */
  renormMomentum?: number;
  /** Ghost batches of this many samples in training (Keras 2); must divide the batch size. Default null (off). */
  virtualBatchSize?: number | null;
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

/**
 * Keras 3 `BatchNormalization._moments` with a mask, to the letter: positions weighted by the mask
 * (cast to float), mean = Σw·x / (Σw + 1e-7), variance = Σw·(w·x − mean)² / (Σw + 1e-7), which for a
 * 0/1 mask is the biased mean and variance of the unmasked positions. The mask takes x's shape with
 * every channel dimension set to 1; Keras expands it at the last axis, which is the same thing for
 * axis = -1 and is generalized here to any channel axes. (With ghost batches, `maskAxes` — the axes the
 * mask lacks — are the layer's channel axes, and the ghost axis is a channel axis the mask has.) Composite tf ops differentiated by autodiff:
 * masked training is rare, so it does not get a fused kernel.
 */
export function maskedMoments(x: Tensor, mask: Tensor, axes: number[], maskAxes = axes): {mean: Tensor; variance: Tensor} {
  const reduce = reductionAxes(x.rank, axes);
  const weights = maskWeights(x, mask, maskAxes);
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
 * weights (gamma, beta, moving_mean, moving_variance) and config keys. Two variants are thin
 * additions to it: Batch Renormalization (`renorm`, renorm.ts) and ghost batches
 * (`virtualBatchSize`, ghost.ts).
 */
export class BatchNorm extends layers.Layer {
  /** Registered name, Keras custom-object style; never collides with the stock 'BatchNormalization'. */
  static className = 'TfjsBatchNorm>BatchNorm';

  readonly axis: AxisArg;
  readonly momentum: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  readonly renorm: boolean;
  /** The clipping as given (numbers or ramps); {} when renorm is off or none was given. */
  readonly renormClipping: RenormClipping;
  readonly renormMomentum: number;
  readonly virtualBatchSize: number | null;
  readonly inferenceStatistics: InferenceStatistics;
  /** The stock layer that parsed and serializes the initializers, regularizers and constraints. */
  private readonly kerasObjects: layers.Layer;
  /** Sorted non-negative channel axes, known once the input rank is (build). */
  private channelAxes: number[] = [];
  /** Shape of every per-channel weight: the channel dims, or Keras 2's shape with ghost batches. */
  private weightShape: number[] = [];
  private gamma: LayerVariable | null = null;
  private beta: LayerVariable | null = null;
  // Created by build, which apply runs before the first call.
  private movingMean!: LayerVariable;
  private movingVariance!: LayerVariable;
  private renormState: RenormState | null = null;

  constructor(args: BatchNormArgs = {}) {
    const kerasObjects = parseKerasObjects(args);
    super({...args, name: kerasObjects.name});
    this.kerasObjects = kerasObjects;
    const fn = this.errorPrefix();
    checkArgumentNames(fn, args);
    this.axis = checkAxisArgument(fn, args.axis ?? -1);
    this.momentum = checkMomentum(fn, 'momentum', args.momentum ?? 0.99);
    this.epsilon = checkEpsilon(fn, args.epsilon ?? 1e-3);
    this.center = checkBoolean(fn, 'center', args.center ?? true);
    this.scale = checkBoolean(fn, 'scale', args.scale ?? true);
    this.inferenceStatistics = checkInferenceStatistics(fn, args.inferenceStatistics ?? 'moving');
    // As Keras: the clipping and renorm momentum are only read (and checked) when renorm is on.
    this.renorm = checkBoolean(fn, 'renorm', args.renorm ?? false);
    this.renormClipping = this.renorm ? checkRenormClipping(fn, args.renormClipping) : {};
    this.renormMomentum = this.renorm ? checkMomentum(fn, 'renormMomentum', args.renormMomentum ?? 0.99) : 0.99;
    this.virtualBatchSize = checkVirtualBatchSize(fn, args.virtualBatchSize);
    checkKerasCompatibility(fn, args as KerasCompatibilityArgs, {renorm: this.renorm, ghost: this.virtualBatchSize != null});
    // Normalization keeps every position, so the base computeMask passes the incoming mask on.
    this.supportsMasking = true;
  }

  /**
   * Creates the weights in the stock order: gamma, beta, moving_mean, moving_variance; then, with
   * renorm, moving_stddev, renorm_mean, renorm_stddev (and renorm_step with a clipping schedule).
   */
  override build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const fn = this.errorPrefix();
    const axes = checkAxes(fn, this.axis, shape.length);
    const undefinedAxis = axes.find(a => shape[a] == null);
    if (undefinedAxis !== undefined) {
      throw argumentError(fn, 'axis', `is ${JSON.stringify(this.axis)}, but axis ${undefinedAxis} of the input shape ` +
          `[${shape.map(d => d ?? 'null')}] is undefined; channel dimensions must be known to create the weights`);
    }
    if (this.virtualBatchSize != null) checkGhostAxes(fn, this.axis, axes);
    this.channelAxes = axes;
    const channelDims = axes.map(a => shape[a] as number);
    this.weightShape = this.virtualBatchSize == null ? channelDims : ghostWeightShape(shape, axes);
    // Weights given to the constructor are set right after build: refuse them now, before any
    // variable exists, so a bad list leaves nothing allocated.
    if (this.initialWeights != null) this.checkWeights(this.initialWeights, this.weightShapes());
    this.inputSpec = [new InputSpec({ndim: shape.length, axes: Object.fromEntries(axes.map((a, i) => [a, channelDims[i]]))})];
    const o = parsedObjects(this.kerasObjects);
    const perChannel = this.weightShape;
    if (this.scale) this.gamma = this.addWeight('gamma', perChannel, undefined, o.gammaInitializer, o.gammaRegularizer ?? undefined, true, o.gammaConstraint ?? undefined);
    if (this.center) this.beta = this.addWeight('beta', perChannel, undefined, o.betaInitializer, o.betaRegularizer ?? undefined, true, o.betaConstraint ?? undefined);
    this.movingMean = this.addWeight('moving_mean', perChannel, undefined, o.movingMeanInitializer, undefined, false);
    this.movingVariance = this.addWeight('moving_variance', perChannel, undefined, o.movingVarianceInitializer, undefined, false);
    if (this.renorm) {
      const stddevInitializer = sqrtInitializer(o.movingVarianceInitializer);
      const [movingStddev, renormMean, renormStddev] = [stddevInitializer, o.movingMeanInitializer, stddevInitializer].map(
          (initializer, i) => this.addWeight(RENORM_WEIGHT_NAMES[i], perChannel, undefined, initializer, undefined, false));
      const step = hasSchedule(this.renormClipping) ?
          this.addWeight(RENORM_STEP_WEIGHT_NAME, [], undefined, initializers.zeros(), undefined, false) : null;
      this.renormState = {movingStddev, renormMean, renormStddev, step};
    }
    this.built = true;
  }

  /**
   * Training (`training: true` and the layer trainable): normalizes with the batch statistics (of
   * each ghost batch, with ghost batches; corrected by r and d, with renorm) and moves the moving
   * statistics toward them. Otherwise, including a frozen layer inside `fit`: normalizes with the
   * moving statistics and leaves them alone.
   */
  override call(inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor {
    return tidy(() => {
      const x = this.singleInput(inputs);
      const mask = this.checkMask(x, kwargs.mask);
      const modelTraining = kwargs.training === true;
      // A call-site argument (Keras `bn(x, training=True)`, kept in the layer's node) overrides the model's.
      const training = callSiteTraining(this) ?? modelTraining;
      let gamma = this.gamma?.read() ?? null;
      let beta = this.beta?.read() ?? null;
      const options = {axis: this.channelAxes, epsilon: this.epsilon};

      const useBatchStatistics = (training || this.inferenceStatistics === 'batch') && this.trainable;

      if (!useBatchStatistics) {
        return batchNormInfer(x, this.movingMean.read(), this.movingVariance.read(), gamma, beta, options);
      }
      // Ghost batches and renorm's corrections are training devices: with batch statistics at
      // inference (inferenceStatistics 'batch'), the whole batch is normalized plainly.
      const view = training && this.virtualBatchSize != null ?
          ghostView(this.errorPrefix(), x, mask, this.channelAxes, this.virtualBatchSize) : plainView(x, mask, this.channelAxes);
      if (training && this.renormState != null) {
        const correction = renormCorrection(() => this.moments(view), this.renormState, this.renormSettings());
        ({gamma, beta} = composeCorrection(correction, gamma, beta));
      }
      const {y, mean, variance} = this.normalize(view, gamma, beta);
      // Only a model being trained moves the statistics: predict and evaluate leave the model as it was.
      if (training && modelTraining) this.updateStatistics(mean, variance);
      return view.x === x ? y : fromView(view, y, x.shape);
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

  /**
   * The stock layer's config keys (initializers etc. serialized by tfjs-layers), then renorm's and
   * ghost batches' keys only where they are on (as Keras 2 writes them, so a plain layer's config is
   * the stock one), then the base keys.
   */
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
    if (this.renorm) {
      Object.assign(config, {renorm: true, renormClipping: {...this.renormClipping} as serialization.ConfigDict, renormMomentum: this.renormMomentum});
    }
    if (this.virtualBatchSize != null) config.virtualBatchSize = this.virtualBatchSize;
    // Written only when set, so a default layer's config stays the stock layer's, key for key.
    if (this.inferenceStatistics !== 'moving') config.inferenceStatistics = this.inferenceStatistics;
    return {...config, ...super.getConfig()};
  }

  /**
   * Normalizes the view with its batch statistics; returns y (in the view's shape) and the batch
   * mean and biased variance per channel (averaged over ghost batches).
   */
  private normalize(view: StatisticsView, gamma: Tensor | null, beta: Tensor | null): BatchNormTrainResult {
    const g = gamma == null ? null : perGhost(gamma, view.ghosts);
    const b = beta == null ? null : perGhost(beta, view.ghosts);
    const {y, mean, variance} = view.mask == null ?
        batchNormTrain(view.x, g, b, {axis: view.axes, epsilon: this.epsilon}) :
        this.maskedBatchNormTrain(view, g, b);
    return {y, mean: meanOverGhosts(mean, view.ghosts) as Tensor1D, variance: meanOverGhosts(variance, view.ghosts) as Tensor1D};
  }

  /** The batch mean and biased variance per channel (averaged over ghost batches), for renorm's r and d. */
  private moments(view: StatisticsView): {mean: Tensor; variance: Tensor} {
    const {mean, variance} = view.mask == null ?
        batchNormTrain(view.x, null, null, {axis: view.axes, epsilon: this.epsilon}) :
        maskedMoments(view.x, view.mask, view.axes, view.maskAxes);
    return {mean: meanOverGhosts(reshape(mean, [mean.size]), view.ghosts), variance: meanOverGhosts(reshape(variance, [variance.size]), view.ghosts)};
  }

  /** Batch statistics from the masked moments; y through batchNormInfer, differentiable in them. */
  private maskedBatchNormTrain(view: StatisticsView, gamma: Tensor | null, beta: Tensor | null): BatchNormTrainResult {
    const {mean, variance} = maskedMoments(view.x, view.mask as Tensor, view.axes, view.maskAxes);
    const y = batchNormInfer(view.x, mean, variance, gamma, beta, {axis: view.axes, epsilon: this.epsilon});
    return {y, mean: reshape(mean, [mean.size]), variance: reshape(variance, [variance.size])};
  }

  /** Moves the moving statistics (and renorm's, with renorm) toward this step's batch statistics. */
  private updateStatistics(mean: Tensor, variance: Tensor): void {
    if (this.renormState != null) {
      updateRenormStatistics(mean, variance, this.renormState, this.movingMean, this.movingVariance, this.renormSettings());
    } else {
      updateMovingAverage(this.movingMean, mean, this.momentum);
      updateMovingAverage(this.movingVariance, variance, this.momentum);
    }
  }

  private renormSettings(): RenormSettings {
    return {clipping: this.renormClipping, renormMomentum: this.renormMomentum, momentum: this.momentum, epsilon: this.epsilon};
  }

  /** Weight names in the stock order: gamma (if scale), beta (if center), moving_mean, moving_variance; then renorm's. */
  private weightNames(): string[] {
    return [...(this.scale ? ['gamma'] : []), ...(this.center ? ['beta'] : []), 'moving_mean', 'moving_variance',
      ...(this.renorm ? RENORM_WEIGHT_NAMES : []), ...(hasSchedule(this.renormClipping) ? [RENORM_STEP_WEIGHT_NAME] : [])];
  }

  /** The shape of each weight, in weightNames() order: the per-channel shape, [] for the step counter. */
  private weightShapes(): number[][] {
    return this.weightNames().map(name => (name === RENORM_STEP_WEIGHT_NAME ? [] : this.weightShape));
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
