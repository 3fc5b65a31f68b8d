/** Loads the float64 reference cases (../shared/golden) and compares results against them. */
import * as fs from 'fs';
import * as path from 'path';
import {maxRelativeError} from './compare';

export {maxRelativeError};

/** One reference case; see ../shared/golden/README.md for every field. */
export interface GoldenCase {
  name: string;
  shape: number[];
  axis: number | number[];
  epsilon: number;
  momentum: number;
  center: boolean;
  scale: boolean;
  x: number[];
  dy: number[];
  gamma: number[];
  beta: number[];
  moving_mean0: number[];
  moving_variance0: number[];
  y: number[];
  mean: number[];
  variance: number[];
  dx: number[];
  dgamma: number[];
  dbeta: number[];
  moving_mean_keras: number[];
  moving_variance_keras: number[];
  running_var_torch: number[];
  inference_y: number[];
}

/** Path of the golden file: $GOLDEN_CASES, or ../shared/golden beside the repository. */
export const GOLDEN_PATH = process.env.GOLDEN_CASES ??
    path.resolve(__dirname, '..', '..', '..', 'shared', 'golden', 'batchnorm_cases.json');

/** All golden cases. */
export function loadGoldenCases(): GoldenCase[] {
  return (JSON.parse(fs.readFileSync(GOLDEN_PATH, 'utf8')) as {cases: GoldenCase[]}).cases;
}

/**
 * Tolerance from the golden README, in |got − want| / (1 + |want|): 1e-4 for a good float32
 * implementation, 1e-3 for the two cases built to defeat naive float32 variance.
 */
export function goldenTolerance(c: GoldenCase): number {
  return c.name === 'large_offset' || c.name === 'tiny_spread' ? 1e-3 : 1e-4;
}

/** Asserts every element is within `tolerance` (relative as above), naming what was compared. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number, what: string): void {
  const error = maxRelativeError(got, want);
  if (!(error <= tolerance)) {
    throw new Error(`${what}: max |got - want|/(1+|want|) = ${error} exceeds ${tolerance} ` +
        `(got length ${got.length}, want length ${want.length})`);
  }
}
