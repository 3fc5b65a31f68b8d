/**
 * The GLSL programs of the fused kernels on tfjs-backend-webgl, one per pass of gpu_kernels.ts,
 * written like tfjs-backend-webgl's own GPGPU programs (its GPGPUProgram interface, typed
 * structurally here so this package never imports the backend at run time). tfjs compiles
 * `userCode` with a sampler per variable name, `getOutputCoords()` and `setOutput(value)`.
 *
 * Two texture layouts. Most tfjs webgl ops write *packed* textures (2×2 values of the last two
 * dimensions per texel), some *unpacked* ones (a value per texel); a program reads one or the
 * other, and tfjs converts an input of the other kind with an extra full-size pass. So x and dy
 * are read in the layout they come in (`packed`): unpacked as a flat [size] view, packed as
 * [B, R, C] (x's last two dimensions, so the view shares x's texture layout), through the helpers
 * `xAt(i)` / `dyAt(i)` (value i in row-major order) and `<name>At(c)` for per-channel vectors. The
 * elementwise passes then also write the layout they read (a packed pass writes 4 values a
 * fragment), so nothing downstream converts either. Partial and merge passes write unpacked
 * per-lane and per-channel textures, one float per fragment: a partial pass has one fragment per
 * (quantity, channel, lane), each walking its lane.
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
  packedInputs?: boolean;
  packedOutput?: boolean;
}

/** How the backend stores textures, and how x and dy arrive. */
export interface TextureFormat {
  /** Half-float textures (tfjs's WEBGL_RENDER_FLOAT32_ENABLED false, e.g. WEBGL_FORCE_F16_TEXTURES). */
  halfFloat: boolean;
  /** x (and dy) are packed textures. */
  packed: boolean;
}

/** Quantities per lane left by each partial pass; one more part holds the channel's shift s. */
const MOMENT_PARTS = 2;
const GRADIENT_PARTS = 3;

/** A number as a GLSL float literal (exponent form is valid GLSL ES 3.00: `1e-3`, `1.5e+0`). */
function glslFloat(value: number): string {
  return value.toExponential();
}

/** x's packed view: [B, R, C] with R, C its last two dimensions (a rank-2 x gets B = 1). */
export function packedView(shape: number[]): number[] {
  const [rows, cols] = shape.slice(-2);
  return [shape.slice(0, -2).reduce((a, b) => a * b, 1), rows, cols];
}

/**
 * Readers: `<name>At(i)` for the full-size inputs (value i in row-major order), `<name>At(c)` for
 * per-channel vectors, `statAt(c, k)` for the [channels, k] stats of a merge pass.
 */
function readers(plan: LanePlan, packed: boolean, full: string[], vectors: string[], stats: boolean): string {
  const getter = (name: string) => `get${name.charAt(0).toUpperCase()}${name.slice(1)}`;
  if (!packed) {
    return [
      ...full.map(name => `float ${name}At(int i) { return ${getter(name)}(i); }`),
      ...vectors.map(name => `float ${name}At(int c) { return ${getter(name)}(c); }`),
      ...(stats ? ['float statAt(int c, int k) { return getStats(c, k); }'] : []),
    ].join('\n    ');
  }
  const [, rows, cols] = packedView(plan.shape);
  // A packed texel holds (r, c), (r, c + 1), (r + 1, c), (r + 1, c + 1) of the last two dimensions.
  return [`float inTexel(vec4 t, int r, int c) {
      bool right = c - (c / 2) * 2 == 1;
      return r - (r / 2) * 2 == 0 ? (right ? t.y : t.x) : (right ? t.w : t.z);
    }`,
  ...full.map(name => `float ${name}At(int i) {
      int row = i / ${cols};
      int col = i - row * ${cols};
      int b = row / ${rows};
      int r = row - b * ${rows};
      return inTexel(${getter(name)}(b, r, col), r, col);
    }`),
  // A packed vector is a row: its texels hold (c, c + 1).
  ...vectors.map(name => `float ${name}At(int c) { return inTexel(${getter(name)}(c), 0, c); }`),
  ...(stats ? ['float statAt(int c, int k) { return inTexel(getStats(c, k), c, k); }'] : []),
  ].join('\n    ');
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

/** The partial passes' output: [part, channel, lane], or [part, lane, channel] when channels are fastest. */
function partialShape(plan: LanePlan, parts: number): number[] {
  return plan.channelFastest ? [parts + 1, plan.lanes, plan.channels] : [parts + 1, plan.channels, plan.lanes];
}

/** Arguments of getPartials(part, …) for channel c and lane q, matching partialShape. */
function partialAt(plan: LanePlan, part: number, lane = 'q'): string {
  return plan.channelFastest ? `${part}, ${lane}, c` : `${part}, c, ${lane}`;
}

/**
 * A partial pass: `walk` accumulates over the lane's values (value index `k`, d = x − s − base),
 * `result` writes part `part` of the lane. Part `parts` is the channel's shift s itself, which the
 * merge needs for the mean and could otherwise only read from x (in x's layout, not the merge's).
 */
function partialProgram(plan: LanePlan, format: TextureFormat, parts: number, full: string[], declare: string, walk: string,
                        result: string): GlslProgram {
  const {packed, halfFloat} = format;
  return {
    variableNames: full,
    outputShape: partialShape(plan, parts),
    packedInputs: packed,
    userCode: `${geometry(plan)}${storeFunction(halfFloat)}
    ${readers(plan, packed, full, [], false)}
    void main() {
      ivec3 coords = getOutputCoords();
      int part = coords.x;
      int c = coords.${plan.channelFastest ? 'z' : 'y'};
      int q = coords.${plan.channelFastest ? 'y' : 'z'};
      float s = xAt(c * ${plan.inner});
      if (part == ${parts}) {
        setOutput(s);
        return;
      }
      float base = xAt(valueAt(c, q)) - s;
      ${declare}
      for (int iter = 0; iter < ${plan.steps}; iter++) {
        int j = q + iter * ${plan.lanes};
        if (j >= ${plan.count}) {
          break;
        }
        int k = valueAt(c, j);
        float d = (xAt(k) - s) - base;
        ${walk}
      }
      float n = laneCount(q);
      ${result}
    }`,
  };
}

/** Per lane: mean of x − s, and the standard deviation (see below). */
function momentPartials(plan: LanePlan, format: TextureFormat): GlslProgram {
  return partialProgram(plan, format, MOMENT_PARTS, ['x'], 'float sum = 0.0; float sumSq = 0.0;', 'sum += d; sumSq += d * d;', `
      float m = sum / n;
      float v = sumSq / n - m * m;
      // The lane's standard deviation, not its variance: a lane of 16 values can have 2.5× the
      // channel's variance, which on half-float textures overflows (65504) from a spread of 160.
      setOutput(store(part == 0 ? base + m : sqrt(v < 0.0 ? 0.0 : v)));  // keeps NaN, unlike max`);
}

/** Per lane: (mean of x − s, mean of dy, mean of dy·(x − lane mean)), and on half floats x's standard deviation. */
function gradientPartials(plan: LanePlan, format: TextureFormat): GlslProgram {
  return partialProgram(plan, format, gradientParts(format.halfFloat), ['dy', 'x'],
      'float sumX = 0.0; float sumDy = 0.0; float sumDyX = 0.0; float sumSq = 0.0;', `
        float g = dyAt(k);
        sumX += d;
        sumDy += g;
        sumDyX += g * d;
        sumSq += d * d;`, `
      float m = sumX / n;
      float v = sumSq / n - m * m;
      setOutput(store(part == 0 ? base + m : part == 1 ? sumDy / n : part == 2 ? (sumDyX - m * sumDy) / n :
                      sqrt(v < 0.0 ? 0.0 : v)));`);
}

/**
 * Gradient partial parts: 3, and on half floats a fourth, the lane's standard deviation of x, from
 * which the merge recomputes a variance that saturated at 65504 in the forward pass's output.
 */
function gradientParts(halfFloat: boolean): number {
  return halfFloat ? GRADIENT_PARTS + 1 : GRADIENT_PARTS;
}

/** Chan et al.'s pairwise update of (count, mean, sum of squared deviations); a count of 0 is the identity. */
const MERGE_MOMENTS = `
    vec3 mergeMoments(vec3 a, vec3 b) {
      if (b.x == 0.0) {
        return a;
      }
      if (a.x == 0.0) {
        return b;
      }
      float n = a.x + b.x;
      float d = b.y - a.y;
      return vec3(n, a.y + d * (b.x / n), a.z + b.z + d * d * (a.x * (b.x / n)));
    }`;

/**
 * Half floats hold at most 65504, and GPUs write larger values as inf or NaN (SwiftShader: NaN).
 * On half-float textures, per-lane and per-channel results saturate there instead (a lane mean of
 * x − s can reach twice the largest |x|). A variance above 65504 (a spread above 256) is stored as
 * 65504: y never uses it (it takes the scale, computed in float32), and the gradient merge
 * recomputes it (gradientMerge). NaN stays NaN.
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
 * writes it with `setOutput(store(value))`. The channel's shift is `s`.
 */
function mergeProgram(plan: LanePlan, parts: number, width: number, vectors: string[], state: string, merge: string,
                      load: string, finish: string, halfFloat: boolean): GlslProgram {
  return {
    variableNames: ['partials', ...vectors],
    outputShape: [plan.channels, width],
    userCode: `${geometry(plan)}${storeFunction(halfFloat)}${MERGE_MOMENTS}
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
      float s = getPartials(${partialAt(plan, parts, '0')});
      ${finish}
    }`,
  };
}

function momentMerge(plan: LanePlan, epsilon: number, halfFloat: boolean): GlslProgram {
  // (count, mean of x − s, sum of squared deviations).
  return mergeProgram(plan, MOMENT_PARTS, MOMENT_STATS, ['gamma', 'beta'], 'vec3', `
      return mergeMoments(a, b);`,
  `vec3(n, getPartials(${partialAt(plan, 0)}), square(getPartials(${partialAt(plan, 1)})) * n)`, `
      float v = acc.z / acc.x;
      setOutput(store(column == 0 ? acc.y : column == 1 ? v :
                      column == 2 ? getGamma(c) * inverseRoot(v, ${glslFloat(epsilon)}) :
                      column == 3 ? getBeta(c) : s + acc.y));`, halfFloat);
}

function gradientMerge(plan: LanePlan, epsilon: number, halfFloat: boolean): GlslProgram {
  // A variance input at 65504 on half floats is the forward's saturated output (see storeFunction):
  // the true one, recomputed from the lanes' standard deviations, keeps dx right.
  const readVariance = halfFloat ? `
      float channelVariance = getVariance(c);
      if (channelVariance >= 65504.0) {
        vec3 moments = vec3(0.0);
        for (int q = 0; q < ${plan.lanes}; q++) {
          float n = laneCount(q);
          moments = mergeMoments(moments, vec3(n, getPartials(${partialAt(plan, 0)}), square(getPartials(${partialAt(plan, 3)})) * n));
        }
        channelVariance = moments.z / moments.x;
      }` : `
      float channelVariance = getVariance(c);`;
  // (count, mean of x − s, Σdy, Σdy·(x − mean)): the co-moment form of the same update.
  return mergeProgram(plan, gradientParts(halfFloat), GRADIENT_STATS, ['gamma', 'variance', 'dmean', 'dvariance'], 'vec4', `
      float n = a.x + b.x;
      float d = b.y - a.y;
      return vec4(n, a.y + d * (b.x / n), a.z + b.z, a.w + b.w + d * (a.x * b.z - b.x * a.z) / n);`,
  `vec4(n, getPartials(${partialAt(plan, 0)}), getPartials(${partialAt(plan, 1)}) * n, getPartials(${partialAt(plan, 2)}) * n)`, `${readVariance}
      float count = acc.x;
      float r = inverseRoot(channelVariance, ${glslFloat(epsilon)});
      float a = getGamma(c) * r;
      float value = column == 0 ? a :
                    column == 1 ? -a * r * r * acc.w / count + 2.0 * getDvariance(c) / count :
                    column == 2 ? -a * acc.z / count + getDmean(c) / count :
                    column == 3 ? acc.y :
                    column == 4 ? r * acc.w : acc.z;
      setOutput(store(value));`, halfFloat);
}

/**
 * GLSL expressions of per-channel values for the element(s) a fragment computes (a float for an
 * unpacked fragment, a vec4 for a packed texel): a per-channel vector input, a column of the merge's
 * stats, and the channel's shift s (its first value in x).
 */
interface ChannelReads {
  vector(name: string): string;
  stat(column: number): string;
  shift(): string;
}

/** Per-channel reads of an unpacked fragment, whose channel is `ch`. */
function elementReads(plan: LanePlan): ChannelReads {
  return {vector: name => `${name}At(ch)`, stat: k => `statAt(ch, ${k})`, shift: () => `xAt(ch * ${plan.inner})`};
}

/**
 * Which channels the four values of a packed texel belong to, and how to read their per-channel
 * values: `lastAxis` (channels are x's last dimension: c, c + 1, c, c + 1 with c even, so one texel
 * of a packed vector or of the stats holds both), `plane` (the texel lies within one channel, as in
 * channels-first layouts whose channel holds whole [R, C] planes: one read each), or each its own.
 */
function texelReads(plan: LanePlan): {declare: string; reads: ChannelReads} {
  const [, rows, cols] = packedView(plan.shape);
  const getter = (name: string) => `get${name.charAt(0).toUpperCase()}${name.slice(1)}`;
  if (plan.inner === 1 && plan.channels === cols) {
    return {declare: 'ivec4 ch = ivec4(rc.z, rc.z + 1, rc.z, rc.z + 1);', reads: {
      vector: name => `${getter(name)}(ch.x).xyxy`,
      stat: k => `(${k % 2 === 0 ? 'getStats(ch.x, ' + k + ').xz' : 'getStats(ch.x, ' + k + ').yw'}).xyxy`,
      shift: () => 'vec2(xAt(ch.x), xAt(ch.y)).xyxy',
    }};
  }
  if (plan.inner % (rows * cols) === 0) {
    return {declare: `int plane = rc.x / ${plan.inner / (rows * cols)};
      ivec4 ch = ivec4(plane - (plane / ${plan.channels}) * ${plan.channels});`, reads: {
      vector: name => `vec4(${name}At(ch.x))`, stat: k => `vec4(statAt(ch.x, ${k}))`, shift: () => `vec4(xAt(ch.x * ${plan.inner}))`,
    }};
  }
  const each = (f: (c: string) => string) => `vec4(${f('ch.x')}, ${f('ch.y')}, ${f('ch.z')}, ${f('ch.w')})`;
  return {declare: `int i = (rc.x * ${rows} + rc.y) * ${cols} + rc.z;
      ivec4 ch = ivec4(channelOf(i), channelOf(i + 1), channelOf(i + ${cols}), channelOf(i + ${cols + 1}));`, reads: {
    vector: name => each(c => `${name}At(${c})`), stat: k => each(c => `statAt(${c}, ${k})`),
    shift: () => each(c => `xAt(${c} * ${plan.inner})`),
  }};
}

/**
 * An elementwise pass over x in its own layout. `value(T, reads)` is the GLSL body of
 * `T value(channels ch, T xv, T dyv)` (T: float unpacked, vec4 packed) that returns the result for
 * x value(s) `xv` and dy value(s) `dyv`, reading per-channel values through `reads`. Unpacked: a
 * fragment per element. Packed: a fragment per texel, four elements at once (those past the edge
 * are not stored).
 */
function elementwise(plan: LanePlan, packed: boolean, full: string[], vectors: string[], stats: boolean,
                     value: (type: string, reads: ChannelReads) => string): GlslProgram {
  const names = [...full, ...vectors, ...(stats ? ['stats'] : [])];
  const readDy = full.includes('dy');
  const prelude = `${geometry(plan)}
    ${readers(plan, packed, full, vectors, stats)}`;
  if (!packed) {
    return {variableNames: names, outputShape: [plan.outer * plan.channels * plan.inner], userCode: `${prelude}
    float value(int ch, float xv, float dyv) {
      ${value('float', elementReads(plan))}
    }
    void main() {
      int i = getOutputCoords();
      setOutput(value(channelOf(i), getX(i), ${readDy ? 'getDy(i)' : '0.0'}));
    }`};
  }
  const {declare, reads} = texelReads(plan);
  return {variableNames: names, outputShape: packedView(plan.shape), packedInputs: true, packedOutput: true, userCode: `${prelude}
    vec4 inverseRoot(vec4 v, float epsilon) {
      return vec4(inverseRoot(v.x, epsilon), inverseRoot(v.y, epsilon), inverseRoot(v.z, epsilon), inverseRoot(v.w, epsilon));
    }
    vec4 value(ivec4 ch, vec4 xv, vec4 dyv) {
      ${value('vec4', reads)}
    }
    void main() {
      ivec3 rc = getOutputCoords();
      ${declare}
      setOutput(value(ch, getXAtOutCoords(), ${readDy ? 'getDyAtOutCoords()' : 'vec4(0.0)'}));
    }`};
}

function normalize(plan: LanePlan, packed: boolean): GlslProgram {
  return elementwise(plan, packed, ['x'], [], true, (T, r) => `
      ${T} centered = (xv - ${r.shift()}) - ${r.stat(0)};
      return centered * ${r.stat(2)} + ${r.stat(3)};`);
}

function gradientApply(plan: LanePlan, packed: boolean): GlslProgram {
  return elementwise(plan, packed, ['dy', 'x'], [], true, (T, r) => `
      ${T} centered = (xv - ${r.shift()}) - ${r.stat(3)};
      return ${r.stat(0)} * dyv + ${r.stat(1)} * centered + ${r.stat(2)};`);
}

function infer(plan: LanePlan, packed: boolean, epsilon: number): GlslProgram {
  return elementwise(plan, packed, ['x'], ['mean', 'variance', 'gamma', 'beta'], false, (T, r) => `
      ${T} scale = ${r.vector('gamma')} * inverseRoot(${r.vector('variance')}, ${glslFloat(epsilon)});
      return (xv - ${r.vector('mean')}) * scale + ${r.vector('beta')};`);
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

/** The moving update of one statistic (gpu_kernels.ts's movingAverage pass), m and 1 − m as float32 constants. */
function movingAverage(plan: LanePlan, column: number, momentum: number, halfFloat: boolean): GlslProgram {
  return {
    variableNames: ['moving', 'stats'],
    outputShape: [plan.channels],
    userCode: `${storeFunction(halfFloat)}
    void main() {
      int c = getOutputCoords();
      setOutput(store(getMoving(c) * ${glslFloat(Math.fround(momentum))} + getStats(c, ${column}) * ${glslFloat(Math.fround(1 - momentum))}));
    }`,
  };
}

/** The program of a pass. */
export function glslProgram(pass: Pass, format: TextureFormat): GlslProgram {
  const {halfFloat, packed} = format;
  switch (pass.kind) {
    case 'momentPartials': return momentPartials(pass.plan, format);
    case 'momentMerge': return momentMerge(pass.plan, pass.epsilon, halfFloat);
    case 'normalize': return normalize(pass.plan, packed);
    case 'gradientPartials': return gradientPartials(pass.plan, format);
    case 'gradientMerge': return gradientMerge(pass.plan, pass.epsilon, halfFloat);
    case 'gradientApply': return gradientApply(pass.plan, packed);
    case 'pick': return pick(pass.column, pass.plan);
    case 'infer': return infer(pass.plan, packed, pass.epsilon);
    case 'movingAverage': return movingAverage(pass.plan, pass.column, pass.momentum, halfFloat);
  }
}
