/**
 * The float64 reference cases, and comparisons against them. The cases the suites always use are the
 * repository's own (__tests__/fixtures/batchnorm_cases.json, made by scripts/make_reference_cases.ts
 * from __tests__/support/reference.ts, cross-checked with NumPy by scripts/crosscheck_cases.py).
 * Where ../shared/golden/batchnorm_cases.json exists beside the checkout (cross-checked with
 * PyTorch), its cases are added, named `shared/<name>`: checked when present, never needed.
 */
import * as fs from 'fs';
import * as path from 'path';
import {maxRelativeError} from './compare';

export {maxRelativeError};

/**
 * One reference case (the fields of ../shared/golden/README.md): `x`, `dy`, `gamma`, `beta` and the
 * moving statistics before the call are the float32 inputs; everything else is float64.
 */
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

/** The repository's own cases. */
export const REFERENCE_CASES_PATH = path.resolve(__dirname, '..', 'fixtures', 'batchnorm_cases.json');

/** The optional outside cross-check: $GOLDEN_CASES, or ../shared/golden beside the repository. */
export const SHARED_GOLDEN_PATH = process.env.GOLDEN_CASES ??
    path.resolve(__dirname, '..', '..', '..', 'shared', 'golden', 'batchnorm_cases.json');

/** Prefix of the names of the cases that come from SHARED_GOLDEN_PATH. */
export const SHARED_PREFIX = 'shared/';

function readCases(file: string): GoldenCase[] {
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as {cases: GoldenCase[]}).cases;
}

/** The shared golden cases (named `shared/<name>`), or [] where the file is absent. */
export function loadSharedGoldenCases(): GoldenCase[] {
  if (!fs.existsSync(SHARED_GOLDEN_PATH)) return [];
  return readCases(SHARED_GOLDEN_PATH).map(c => ({...c, name: SHARED_PREFIX + c.name}));
}

/** Every case the suites check: the repository's own, then the shared ones where present. */
export function loadGoldenCases(): GoldenCase[] {
  return [...readCases(REFERENCE_CASES_PATH), ...loadSharedGoldenCases()];
}

/**
 * Tolerance (the shared golden README's; the repository's cases are built the same way), in
 * |got − want| / (1 + |want|): 1e-4 for a good float32 implementation, 1e-3 for the two cases built
 * to defeat naive float32 variance.
 */
export function goldenTolerance(c: GoldenCase): number {
  const name = c.name.startsWith(SHARED_PREFIX) ? c.name.slice(SHARED_PREFIX.length) : c.name;
  return name === 'large_offset' || name === 'tiny_spread' ? 1e-3 : 1e-4;
}

/**
 * Asserts every element is within `tolerance` (relative as above), naming what was compared. With
 * MEASURE_FILE set, also appends `error<TAB>tolerance<TAB>what` to that file: how tolerances are set
 * from measured errors.
 */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number, what: string): void {
  const error = maxRelativeError(got, want);
  if (process.env.MEASURE_FILE) fs.appendFileSync(process.env.MEASURE_FILE, `${error}\t${tolerance}\t${what}\n`);
  if (!(error <= tolerance)) {
    throw new Error(`${what}: max |got - want|/(1+|want|) = ${error} exceeds ${tolerance} ` +
        `(got length ${got.length}, want length ${want.length})`);
  }
}
