/**
 * Interleaved timing with tinybench, shared by the layer benchmark (run.ts) and the folding
 * benchmark (fold.ts): the tasks alternate round by round (first round after warm-up, order reversed
 * every other round, so slow drift on a shared machine hits all alike), samples are pooled over the
 * rounds, and the tensors each task leaves behind are counted.
 */
import {Bench} from 'tinybench';
import * as tf from '@tensorflow/tfjs';

/** How long to measure: rounds alternate the tasks; each round runs each task ≥ minIterations and ≥ timeMs. */
export interface Plan {
  rounds: number;
  minIterations: number;
  timeMs: number;
  warmupIterations: number;
  warmupMs: number;
}

// Five short rounds rather than one long one: other processes' bursts then hit a few samples, not a median.
export const FULL: Plan = {rounds: 5, minIterations: 2, timeMs: 200, warmupIterations: 1, warmupMs: 300};
export const QUICK: Plan = {rounds: 1, minIterations: 1, timeMs: 50, warmupIterations: 1, warmupMs: 0};

/** One timed task: `run` is one call (it disposes what it creates). */
export interface TimedTask {
  name: string;
  run(): void;
}

/** What one task measured: its samples (ms) over all rounds and the tensors it leaked. */
export interface TaskSamples {
  samples: number[];
  leakedTensors: number;
}

/** Median of samples pooled over rounds. */
export function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** One round's tinybench, the tasks in this round's order, counting the tensors each leaves behind. */
function roundBench<T extends {name: string; run(): void | Promise<void>}>(tasks: T[], plan: Plan, round: number,
                                                                            results: Map<string, TaskSamples>): Bench {
  const bench = new Bench({
    iterations: plan.minIterations, time: plan.timeMs, warmup: round === 0,
    warmupIterations: plan.warmupIterations, warmupTime: plan.warmupMs, retainSamples: true, throws: true,
  });
  const order = round % 2 === 0 ? tasks : [...tasks].reverse();
  for (const task of order) {
    let before = 0;
    const result = results.get(task.name)!;
    bench.add(task.name, () => task.run(), {
      beforeAll: () => { before = tf.memory().numTensors; },
      afterAll: () => { result.leakedTensors += tf.memory().numTensors - before; },
    });
  }
  return bench;
}

/** Adds a finished round's samples to the results. */
function collect(bench: Bench, results: Map<string, TaskSamples>): void {
  for (const task of bench.tasks) {
    const result = task.result;
    if (!('latency' in result) || result.latency.samples == null) throw new Error(`${task.name}: no samples (${result.state})`);
    results.get(task.name)!.samples.push(...result.latency.samples);
  }
}

function emptyResults(tasks: Array<{name: string}>): Map<string, TaskSamples> {
  return new Map<string, TaskSamples>(tasks.map(t => [t.name, {samples: [], leakedTensors: 0}]));
}

/** Times the tasks interleaved round by round (see the file comment). */
export function timeInterleaved(tasks: TimedTask[], plan: Plan): Map<string, TaskSamples> {
  const results = emptyResults(tasks);
  for (let round = 0; round < plan.rounds; round++) {
    const bench = roundBench(tasks, plan, round, results);
    bench.runSync();
    collect(bench, results);
  }
  return results;
}

/** One timed task that completes asynchronously (a GPU step that waits for its results). */
export interface AsyncTimedTask {
  name: string;
  run(): Promise<void>;
}

/**
 * timeInterleaved for tasks that complete asynchronously: each sample lasts until the task's promise
 * settles. Leaks are counted around each call (tinybench's task hooks do not bracket async
 * iterations reliably: they showed tensors freed by other tasks).
 */
export async function timeInterleavedAsync(tasks: AsyncTimedTask[], plan: Plan): Promise<Map<string, TaskSamples>> {
  const results = emptyResults(tasks);
  const counted = tasks.map(task => ({name: task.name, run: async () => {
    const before = tf.memory().numTensors;
    await task.run();
    results.get(task.name)!.leakedTensors += tf.memory().numTensors - before;
  }}));
  for (let round = 0; round < plan.rounds; round++) {
    const bench = roundBench(counted, plan, round, emptyResults(tasks));
    await bench.run();
    collect(bench, results);
  }
  return results;
}
