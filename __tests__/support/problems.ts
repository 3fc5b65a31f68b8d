/**
 * Random batch-normalization problems for the property tests: a fast-check arbitrary over ranks,
 * shapes, channel axes (single, lists, adjacent or not, negative), offsets, spreads, optional
 * gamma/beta/mask, and the float32 data that goes with them, plus helpers that run the op on a
 * problem and compare it with the float64 reference (support/reference.ts).
 */
import fc from 'fast-check';
import {mulberry32} from './random';
import {refChannelCount, RefProblem} from './reference';

/** One problem: the op's arguments and the reference's view of them (all values float32-exact). */
export interface Problem extends RefProblem {
  /** The axis argument as passed to the op (maybe negative, maybe a list in any order). */
  axis: number | number[];
  /** Keras mask (x's shape without its last axis), 0/1, or null. */
  mask: Float32Array | null;
  /** Upstream gradients of y, mean and variance. */
  dy: Float32Array;
  dmean: Float32Array;
  dvariance: Float32Array;
  /** Statistics for inference mode (variance > 0). */
  movingMean: Float32Array;
  movingVariance: Float32Array;
  channels: number;
}

/** What the arbitrary draws; `build` turns it into a Problem. */
interface Draw {
  dims: number[];
  channelAxes: boolean[];
  negative: boolean[];
  asList: boolean;
  seed: number;
  offsetInSpreads: number;
  spread: number;
  epsilon: number;
  withGamma: boolean;
  withBeta: boolean;
  masked: boolean;
}

/** Float32-rounded values a + b·(uniform in [−1, 1]). */
function fill(rand: () => number, n: number, center: number, halfWidth: number): Float32Array {
  return Float32Array.from({length: n}, () => Math.fround(center + halfWidth * (2 * rand() - 1)));
}

function build(d: Draw): Problem {
  const rank = d.dims.length;
  const axes = d.channelAxes.map((isChannel, i) => (isChannel ? i : -1)).filter(i => i >= 0);
  const written = axes.map(a => (d.negative[a] ? a - rank : a));
  const axis = d.asList || written.length > 1 ? [...written].reverse() : written[0];
  const rand = mulberry32(d.seed);
  const size = d.dims.reduce((a, b) => a * b, 1);
  const channels = refChannelCount(d.dims, axes);
  const offset = d.offsetInSpreads * d.spread;
  const mask = d.masked ? Float32Array.from({length: size / d.dims[rank - 1]}, () => (rand() < 0.7 ? 1 : 0)) : null;
  const lastDim = d.dims[rank - 1];
  return {
    shape: d.dims, axes, axis, channels, epsilon: d.epsilon, mask,
    x: fill(rand, size, offset, d.spread),
    gamma: d.withGamma ? fill(rand, channels, 1, 0.6) : null,
    beta: d.withBeta ? fill(rand, channels, 0, 1) : null,
    weights: mask == null ? null : Float32Array.from({length: size}, (_, i) => mask[Math.floor(i / lastDim)]),
    dy: fill(rand, size, 0, 1),
    dmean: fill(rand, channels, 0, 1),
    dvariance: fill(rand, channels, 0, 1),
    movingMean: fill(rand, channels, offset, d.spread),
    movingVariance: fill(rand, channels, d.spread * d.spread, 0.9 * d.spread * d.spread),
  };
}

/**
 * Problems of rank 2 to 5 with dimensions 1 to 4, any non-empty set of channel axes (written
 * positive or negative, alone or as a list in any order), data offset by 0, 10 or 1000 spreads
 * from zero, spreads 0.25 to 4, epsilon 1e-5 to 0.1, gamma/beta present or null, masked or not.
 */
export function problems(options: {masked?: boolean} = {}): fc.Arbitrary<Problem> {
  return fc.integer({min: 2, max: 5}).chain(rank => fc.record({
    dims: fc.array(fc.integer({min: 1, max: 4}), {minLength: rank, maxLength: rank}),
    channelAxes: fc.array(fc.boolean(), {minLength: rank, maxLength: rank}).filter(a => a.some(Boolean)),
    negative: fc.array(fc.boolean(), {minLength: rank, maxLength: rank}),
    asList: fc.boolean(),
    seed: fc.integer({min: 0, max: 2 ** 31 - 1}),
    offsetInSpreads: fc.constantFrom(0, 10, -1000),
    spread: fc.constantFrom(0.25, 1, 4),
    epsilon: fc.constantFrom(1e-5, 1e-3, 0.1),
    withGamma: fc.boolean(),
    withBeta: fc.boolean(),
    masked: options.masked == null ? fc.boolean() : fc.constant(options.masked),
  })).map(build);
}

/** A short description of a problem for failure messages. */
export function describeProblem(p: Problem): string {
  return `shape [${p.shape}] axis ${JSON.stringify(p.axis)} epsilon ${p.epsilon} gamma ${p.gamma != null} ` +
      `beta ${p.beta != null} mask ${p.mask == null ? 'none' : `[${Array.from(p.mask)}]`}`;
}
