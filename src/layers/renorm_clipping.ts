/**
 * `renormClipping`: the bounds rmax, rmin and dmax of Batch Renormalization's corrections r and d,
 * checked as Keras 3.14 checks them, plus the relaxation schedule of the paper (Ioffe 2017), which
 * no framework ships: train as plain batch normalization first (rmax = 1, dmax = 0) and relax the
 * bounds gradually. A bound is either a number, with Keras' meaning and file format, or a ramp
 * `{from, to, startStep, endStep}`: `from` until startStep, then linear, `to` from endStep on.
 * The position on the ramps is the layer's training-step counter (the `renorm_step` weight), so it
 * is saved and loaded with the model.
 */
import {add, clipByValue, div, mul, scalar, sub, Tensor} from '@tensorflow/tfjs-core';
import {argumentError} from '../ops/validate';

/** A bound that moves linearly from `from` (up to startStep) to `to` (from endStep on). */
export interface RenormRamp {
  from: number;
  to: number;
  /** The training step (counted from 0) where the ramp leaves `from`. Default 0. */
  startStep?: number;
  /** The training step where it reaches `to`; > startStep and ≤ 2^24. */
  endStep: number;
}

/** A clipping bound: a number (Keras) or a ramp (this package's schedule). null/absent: unbounded. */
export type ClipBound = number | RenormRamp | null;

/** Bounds for r (to [rmin, rmax]) and d (to [−dmax, dmax]); a missing one leaves that side unbounded. */
export interface RenormClipping {
  rmax?: ClipBound;
  rmin?: ClipBound;
  dmax?: ClipBound;
}

const BOUND_KEYS = ['rmax', 'rmin', 'dmax'] as const;
const RAMP_KEYS = ['from', 'to', 'startStep', 'endStep'];
/**
 * The step counter is a float32 weight (like every other weight, so any tfjs weight file holds it),
 * which counts exactly up to 2^24; ramps must end by then. Past it the counter stops, at a step
 * where every ramp has long reached its end value.
 */
export const MAX_RAMP_STEP = 2 ** 24;

/** Whether a bound is a ramp (a schedule) rather than a number. */
export function isRamp(bound: ClipBound | undefined): bound is RenormRamp {
  return bound != null && typeof bound === 'object';
}

/** Whether any bound of the clipping is a ramp: the layer then counts training steps. */
export function hasSchedule(clipping: RenormClipping): boolean {
  return BOUND_KEYS.some(key => isRamp(clipping[key]));
}

/** A bound's value at a step given as a plain number (validation; tests). */
export function boundValueAt(bound: ClipBound | undefined, step: number): number | null {
  if (bound == null) return null;
  if (!isRamp(bound)) return bound;
  const start = bound.startStep ?? 0;
  const t = Math.min(Math.max((step - start) / (bound.endStep - start), 0), 1);
  return bound.from + (bound.to - bound.from) * t;
}

/**
 * A bound's value at the step held in a scalar tensor, as a number or a scalar tensor, so that the
 * schedule runs on the device without reading the counter back (no sync per step).
 */
export function boundAt(bound: ClipBound | undefined, step: Tensor | null): number | Tensor | null {
  if (bound == null || !isRamp(bound)) return bound ?? null;
  if (step == null) throw new Error('renormClipping: a ramp needs the step counter');
  const start = bound.startStep ?? 0;
  const t = clipByValue(div(sub(step, start), bound.endStep - start), 0, 1);
  return add(scalar(bound.from), mul(t, bound.to - bound.from));
}

function formatValue(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function checkRamp(fn: string, key: string, ramp: Record<string, unknown>): RenormRamp {
  const name = `renormClipping.${key}`;
  const unknown = Object.keys(ramp).filter(k => ramp[k] !== undefined && !RAMP_KEYS.includes(k));
  if (unknown.length > 0) {
    throw argumentError(fn, name, `has unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map(k => `'${k}'`).join(', ')}; ` +
        `expected a number or a ramp {from, to, startStep, endStep}`);
  }
  for (const end of ['from', 'to']) {
    if (typeof ramp[end] !== 'number' || !Number.isFinite(ramp[end])) {
      throw argumentError(fn, `${name}.${end}`, `is ${formatValue(ramp[end])}, expected a finite number`);
    }
  }
  const startStep = ramp.startStep ?? 0;
  if (typeof startStep !== 'number' || !Number.isInteger(startStep) || startStep < 0) {
    throw argumentError(fn, `${name}.startStep`, `is ${formatValue(ramp.startStep)}, expected an integer >= 0 (default 0)`);
  }
  const endStep = ramp.endStep;
  if (typeof endStep !== 'number' || !Number.isInteger(endStep) || endStep <= startStep || endStep > MAX_RAMP_STEP) {
    throw argumentError(fn, `${name}.endStep`, `is ${formatValue(endStep)}, expected an integer > startStep (${startStep}) ` +
        `and <= ${MAX_RAMP_STEP} (the float32 step counter is exact up to there)`);
  }
  // A copy with exactly the given keys, so that the config written back is what was given.
  return {...ramp} as unknown as RenormRamp;
}

function checkBound(fn: string, key: string, value: unknown): ClipBound {
  if (value == null) return null;
  if (typeof value === 'number' && !Number.isNaN(value)) return value;
  if (typeof value === 'object' && !Array.isArray(value)) return checkRamp(fn, key, value as Record<string, unknown>);
  throw argumentError(fn, `renormClipping.${key}`, `is ${formatValue(value)}, expected a number, a ramp ` +
      `{from, to, startStep, endStep}, or null`);
}

/** Steps where a bound's piecewise-linear value can change slope (checks hold between them). */
function breakpoints(bounds: Array<ClipBound | undefined>): number[] {
  return [0, ...bounds.filter(isRamp).flatMap(b => [b.startStep ?? 0, b.endStep])];
}

/**
 * Checks renormClipping as Keras 3.14 does (keys among rmax, rmin, dmax; rmax >= rmin; dmax >= 0),
 * for ramps at every step; returns a copy. null/absent gives {} (what Keras stores and writes).
 */
export function checkRenormClipping(fn: string, value: unknown): RenormClipping {
  if (value == null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw argumentError(fn, 'renormClipping', `is ${formatValue(value)}, expected an object with optional keys rmax, rmin, dmax`);
  }
  const given = value as Record<string, unknown>;
  const invalid = Object.keys(given).filter(k => given[k] !== undefined && !(BOUND_KEYS as readonly string[]).includes(k));
  if (invalid.length > 0) {
    throw argumentError(fn, 'renormClipping', `has invalid key${invalid.length > 1 ? 's' : ''} ${invalid.map(k => `'${k}'`).join(', ')} ` +
        `(${formatValue(value)}); the supported keys are rmax, rmin, dmax`);
  }
  const clipping: RenormClipping = {};
  for (const key of BOUND_KEYS) {
    if (key in given && given[key] !== undefined) clipping[key] = checkBound(fn, key, given[key]);
  }
  const {rmax, rmin, dmax} = clipping;
  for (const step of breakpoints([dmax])) {
    const d = boundValueAt(dmax, step);
    if (d != null && d < 0) {
      throw argumentError(fn, 'renormClipping', `has dmax ${formatValue(dmax)}, which is ${d} at step ${step}; dmax should be non-negative`);
    }
  }
  for (const step of breakpoints([rmax, rmin])) {
    const [hi, lo] = [boundValueAt(rmax, step), boundValueAt(rmin, step)];
    if (hi != null && lo != null && hi < lo) {
      throw argumentError(fn, 'renormClipping', `has rmax ${formatValue(rmax)} and rmin ${formatValue(rmin)}, which give ` +
          `rmax ${hi} < rmin ${lo} at step ${step}; rmax should be greater than rmin`);
    }
  }
  return clipping;
}
