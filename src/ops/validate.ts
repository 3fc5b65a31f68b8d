/**
 * Argument checks shared by the ops and the layer. Every check runs before any tensor is created,
 * so a bad call throws without doing work and without leaking. Messages name the function, the
 * argument, the value received and what was expected.
 */
import {Tensor} from '@tensorflow/tfjs-core';
import {channelCount, normalizeAxes} from './channel_axes';

/** Axis argument accepted everywhere: one axis or a list of axes; negative values count from the end. */
export type AxisArg = number | number[];

/** The Error `${fn}: argument '${arg}' ${problem}` (for callers to throw); the one place error text is formatted. */
export function argumentError(fn: string, arg: string, problem: string): Error {
  return new Error(`${fn}: argument '${arg}' ${problem}`);
}

function describeValue(value: unknown): string {
  if (value instanceof Tensor) return `a ${value.dtype} tensor of shape [${value.shape}]`;
  if (Array.isArray(value)) return `[${value.join(', ')}]`;
  return typeof value === 'string' ? `'${value}'` : String(value);
}

/** Checks an axis or list of axes against a rank and returns them sorted and non-negative. */
export function checkAxes(fn: string, axis: AxisArg, rank: number): number[] {
  const list = Array.isArray(axis) ? axis : [axis];
  const expected = `an integer in [${-rank}, ${rank - 1}] (or a list of them) for an input of rank ${rank}`;
  if (list.length === 0) throw argumentError(fn, 'axis', `is [], expected ${expected}`);
  for (const a of list) {
    if (!Number.isInteger(a) || a < -rank || a >= rank) {
      throw argumentError(fn, 'axis', `is ${describeValue(axis)}, expected ${expected}`);
    }
  }
  const axes = normalizeAxes(list, rank);
  if (axes.some((a, i) => a === axes[i - 1])) {
    throw argumentError(fn, 'axis', `is ${describeValue(axis)}, which names the same axis twice for an input of rank ${rank}`);
  }
  return axes;
}

/**
 * The smallest epsilon accepted: the smallest normal float32 (2^-126 ≈ 1.18e-38). Below it ε is
 * subnormal or zero in float32 (GPUs flush subnormals to zero), and a channel of equal values would
 * divide by zero: 1/√(0 + ε) is no longer finite.
 */
export const MIN_EPSILON = 2 ** -126;

/** Checks that epsilon is a finite number >= MIN_EPSILON. */
export function checkEpsilon(fn: string, epsilon: unknown): number {
  if (!Number.isFinite(epsilon) || (epsilon as number) < MIN_EPSILON) {
    throw argumentError(fn, 'epsilon', `is ${describeValue(epsilon)}, expected a finite number >= ${MIN_EPSILON} ` +
        '(2^-126, the smallest normal float32: a smaller epsilon divides by zero on a channel of equal values)');
  }
  return epsilon as number;
}

/** Checks that x is a non-empty float32 tensor of rank >= 2. */
export function checkInput(fn: string, x: unknown): Tensor {
  if (!(x instanceof Tensor)) throw argumentError(fn, 'x', `is ${describeValue(x)}, expected a tf.Tensor`);
  if (x.dtype !== 'float32') throw argumentError(fn, 'x', `has dtype ${x.dtype}, expected float32`);
  if (x.rank < 2) throw argumentError(fn, 'x', `has rank ${x.rank} (shape [${x.shape}]), expected rank >= 2 (a batch dimension and at least one more)`);
  if (x.size === 0) throw argumentError(fn, 'x', `is empty (shape [${x.shape}]), expected at least one element`);
  return x;
}

/** Checks that a per-channel tensor (gamma, beta, mean, variance) is null or float32 with `channels` values. */
export function checkPerChannel(fn: string, name: string, t: unknown, channels: number, allowNull: boolean): Tensor | null {
  if (t == null && allowNull) return null;
  if (!(t instanceof Tensor)) {
    throw argumentError(fn, name, `is ${describeValue(t)}, expected a float32 tf.Tensor with ${channels} values${allowNull ? ' or null' : ''}`);
  }
  if (t.dtype !== 'float32') throw argumentError(fn, name, `has dtype ${t.dtype}, expected float32`);
  if (t.size !== channels) {
    throw argumentError(fn, name, `has shape [${t.shape}] (${t.size} values), expected ${channels} values: one per channel`);
  }
  return t;
}

/**
 * Checks a Keras mask against x: x's shape without its last axis (whatever the channel axes, as
 * Keras 3's `_moments` expands it at the last axis and broadcasts it over that axis), any dtype.
 */
export function checkMask(fn: string, mask: unknown, x: Tensor): Tensor | null {
  if (mask == null) return null;
  const expected = x.shape.slice(0, -1);
  if (!(mask instanceof Tensor) || mask.shape.join() !== expected.join()) {
    throw argumentError(fn, 'mask', `is ${describeValue(mask)}, expected shape [${expected}]: the input shape [${x.shape}] ` +
        'without its last axis (Keras masks are broadcast over the last axis, whatever the channel axis)');
  }
  return mask;
}

/** Validated arguments common to both ops. */
export interface CheckedArgs {
  x: Tensor;
  axes: number[];
  channels: number;
  epsilon: number;
}

/** Checks x, axis and epsilon together and derives the channel axes and count. */
export function checkCommon(fn: string, x: unknown, axis: AxisArg, epsilon: unknown): CheckedArgs {
  const input = checkInput(fn, x);
  const axes = checkAxes(fn, axis, input.rank);
  return {x: input, axes, channels: channelCount(input.shape, axes), epsilon: checkEpsilon(fn, epsilon)};
}
