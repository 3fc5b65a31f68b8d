/**
 * The WGSL compute programs of the fused kernels on tfjs-backend-webgpu, one per pass of
 * gpu_kernels.ts, in the shape of tfjs-backend-webgpu's own programs (its WebGPUProgram interface,
 * typed structurally here so this package never imports the backend at run time). tfjs wraps
 * `getUserCode()` with the buffer bindings (`result`, then one read-only array per variable name),
 * a `uniforms` struct, `setOutputAtIndex` and the `_start` entry point that calls `main(index)`.
 *
 * Geometry and ε travel as uniforms, so one compiled pipeline serves every shape; what changes the
 * code (the pass, the thread order, a pick's column) is in the shader key.
 */
import {GRADIENT_STATS, MOMENT_STATS, Pass} from '../gpu_kernels';
import type {LanePlan} from '../gpu_plan';

/** The fields of tfjs-backend-webgpu's WebGPUProgram that these programs set. */
export interface WgslProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: {x: number[]};
  dispatch: [number, number, number];
  variableNames: string[];
  uniforms: string;
  size: boolean;
  workgroupSize: [number, number, number];
  getUserCode(): string;
}

/** A uniform value as runWebGPUProgram takes it. */
export interface WgslUniform {
  type: 'int32' | 'float32';
  data: number[];
}

/** Threads per workgroup of the merge passes (their tree reduction assumes it). */
const MERGE_WORKGROUP = 64;
/** Threads per workgroup of the other passes. */
const WORKGROUP = 128;
/** Elements per thread of the elementwise passes (fewer, fuller threads, as tfjs's own elementwise programs). */
const ELEMENTS_PER_THREAD = 4;

/** Values per lane left by each partial pass. */
const MOMENT_PARTS = 2;
const GRADIENT_PARTS = 3;

const UNIFORMS = 'channels : i32, inner : i32, count : i32, lanes : i32, epsilon : f32,';

/** The uniform values of UNIFORMS for a problem. */
export function uniformsFor(plan: LanePlan, epsilon = 0): WgslUniform[] {
  return [
    {type: 'int32', data: [plan.channels]}, {type: 'int32', data: [plan.inner]}, {type: 'int32', data: [plan.count]},
    {type: 'int32', data: [plan.lanes]}, {type: 'float32', data: [epsilon]},
  ];
}

/** Index in x of value j of channel c (gpu_plan.ts's valueIndex), and the channel of an element. */
const GEOMETRY = `
  fn valueAt(c : i32, j : i32) -> i32 {
    let o = j / uniforms.inner;
    return (o * uniforms.channels + c) * uniforms.inner + (j - o * uniforms.inner);
  }
  fn channelOf(index : i32) -> i32 {
    return (index / uniforms.inner) % uniforms.channels;
  }
  fn laneCount(q : i32) -> f32 {
    return f32((uniforms.count - 1 - q) / uniforms.lanes + 1);
  }
  fn notBelowZero(v : f32) -> f32 {
    return select(v, 0.0, v < 0.0);  // keeps NaN, unlike max
  }
  // 1/√(v + ε), and 0 for an infinite variance, its limit (inverseSqrt(inf) is not defined to be 0).
  fn inverseRoot(v : f32) -> f32 {
    return select(inverseSqrt(v + uniforms.epsilon), 0.0, v > 3.0e38);
  }`;

function program(key: string, outputSize: number, variableNames: string[], threads: number, body: string,
                 perWorkgroup = false, uniforms = UNIFORMS): WgslProgram {
  return {
    outputShape: [outputSize],
    shaderKey: `TfjsBatchNorm_${key}`,
    dispatchLayout: {x: [0]},
    // One workgroup per output group for the merge pass, else one thread per item.
    dispatch: [perWorkgroup ? threads : Math.ceil(threads / WORKGROUP), 1, 1],
    variableNames,
    uniforms,
    size: true,
    workgroupSize: [perWorkgroup ? MERGE_WORKGROUP : WORKGROUP, 1, 1],
    getUserCode: () => `${GEOMETRY}\n${body}`,
  };
}

/** The (channel, lane) of a partial-pass thread: see LanePlan.channelFastest. */
function laneOfThread(plan: LanePlan): string {
  return plan.channelFastest ?
    'let c = index % uniforms.channels; let q = index / uniforms.channels;' :
    'let q = index % uniforms.lanes; let c = index / uniforms.lanes;';
}

/**
 * A partial pass: a thread per (channel, lane) walks the lane (value index `k`, d = x − s − base)
 * with `walk`, then `result` writes the lane's `parts` values from `at`, and n is its value count.
 * After all lanes come `extra` values per channel (`tail` writes them from lane 0, at `tailAt`).
 */
function partialProgram(key: string, plan: LanePlan, parts: number, variableNames: string[], declare: string,
                        walk: string, result: string, extra = 0, tail = ''): WgslProgram {
  const lanes = plan.channels * plan.lanes;
  return program(`${key}_${plan.channelFastest}`, lanes * parts + plan.channels * extra, variableNames, lanes, `
  fn main(index : i32) {
    if (index >= uniforms.channels * uniforms.lanes) { return; }
    ${laneOfThread(plan)}
    let s = x[c * uniforms.inner];
    let base = x[valueAt(c, q)] - s;
    ${declare}
    for (var j = q; j < uniforms.count; j = j + uniforms.lanes) {
      let k = valueAt(c, j);
      let d = (x[k] - s) - base;
      ${walk}
    }
    let n = laneCount(q);
    let at = (c * uniforms.lanes + q) * ${parts};
    ${result}
    if (q == 0) {
      let tailAt = uniforms.channels * uniforms.lanes * ${parts} + c * ${extra};
      ${tail}
    }
  }`);
}

/**
 * Per lane: (mean of x − s, biased variance); after all lanes, the shift s of each channel, which
 * the merge needs for the mean.
 */
function momentPartials(plan: LanePlan): WgslProgram {
  return partialProgram('momentPartials', plan, MOMENT_PARTS, ['x'], 'var sum = 0.0;\n    var sumSq = 0.0;', `
      sum = sum + d;
      sumSq = sumSq + d * d;`, `
    let mean = sum / n;
    setOutputAtIndex(at, base + mean);
    setOutputAtIndex(at + 1, notBelowZero(sumSq / n - mean * mean));`, 1, 'setOutputAtIndex(tailAt, s);');
}

/** Per lane: (mean of x − s, mean of dy, mean of dy·(x − lane mean)). */
function gradientPartials(plan: LanePlan): WgslProgram {
  return partialProgram('gradientPartials', plan, GRADIENT_PARTS, ['dy', 'x'],
      'var sumX = 0.0;\n    var sumDy = 0.0;\n    var sumDyX = 0.0;', `
      let g = dy[k];
      sumX = sumX + d;
      sumDy = sumDy + g;
      sumDyX = sumDyX + g * d;`, `
    let meanX = sumX / n;
    setOutputAtIndex(at, base + meanX);
    setOutputAtIndex(at + 1, sumDy / n);
    setOutputAtIndex(at + 2, (sumDyX - meanX * sumDy) / n);`);
}

/** Channels with at most this many lanes are merged by one thread each, without workgroup barriers. */
const SEQUENTIAL_MERGE_LANES = 32;

/**
 * The merge pass: merges each channel's lanes. `state` is the merged tuple's WGSL type, `merge`
 * combines two tuples (count first; a count of 0 is the identity), `load` builds lane q's tuple,
 * `finish` writes the channel's `width` values from `at`. Few lanes: a thread per channel merges
 * them in order. Many: a workgroup per channel, each thread merging a strided subset, then a tree
 * over workgroup memory.
 */
function mergeProgram(key: string, plan: LanePlan, width: number, variableNames: string[], state: string,
                      merge: string, load: string, finish: string): WgslProgram {
  const mergeFunction = `
  fn merge(a : ${state}, b : ${state}) -> ${state} {
    if (b.x == 0.0) { return a; }
    if (a.x == 0.0) { return b; }
    ${merge}
  }
  fn mergeLanes(c : i32, first : i32, step : i32) -> ${state} {
    var acc = ${state}(0.0);
    for (var q = first; q < uniforms.lanes; q = q + step) {
      let n = laneCount(q);
      let p = c * uniforms.lanes + q;
      acc = merge(acc, ${load});
    }
    return acc;
  }`;
  if (plan.lanes <= SEQUENTIAL_MERGE_LANES) {
    return program(`${key}_sequential`, plan.channels * width, variableNames, plan.channels, `${mergeFunction}
  fn main(c : i32) {
    if (c >= uniforms.channels) { return; }
    let acc = mergeLanes(c, 0, 1);
    let at = c * ${width};
    ${finish}
  }`);
  }
  return program(key, plan.channels * width, variableNames, plan.channels, `
  var<workgroup> laneTotals : array<${state}, ${MERGE_WORKGROUP}>;${mergeFunction}
  fn main(index : i32) {
    let c = index / ${MERGE_WORKGROUP};
    let t = index % ${MERGE_WORKGROUP};
    var acc = ${state}(0.0);
    if (c < uniforms.channels) {
      acc = mergeLanes(c, t, ${MERGE_WORKGROUP});
    }
    laneTotals[t] = acc;
    workgroupBarrier();
    for (var stride = ${MERGE_WORKGROUP / 2}; stride > 0; stride = stride / 2) {
      if (t < stride) {
        acc = merge(acc, laneTotals[t + stride]);
        laneTotals[t] = acc;
      }
      workgroupBarrier();
    }
    if (t == 0 && c < uniforms.channels) {
      let at = c * ${width};
      ${finish}
    }
  }`, true);
}

function momentMerge(plan: LanePlan): WgslProgram {
  // (count, mean of x − s, sum of squared deviations): Chan et al.'s pairwise update.
  return mergeProgram('momentMerge', plan, MOMENT_STATS, ['partials', 'gamma', 'beta'], 'vec3<f32>', `
    let n = a.x + b.x;
    let d = b.y - a.y;
    return vec3<f32>(n, a.y + d * (b.x / n), a.z + b.z + d * d * (a.x * (b.x / n)));`,
  `vec3<f32>(n, partials[p * ${MOMENT_PARTS}], partials[p * ${MOMENT_PARTS} + 1] * n)`, `
      let variance = acc.z / acc.x;
      setOutputAtIndex(at, acc.y);
      setOutputAtIndex(at + 1, variance);
      setOutputAtIndex(at + 2, gamma[c] * inverseRoot(variance));
      setOutputAtIndex(at + 3, beta[c]);
      setOutputAtIndex(at + 4, partials[uniforms.channels * uniforms.lanes * ${MOMENT_PARTS} + c] + acc.y);`);
}

function gradientMerge(plan: LanePlan): WgslProgram {
  // (count, mean of x − s, Σdy, Σdy·(x − mean)): the co-moment form of the same update.
  return mergeProgram('gradientMerge', plan, GRADIENT_STATS, ['partials', 'gamma', 'variance', 'dmean', 'dvariance'],
      'vec4<f32>', `
    let n = a.x + b.x;
    let d = b.y - a.y;
    return vec4<f32>(n, a.y + d * (b.x / n), a.z + b.z, a.w + b.w + d * (a.x * b.z - b.x * a.z) / n);`,
  `vec4<f32>(n, partials[p * ${GRADIENT_PARTS}], partials[p * ${GRADIENT_PARTS} + 1] * n, partials[p * ${GRADIENT_PARTS} + 2] * n)`, `
      let count = acc.x;
      let r = inverseRoot(variance[c]);
      let a = gamma[c] * r;
      setOutputAtIndex(at, a);
      setOutputAtIndex(at + 1, -a * r * r * acc.w / count + 2.0 * dvariance[c] / count);
      setOutputAtIndex(at + 2, -a * acc.z / count + dmean[c] / count);
      setOutputAtIndex(at + 3, acc.y);
      setOutputAtIndex(at + 4, r * acc.w);
      setOutputAtIndex(at + 5, acc.z);`);
}

/** ELEMENTS_PER_THREAD consecutive elements of x per thread; `value` writes element `index` of channel `c`. */
function elementwise(key: string, plan: LanePlan, variableNames: string[], value: string): WgslProgram {
  const size = plan.outer * plan.channels * plan.inner;
  return program(key, size, variableNames, Math.ceil(size / ELEMENTS_PER_THREAD), `
  fn main(slot : i32) {
    for (var e = 0; e < ${ELEMENTS_PER_THREAD}; e = e + 1) {
      let index = slot * ${ELEMENTS_PER_THREAD} + e;
      if (index >= uniforms.size) { return; }
      let c = channelOf(index);
      ${value}
    }
  }`);
}

function normalize(plan: LanePlan): WgslProgram {
  return elementwise('normalize', plan, ['x', 'stats'], `
    let s = c * ${MOMENT_STATS};
    let centered = (x[index] - x[c * uniforms.inner]) - stats[s];
    setOutputAtIndex(index, centered * stats[s + 2] + stats[s + 3]);`);
}

function gradientApply(plan: LanePlan): WgslProgram {
  return elementwise('gradientApply', plan, ['dy', 'x', 'stats'], `
    let s = c * ${GRADIENT_STATS};
    let centered = (x[index] - x[c * uniforms.inner]) - stats[s + 3];
    setOutputAtIndex(index, stats[s] * dy[index] + stats[s + 1] * centered + stats[s + 2]);`);
}

function infer(plan: LanePlan): WgslProgram {
  return elementwise('infer', plan, ['x', 'mean', 'variance', 'gamma', 'beta'], `
    let scale = gamma[c] * inverseRoot(variance[c]);
    setOutputAtIndex(index, (x[index] - mean[c]) * scale + beta[c]);`);
}

function pick(plan: LanePlan, width: number, column: number): WgslProgram {
  return program(`pick_${width}_${column}`, plan.channels, ['stats'], plan.channels, `
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    setOutputAtIndex(index, stats[index * ${width} + ${column}]);
  }`);
}

/** The moving update's extra uniforms: m and 1 − m (float32, as tfjs's scalars of them). */
const MOVING_UNIFORMS = `${UNIFORMS} momentum : f32, rest : f32,`;

/** The moving update of one statistic (gpu_kernels.ts's movingAverage pass). */
function movingAverage(plan: LanePlan, column: number): WgslProgram {
  return program(`movingAverage_${column}`, plan.channels, ['moving', 'stats'], plan.channels, `
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    setOutputAtIndex(index, moving[index] * uniforms.momentum + stats[index * ${MOMENT_STATS} + ${column}] * uniforms.rest);
  }`, false, MOVING_UNIFORMS);
}

/** The program of a pass, and the uniform values to run it with. */
export function wgslProgram(pass: Pass): {program: WgslProgram; uniforms: WgslUniform[]} {
  switch (pass.kind) {
    case 'momentPartials': return {program: momentPartials(pass.plan), uniforms: uniformsFor(pass.plan)};
    case 'momentMerge': return {program: momentMerge(pass.plan), uniforms: uniformsFor(pass.plan, pass.epsilon)};
    case 'normalize': return {program: normalize(pass.plan), uniforms: uniformsFor(pass.plan)};
    case 'gradientPartials': return {program: gradientPartials(pass.plan), uniforms: uniformsFor(pass.plan)};
    case 'gradientMerge': return {program: gradientMerge(pass.plan), uniforms: uniformsFor(pass.plan, pass.epsilon)};
    case 'gradientApply': return {program: gradientApply(pass.plan), uniforms: uniformsFor(pass.plan)};
    case 'pick': return {program: pick(pass.plan, pass.width, pass.column), uniforms: uniformsFor(pass.plan)};
    case 'infer': return {program: infer(pass.plan), uniforms: uniformsFor(pass.plan, pass.epsilon)};
    case 'movingAverage': return {program: movingAverage(pass.plan, pass.column), uniforms: [...uniformsFor(pass.plan),
      {type: 'float32', data: [pass.momentum]}, {type: 'float32', data: [1 - pass.momentum]}]};
  }
}
