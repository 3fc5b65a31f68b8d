/**
 * The GLSL programs of the fused kernels on tfjs-backend-webgl, one per pass of gpu_kernels.ts,
 * written like tfjs-backend-webgl's own GPGPU programs (its GPGPUProgram interface, typed
 * structurally here so this package never imports the backend at run time). tfjs compiles
 * `userCode` with a sampler per variable name (`getX(i)` for a flat input, `getStats(c, k)` for a
 * 2-D one), `getOutputCoords()` and `setOutput(value)`. Every fragment writes one float (unpacked
 * textures), so a partial pass has one fragment per (quantity, channel, lane), each walking its lane.
 *
 * Shapes and ε are written into the code as constants, as tfjs's reduce programs do: the compiler
 * folds the index arithmetic, and tfjs caches one binary per distinct code.
 */
import {GRADIENT_STATS, MOMENT_STATS, Pass} from '../gpu_kernels';
import type {LanePlan} from '../gpu_plan';

/** The fields of tfjs-backend-webgl's GPGPUProgram that these programs set. */
export interface GlslProgram {
  variableNames: string[];
  outputShape: number[];
  userCode: string;
}

/** Quantities per lane left by each partial pass. */
const MOMENT_PARTS = 2;
const GRADIENT_PARTS = 3;

/** A number as a GLSL float literal (exponent form is valid GLSL ES 3.00: `1e-3`, `1.5e+0`). */
function glslFloat(value: number): string {
  return value.toExponential();
}

/** Index arithmetic of gpu_plan.ts with the problem's constants. */
function geometry(plan: LanePlan): string {
  return `
    int valueAt(int c, int j) {
      int o = j / ${plan.inner};
      return (o * ${plan.channels} + c) * ${plan.inner} + (j - o * ${plan.inner});
    }
    int channelOf(int index) {
      int run = index / ${plan.inner};
      return run - (run / ${plan.channels}) * ${plan.channels};
    }
    float laneCount(int q) {
      return float((${plan.count - 1} - q) / ${plan.lanes} + 1);
    }
    // 1/√(v + ε), and 0 for an infinite variance, its limit (inversesqrt(inf) is not always 0 on
    // GPUs): on half-float textures a variance above 65504 arrives as inf.
    float inverseRoot(float v, float epsilon) {
      return v > 3.0e38 ? 0.0 : inversesqrt(v + epsilon);
    }`;
}

/** The partial passes' output: [quantity, channel, lane], or [quantity, lane, channel] when channels are fastest. */
function partialShape(plan: LanePlan, parts: number): number[] {
  return plan.channelFastest ? [parts, plan.lanes, plan.channels] : [parts, plan.channels, plan.lanes];
}

/** Arguments of getPartials(part, …) for channel c and lane q, matching partialShape. */
function partialAt(plan: LanePlan, part: number | string, lane = 'q'): string {
  return plan.channelFastest ? `${part}, ${lane}, c` : `${part}, c, ${lane}`;
}

/** A partial pass: `walk` accumulates over the lane's values (value index `k`, d = x − s − base). */
function partialProgram(plan: LanePlan, parts: number, variableNames: string[], declare: string, walk: string,
                        result: string): GlslProgram {
  return {
    variableNames,
    outputShape: partialShape(plan, parts),
    userCode: `${geometry(plan)}
    void main() {
      ivec3 coords = getOutputCoords();
      int part = coords.x;
      int c = coords.${plan.channelFastest ? 'z' : 'y'};
      int q = coords.${plan.channelFastest ? 'y' : 'z'};
      float s = getX(c * ${plan.inner});
      float base = getX(valueAt(c, q)) - s;
      ${declare}
      for (int iter = 0; iter < ${plan.steps}; iter++) {
        int j = q + iter * ${plan.lanes};
        if (j >= ${plan.count}) {
          break;
        }
        int k = valueAt(c, j);
        float d = (getX(k) - s) - base;
        ${walk}
      }
      float n = laneCount(q);
      ${result}
    }`,
  };
}

/** Per lane: mean of x − s, and the standard deviation (see below). */
function momentPartials(plan: LanePlan): GlslProgram {
  return partialProgram(plan, MOMENT_PARTS, ['x'], 'float sum = 0.0; float sumSq = 0.0;', 'sum += d; sumSq += d * d;', `
      float m = sum / n;
      float v = sumSq / n - m * m;
      // The lane's standard deviation, not its variance: a lane of 16 values can have 2.5× the
      // channel's variance, which on half-float textures overflows (65504) from a spread of 160.
      setOutput(part == 0 ? base + m : sqrt(v < 0.0 ? 0.0 : v));  // keeps NaN, unlike max`);
}

function gradientPartials(plan: LanePlan): GlslProgram {
  return partialProgram(plan, GRADIENT_PARTS, ['dy', 'x'], 'float sumX = 0.0; float sumDy = 0.0; float sumDyX = 0.0;', `
        float g = getDy(k);
        sumX += d;
        sumDy += g;
        sumDyX += g * d;`, `
      float m = sumX / n;
      setOutput(part == 0 ? base + m : part == 1 ? sumDy / n : (sumDyX - m * sumDy) / n);`);
}

/**
 * Half floats hold at most 65504, and GPUs write larger values as inf or NaN (SwiftShader: NaN).
 * On half-float textures, per-channel results saturate there instead: a variance above 65504 (a
 * spread above 256) is stored as 65504, which the output y never uses (it takes the scale, computed
 * in float32) and which moves the gradient by less than γ·|dy|/256. NaN stays NaN.
 */
function storeFunction(halfFloat: boolean): string {
  return halfFloat ? `
    float store(float v) {
      return v > 65504.0 ? 65504.0 : v < -65504.0 ? -65504.0 : v;
    }` : `
    float store(float v) {
      return v;
    }`;
}

/**
 * A merge pass: one fragment per (channel, column) merges all lanes of its channel in order (count
 * first in the state; a count of 0 is the identity), then `finish` picks the column's value and
 * writes it with `setOutput(store(value))`.
 */
function mergeProgram(plan: LanePlan, width: number, variableNames: string[], state: string, merge: string,
                      load: string, finish: string, halfFloat: boolean): GlslProgram {
  return {
    variableNames,
    outputShape: [plan.channels, width],
    userCode: `${geometry(plan)}${storeFunction(halfFloat)}
    float square(float v) {
      return v * v;
    }
    ${state} merge(${state} a, ${state} b) {
      if (b.x == 0.0) {
        return a;
      }
      if (a.x == 0.0) {
        return b;
      }
      ${merge}
    }
    void main() {
      ivec2 coords = getOutputCoords();
      int c = coords.x;
      int column = coords.y;
      ${state} acc = ${state}(0.0);
      for (int q = 0; q < ${plan.lanes}; q++) {
        float n = laneCount(q);
        acc = merge(acc, ${load});
      }
      ${finish}
    }`,
  };
}

function momentMerge(plan: LanePlan, epsilon: number, halfFloat: boolean): GlslProgram {
  // (count, mean of x − s, sum of squared deviations): Chan et al.'s pairwise update.
  return mergeProgram(plan, MOMENT_STATS, ['partials', 'gamma', 'beta', 'x'], 'vec3', `
      float n = a.x + b.x;
      float d = b.y - a.y;
      return vec3(n, a.y + d * (b.x / n), a.z + b.z + d * d * (a.x * (b.x / n)));`,
  `vec3(n, getPartials(${partialAt(plan, 0)}), square(getPartials(${partialAt(plan, 1)})) * n)`, `
      float v = acc.z / acc.x;
      setOutput(store(column == 0 ? acc.y : column == 1 ? v :
                      column == 2 ? getGamma(c) * inverseRoot(v, ${glslFloat(epsilon)}) :
                      column == 3 ? getBeta(c) : getX(c * ${plan.inner}) + acc.y));`, halfFloat);
}

function gradientMerge(plan: LanePlan, epsilon: number, halfFloat: boolean): GlslProgram {
  // (count, mean of x − s, Σdy, Σdy·(x − mean)): the co-moment form of the same update.
  return mergeProgram(plan, GRADIENT_STATS, ['partials', 'gamma', 'variance', 'dmean', 'dvariance'], 'vec4', `
      float n = a.x + b.x;
      float d = b.y - a.y;
      return vec4(n, a.y + d * (b.x / n), a.z + b.z, a.w + b.w + d * (a.x * b.z - b.x * a.z) / n);`,
  `vec4(n, getPartials(${partialAt(plan, 0)}), getPartials(${partialAt(plan, 1)}) * n, getPartials(${partialAt(plan, 2)}) * n)`, `
      float count = acc.x;
      float r = inverseRoot(getVariance(c), ${glslFloat(epsilon)});
      float a = getGamma(c) * r;
      float value = column == 0 ? a :
                    column == 1 ? -a * r * r * acc.w / count + 2.0 * getDvariance(c) / count :
                    column == 2 ? -a * acc.z / count + getDmean(c) / count :
                    column == 3 ? acc.y :
                    column == 4 ? r * acc.w : acc.z;
      setOutput(store(value));`, halfFloat);
}

/** One fragment per element of x (flat); `c` is its channel. */
function elementwise(plan: LanePlan, variableNames: string[], value: string): GlslProgram {
  return {
    variableNames,
    outputShape: [plan.outer * plan.channels * plan.inner],
    userCode: `${geometry(plan)}
    void main() {
      int index = getOutputCoords();
      int c = channelOf(index);
      ${value}
    }`,
  };
}

function normalize(plan: LanePlan): GlslProgram {
  return elementwise(plan, ['x', 'stats'], `
      float centered = (getX(index) - getX(c * ${plan.inner})) - getStats(c, 0);
      setOutput(centered * getStats(c, 2) + getStats(c, 3));`);
}

function gradientApply(plan: LanePlan): GlslProgram {
  return elementwise(plan, ['dy', 'x', 'stats'], `
      float centered = (getX(index) - getX(c * ${plan.inner})) - getStats(c, 3);
      setOutput(getStats(c, 0) * getDy(index) + getStats(c, 1) * centered + getStats(c, 2));`);
}

function infer(plan: LanePlan, epsilon: number): GlslProgram {
  return elementwise(plan, ['x', 'mean', 'variance', 'gamma', 'beta'], `
      float scale = getGamma(c) * inverseRoot(getVariance(c), ${glslFloat(epsilon)});
      setOutput((getX(index) - getMean(c)) * scale + getBeta(c));`);
}

function pick(column: number, plan: LanePlan): GlslProgram {
  return {
    variableNames: ['stats'],
    outputShape: [plan.channels],
    userCode: `
    void main() {
      setOutput(getStats(getOutputCoords(), ${column}));
    }`,
  };
}

/** The program of a pass; `halfFloat` when the backend's textures are half floats (WEBGL_RENDER_FLOAT32_ENABLED false). */
export function glslProgram(pass: Pass, halfFloat: boolean): GlslProgram {
  switch (pass.kind) {
    case 'momentPartials': return momentPartials(pass.plan);
    case 'momentMerge': return momentMerge(pass.plan, pass.epsilon, halfFloat);
    case 'normalize': return normalize(pass.plan);
    case 'gradientPartials': return gradientPartials(pass.plan);
    case 'gradientMerge': return gradientMerge(pass.plan, pass.epsilon, halfFloat);
    case 'gradientApply': return gradientApply(pass.plan);
    case 'pick': return pick(pass.column, pass.plan);
    case 'infer': return infer(pass.plan, pass.epsilon);
  }
}
