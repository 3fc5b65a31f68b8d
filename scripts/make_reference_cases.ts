/**
 * `npm run make:cases [-- --check]`: writes __tests__/fixtures/batchnorm_cases.json, the float64
 * reference cases the numeric suites compare against, from seeded inputs and the project's float64
 * reference (__tests__/support/reference.ts). Same fields as ../shared/golden/batchnorm_cases.json
 * (see __tests__/support/golden.ts), so the suites read either. --check exits non-zero when the
 * committed file is not what this script makes. scripts/crosscheck_cases.py recomputes every case
 * with NumPy, independently of reference.ts.
 *
 * Inputs are float32 values (what a float32 implementation receives), written exactly; outputs are
 * float64, written to 12 significant digits (relative rounding 5e-13, far below any tolerance a
 * float32 test can use).
 */
import {readFileSync, writeFileSync} from 'fs';
import * as path from 'path';
import type {GoldenCase} from '../__tests__/support/golden';
import {mulberry32} from '../__tests__/support/random';
import {refChannelCount, refInfer, refMovingUpdate, RefProblem, refTrain, refTrainGrad} from '../__tests__/support/reference';

export const CASES_PATH = path.join(__dirname, '..', '__tests__', 'fixtures', 'batchnorm_cases.json');
const SEED = 20261128;
const OUTPUT_DIGITS = 12;

/** What varies between cases; the values are drawn from the seeded generator. */
interface CaseSpec {
  name: string;
  shape: number[];
  axis: number | number[];
  epsilon?: number;
  momentum?: number;
  center?: boolean;
  scale?: boolean;
  /** x = xMean + xSpread · N(0, 1). */
  xMean?: number;
  xSpread?: number;
}

/**
 * The cases: every layout the layer meets (dense, channels-last and -first, ranks 3 to 5, a list of
 * axes), the scale/center switches, and the two inputs that defeat a naive float32 variance
 * (E[x²] − E[x]² on large offsets, tiny spreads). Channel counts that are not multiples of 4
 * exercise the SIMD loops' scalar tails. Small shapes keep the file and the suites small.
 */
const SPECS: CaseSpec[] = [
  {name: 'dense', shape: [9, 6], axis: -1, xMean: 0.5, xSpread: 1.5},
  {name: 'nhwc', shape: [2, 3, 4, 5], axis: -1, epsilon: 1e-5},
  {name: 'nchw', shape: [2, 5, 3, 3], axis: 1, xMean: -1, xSpread: 2},
  {name: 'ncw', shape: [4, 3, 8], axis: 1, momentum: 0.9},
  {name: 'rank5_ndhwc', shape: [2, 2, 3, 2, 3], axis: -1},
  {name: 'rank5_ncdhw', shape: [2, 3, 2, 2, 3], axis: 1},
  {name: 'no_scale', shape: [6, 5], axis: -1, scale: false},
  {name: 'no_center', shape: [6, 5], axis: -1, center: false},
  {name: 'neither', shape: [2, 3, 3, 3], axis: -1, center: false, scale: false},
  {name: 'large_offset', shape: [48, 3], axis: -1, xMean: 1e4, xSpread: 0.5},
  {name: 'tiny_spread', shape: [16, 3], axis: -1, epsilon: 1e-5, xMean: 1, xSpread: 1e-3},
  {name: 'multi_axis', shape: [2, 4, 5, 2], axis: [1, 3]},
];

/** Standard normal draws (Box–Muller) from a seeded uniform source. */
function normal(next: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

/**
 * The float32 value of v, exactly (as a double). Not a shorter decimal that merely rounds to it:
 * the reference must see the very inputs a float32 implementation sees (at 1e4 a float32 step is
 * 1e-3, which moves dgamma of large_offset by 6e-3), and suites compare moving statistics exactly.
 */
function float32(v: number): number {
  return Math.fround(v);
}

function output(values: ArrayLike<number>): number[] {
  return Array.from(values, v => Number(v.toPrecision(OUTPUT_DIGITS)));
}

function sortedAxes(axis: number | number[], rank: number): number[] {
  return (Array.isArray(axis) ? axis : [axis]).map(a => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
}

/** One case: seeded float32 inputs and every float64 output the suites compare with. */
function makeCase(spec: CaseSpec, index: number): GoldenCase {
  const {name, shape, axis, epsilon = 1e-3, momentum = 0.99, center = true, scale = true, xMean = 0, xSpread = 1} = spec;
  const draw = normal(mulberry32(SEED + 7919 * index));
  const size = shape.reduce((a, b) => a * b, 1);
  const axes = sortedAxes(axis, shape.length);
  const channels = refChannelCount(shape, axes);
  const values = (n: number, f: () => number) => Array.from({length: n}, () => float32(f()));
  const x = values(size, () => xMean + xSpread * draw());
  const dy = values(size, draw);
  // Disabled parameters are ones / zeros, as the shared golden file writes them.
  const gamma = scale ? values(channels, () => 1 + 0.3 * draw()) : new Array<number>(channels).fill(1);
  const beta = center ? values(channels, () => 0.5 * draw()) : new Array<number>(channels).fill(0);
  const movingMean0 = values(channels, () => xMean + 0.5 * draw());
  const movingVariance0 = values(channels, () => 0.5 + Math.abs(draw()));

  const problem: RefProblem = {shape, axes, x, gamma, beta, epsilon};
  const {y, mean, variance} = refTrain(problem);
  const {dx, dgamma, dbeta} = refTrainGrad(problem, dy);
  const perChannel = size / channels;
  const unbiased = Array.from(variance, v => (v * perChannel) / (perChannel - 1));
  return {
    name, shape, axis, epsilon, momentum, center, scale, x, dy, gamma, beta,
    moving_mean0: movingMean0, moving_variance0: movingVariance0,
    y: output(y), mean: output(mean), variance: output(variance), dx: output(dx), dgamma: output(dgamma), dbeta: output(dbeta),
    moving_mean_keras: output(refMovingUpdate(movingMean0, mean, momentum)),
    moving_variance_keras: output(refMovingUpdate(movingVariance0, variance, momentum)),
    // PyTorch: running = (1 − m')·running + m'·unbiased with m' = 1 − momentum: the same update on the unbiased variance.
    running_var_torch: output(refMovingUpdate(movingVariance0, unbiased, momentum)),
    inference_y: output(refInfer(problem, movingMean0, movingVariance0)),
  };
}

/** The fixture file's text: one field per line, arrays on one line, so diffs stay readable. */
export function makeReferenceCasesText(): string {
  const cases = SPECS.map(makeCase);
  const body = cases.map(c => `  {\n${Object.entries(c).map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(',\n')}\n  }`);
  return `{\n  "generator": "scripts/make_reference_cases.ts (float64, __tests__/support/reference.ts)",\n  "seed": ${SEED},\n` +
      `  "cases": [\n${body.join(',\n')}\n  ]\n}\n`;
}

if (require.main === module) {
  const text = makeReferenceCasesText();
  if (process.argv.includes('--check')) {
    if (readFileSync(CASES_PATH, 'utf8') !== text) {
      console.error(`${path.relative(process.cwd(), CASES_PATH)} is not what scripts/make_reference_cases.ts makes: run npm run make:cases`);
      process.exitCode = 1;
    } else {
      console.log(`${path.relative(process.cwd(), CASES_PATH)} is current`);
    }
  } else {
    writeFileSync(CASES_PATH, text);
    console.log(`wrote ${path.relative(process.cwd(), CASES_PATH)} (${SPECS.length} cases, ${text.length} bytes)`);
  }
}
