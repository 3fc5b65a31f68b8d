/**
 * The BatchNorm layer's arguments: which names it understands, and the checks each value gets.
 * Every check runs in the constructor, before any weight exists, and names the layer, the argument,
 * the value and what was expected.
 *
 * Two rules meet here. Keras refuses keyword arguments it does not know ("Unrecognized keyword
 * arguments"), so a misspelt option cannot be silently ignored; and every key that Keras 1, 2, 3
 * and tfjs write into `BatchNormalization` configs must keep loading exactly as the stock tfjs layer
 * loads it. So the names below are the tfjs arguments plus the keys those files carry; a key that
 * would change the math if ignored (Keras 1 `mode` 1 or 2, an `adjustment` function, an activity
 * regularizer) is refused by value rather than dropped.
 */
import type {InferenceStatistics} from '../deploy/call_site_training';
import {argumentError, AxisArg} from '../ops/validate';

/**
 * Keys that Keras and tfjs write into `BatchNormalization` configs (camel-cased by tfjs's
 * deserializer) and that BatchNorm accepts for compatibility. None of them changes the math.
 */
export interface KerasCompatibilityArgs {
  /** Keras 1: 0 is the usual feature-wise normalization; 1 and 2 are refused. */
  mode?: number | null;
  /** Keras 2: a choice of TensorFlow implementation; the result is the same. */
  fused?: boolean | null;
  /** Keras 2: a function, which Keras cannot serialize; only null/absent is accepted. */
  adjustment?: null;
  /** Keras 2.12+/3: synchronize statistics across devices; tfjs trains on one device, so plain BN. */
  synchronized?: boolean | null;
  /** Keras 1: the input dtype (as `input_dtype`); the stock layer ignores it too. */
  inputDtype?: unknown;
  /** Keras 2/3 base layer key; tfjs-layers cannot apply activity regularizers, so only null is accepted. */
  activityRegularizer?: null;
}

/** Base tfjs-layers arguments (LayerArgs), plus what tfjs's deserializer adds to every config. */
const BASE_ARGUMENTS = ['name', 'trainable', 'inputShape', 'batchInputShape', 'batchSize', 'dtype', 'weights',
  'inputDType', 'customObjects'];
/** tf.layers.batchNormalization's own arguments. */
const STOCK_ARGUMENTS = ['axis', 'momentum', 'epsilon', 'center', 'scale', 'betaInitializer', 'gammaInitializer',
  'movingMeanInitializer', 'movingVarianceInitializer', 'betaRegularizer', 'gammaRegularizer', 'betaConstraint',
  'gammaConstraint'];
/** Batch renormalization and ghost batches (Keras 2 / Keras 3.14 names, camel-cased); statistics used in inference. */
const VARIANT_ARGUMENTS = ['renorm', 'renormClipping', 'renormMomentum', 'virtualBatchSize', 'inferenceStatistics'];
const COMPATIBILITY_ARGUMENTS: Array<keyof KerasCompatibilityArgs> =
    ['mode', 'fused', 'adjustment', 'synchronized', 'inputDtype', 'activityRegularizer'];
const KNOWN_ARGUMENTS = new Set([...BASE_ARGUMENTS, ...STOCK_ARGUMENTS, ...VARIANT_ARGUMENTS, ...COMPATIBILITY_ARGUMENTS]);

/** snake_case → camelCase, as tfjs's deserializer converts config keys. */
function camelCase(key: string): string {
  return key.replace(/_(.)/g, (_, c: string) => c.toUpperCase());
}

/**
 * Refuses arguments the layer does not understand, naming every one (an argument given as
 * `undefined` counts as not given). A snake_case spelling of a known argument gets a hint.
 */
export function checkArgumentNames(fn: string, args: object): void {
  const unknown = Object.entries(args).filter(([key, value]) => value !== undefined && !KNOWN_ARGUMENTS.has(key)).map(([key]) => key);
  if (unknown.length === 0) return;
  const hints = unknown.filter(key => KNOWN_ARGUMENTS.has(camelCase(key))).map(key => `'${key}' is spelt '${camelCase(key)}' here`);
  throw new Error(`${fn}: unrecognized argument${unknown.length > 1 ? 's' : ''} ${unknown.map(k => `'${k}'`).join(', ')}` +
      `${hints.length > 0 ? ` (${hints.join('; ')})` : ''}; expected the arguments of tf.layers.batchNormalization, ` +
      `renorm, renormClipping, renormMomentum, virtualBatchSize or inferenceStatistics`);
}

/**
 * Checks the Keras compatibility keys: accepted where they leave the math as it is, refused (by
 * value) where ignoring them would change it. `variants` says whether renorm or ghost batches are
 * on, with which Keras 2 refuses `fused: true`.
 */
export function checkKerasCompatibility(fn: string, args: KerasCompatibilityArgs, variants: {renorm: boolean; ghost: boolean}): void {
  if (args.mode != null && args.mode !== 0) {
    throw argumentError(fn, 'mode', `is ${JSON.stringify(args.mode)}: Keras 1 mode ${args.mode} (${args.mode === 1 ? 'sample-wise ' +
        'normalization' : 'batch statistics at inference too'}) is not supported; expected 0 (feature-wise, the only ` +
        `behaviour of Keras 2, 3 and tfjs)`);
  }
  if (args.fused != null) {
    checkBoolean(fn, 'fused', args.fused);
    if (args.fused && (variants.renorm || variants.ghost)) {
      throw argumentError(fn, 'fused', `is true, which Keras refuses together with ${variants.renorm ? 'renorm' : 'virtualBatchSize'} ` +
          `(the fused TensorFlow kernel cannot do it); expected false or null`);
    }
  }
  if (args.adjustment != null) {
    throw argumentError(fn, 'adjustment', `is ${typeof args.adjustment === 'function' ? 'a function' : JSON.stringify(args.adjustment)}: ` +
        `Keras 2's adjustment is not supported (nor can Keras serialize it); expected null`);
  }
  if (args.synchronized != null) checkBoolean(fn, 'synchronized', args.synchronized);
  if (args.activityRegularizer != null) {
    throw argumentError(fn, 'activityRegularizer', `is ${JSON.stringify(args.activityRegularizer)}: tfjs-layers cannot apply ` +
        `activity regularizers (Layer.apply refuses them), and ignoring it would change the training loss; expected null`);
  }
}

/** An integer axis or a non-empty list of integer axes (checked against the rank at build). */
export function checkAxisArgument(fn: string, axis: unknown): AxisArg {
  const list = Array.isArray(axis) ? axis : [axis];
  if (list.length === 0 || !list.every(a => Number.isInteger(a))) {
    throw argumentError(fn, 'axis', `is ${JSON.stringify(axis)}, expected an integer or a non-empty list of integers`);
  }
  // A copy, so that the caller's array and the config this layer reports stay independent.
  return Array.isArray(axis) ? [...axis] : (axis as number);
}

/** A momentum: a number in [0, 1]. */
export function checkMomentum(fn: string, name: string, momentum: unknown): number {
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
    throw argumentError(fn, name, `is ${JSON.stringify(momentum)}, expected a number in [0, 1]`);
  }
  return momentum;
}

/** true or false. */
export function checkBoolean(fn: string, name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw argumentError(fn, name, `is ${JSON.stringify(value)}, expected true or false`);
  return value;
}

/** Ghost batches: null/absent (off) or a positive integer, the number of samples in each ghost batch. */
export function checkVirtualBatchSize(fn: string, value: unknown): number | null {
  if (value == null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw argumentError(fn, 'virtualBatchSize', `is ${JSON.stringify(value)}, expected a positive integer (the number of ` +
        `samples in each ghost batch) or null`);
  }
  return value;
}

/** Statistics used in inference: 'moving' or 'batch'. */
export function checkInferenceStatistics(fn: string, value: unknown): InferenceStatistics {
  if (value !== 'moving' && value !== 'batch') {
    throw argumentError(fn, 'inferenceStatistics', `is ${JSON.stringify(value)}, expected 'moving' or 'batch'`);
  }
  return value;
}
