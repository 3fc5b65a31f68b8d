/**
 * The error measure every numeric test and the benchmark use, in a module with no Node imports so
 * browser pages (the benchmark's, the kernel lab's) can bundle it.
 */

/** Largest |got − want| / (1 + |want|) over all elements (Infinity on a length mismatch or NaN). */
export function maxRelativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}
