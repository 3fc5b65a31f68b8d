/**
 * The fused webgl and webgpu kernels (src/kernels/webgl, src/kernels/webgpu) and the SIMD kernels
 * on tfjs's multi-threaded wasm build, in headless Chromium (WebGL 2 and WebGPU on SwiftShader).
 * The page (__tests__/browser_kernels/page.ts) computes; this file checks every output, statistic
 * and gradient against the float64 reference and against the cpu backend, the kernels that ran,
 * memory before and after, half-float textures, and the threaded wasm build.
 * Without Chromium this FAILS (it is not skipped): `.ci/run` installs it.
 */
import {join} from 'path';
import type {Browser, Page} from 'playwright-core';
import type {HalfFloatResult, KernelLab, ProblemResult, WasmInfo} from './browser_kernels/page';
import {bundlePage, launchChromium, PageServer, servePages, WASM_DIR} from './support/chromium';
import {goldenTolerance, loadGoldenCases, maxRelativeError} from './support/golden';
import {answers, BrowserProblem, fromJson, goldenProblem, makeProblem, ProblemAnswers, ProblemSpec, STEP_MOMENTUM, toJson,
  trainAnswers} from './support/browser_problems';
import {MOVING_UPDATE_ULPS} from '../src/kernels/gpu_kernels';
import {refMovingUpdate, refMovingUpdateFloat32, refTrain, refTrainGrad} from './support/reference';

const LAB_DIR = join(__dirname, 'browser_kernels');
const BUNDLE_DIR = join(__dirname, 'artifacts', 'browser_kernels');

/**
 * Problems beyond the golden cases: several lanes per channel (the partial and merge passes), both
 * thread orders (channels-last and runs of inner > 2), a list of adjacent axes at rank 6, many
 * channels, a large offset, no gamma/beta, one value per channel, constant channels at 3e4, and
 * gradients arriving at the mean and variance outputs.
 */
const SPECS: ProblemSpec[] = [
  {name: 'nhwc, 512 values per channel', shape: [8, 8, 8, 6], axis: -1, offset: 3, spread: 2, statsGradients: true, masked: true},
  {name: 'nchw, 1024 values per channel', shape: [4, 5, 16, 16], axis: 1, offset: -1, spread: 3, statsGradients: true, masked: true,
    gradients: 'tape', inferGradients: true},
  {name: 'runs of 2 (inner = 2), x packed and dy not', shape: [32, 5, 2], axis: 1, offset: 0.5, statsGradients: true, layout: 'mixed'},
  {name: 'rank 6, axes [2, 3]', shape: [2, 3, 2, 4, 3, 5], axis: [2, 3], spread: 2, statsGradients: true},
  {name: 'dense, 300 channels', shape: [32, 300], axis: -1, offset: 1},
  {name: 'large offset 1e4 ± 0.5, 1024 values per channel', shape: [1024, 3], axis: -1, offset: 1e4, spread: 0.5, statsGradients: true},
  {name: '4096 values per channel', shape: [4096, 1], axis: -1, offset: 2, spread: 4},
  {name: 'wide spread ± 1000 (float32 statistics do not saturate)', shape: [64, 4], axis: -1, spread: 1000},
  {name: 'no gamma, no beta', shape: [6, 4, 7], axis: -1, affine: false, statsGradients: true, gradients: 'tape', masked: true},
  {name: 'unpacked x and dy, odd last dimensions', shape: [3, 5, 7, 9], axis: 1, offset: 1, statsGradients: true, layout: 'unpacked'},
  {name: 'one value per channel', shape: [1, 5], axis: -1, offset: 2},
  {name: 'constant channels at 3e4', shape: [16, 3], axis: -1, offset: 3e4, spread: 0},
  // Not adjacent: tf ops in training, the backend's FusedBatchNorm in inference (issue 9: its
  // gradient once crashed on webgl), the composite masked path.
  {name: 'axes [1, 3], not adjacent', shape: [4, 3, 5, 2], axis: [1, 3], offset: 1, gradients: 'tape', inferGradients: true, masked: true},
];

function problems(): BrowserProblem[] {
  return SPECS.map((spec, i) => makeProblem(spec, 1000 + i));
}

/** A problem with NaN in one value of channel 1: that channel's outputs are NaN, the others exact. */
function nanProblem(): BrowserProblem {
  const p = makeProblem({name: 'NaN in channel 1', shape: [8, 4], axis: -1, offset: 1}, 77);
  p.x[4 * 3 + 1] = NaN;
  return p;
}

type Output = keyof ProblemAnswers;
const OUTPUTS: Output[] = ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta', 'inferY', 'inferDx', 'inferDmean',
  'inferDvariance', 'inferDgamma', 'inferDbeta'];

function outputsOf(r: ProblemResult): Record<Output, number[]> {
  return {
    y: r.train.y, mean: r.train.mean, variance: r.train.variance,
    dx: r.trainGrads.dx, dgamma: r.trainGrads.dgamma, dbeta: r.trainGrads.dbeta,
    inferY: r.inferY, inferDx: r.inferGrads.dx, inferDmean: r.inferGrads.dmean, inferDvariance: r.inferGrads.dvariance,
    inferDgamma: r.inferGrads.dgamma, inferDbeta: r.inferGrads.dbeta,
  };
}

/** The outputs a problem has (no dgamma/dbeta when gamma/beta are null; inference gradients when asked for). */
function outputsFor(p: BrowserProblem): Output[] {
  return OUTPUTS.filter(o => !((p.gamma == null && /gamma/i.test(o)) || (p.beta == null && /beta/i.test(o)) ||
    (!p.inferGradients && /^inferD/.test(o))));
}

/** max |got − want|/(1 + |want|), where NaN must meet NaN (and nothing else may be NaN). */
function error(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]) || Number.isNaN(got[i])) {
      if (Number.isNaN(want[i]) !== Number.isNaN(got[i])) return Infinity;
      continue;
    }
    const e = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    if (!(e <= worst)) worst = Number.isFinite(e) ? e : Infinity;
  }
  return worst;
}

/** Worst error of each output over the problems, and where it occurred. */
function worstErrors(problemList: BrowserProblem[], got: (p: BrowserProblem) => Record<Output, number[]>,
                     want: (p: BrowserProblem) => Record<Output, ArrayLike<number>>): Map<Output, {error: number; where: string}> {
  const worst = new Map<Output, {error: number; where: string}>();
  for (const p of problemList) {
    const g = got(p);
    const w = want(p);
    for (const o of outputsFor(p)) {
      const e = error(g[o], w[o]);
      if (!(e <= (worst.get(o)?.error ?? 0))) worst.set(o, {error: e, where: p.name});
    }
  }
  return worst;
}

function expectWithin(worst: Map<Output, {error: number; where: string}>, tolerance: (o: Output) => number, what: string): void {
  const failures = [...worst].filter(([o, w]) => !(w.error <= tolerance(o)))
    .map(([o, w]) => `${o}: ${w.error.toPrecision(3)} > ${tolerance(o)} (${w.where})`);
  expect(`${what}: ${failures.join('; ') || 'all within tolerance'}`).toBe(`${what}: all within tolerance`);
}

/**
 * Tolerance in |got − want|/(1 + |want|), for webgl and webgpu against float64 and against cpu alike.
 * Measured on SwiftShader: worst 2.8e-6 (dgamma of the nhwc problem); y, mean and variance ≤ 6.9e-7
 * (the large-offset problem included). Set at 1e-5, a margin of 3.5×, and 100× tighter than the
 * 1e-3 that unshifted float32 sums cost at 1e4 ± 0.5.
 */
const GPU_TOLERANCE = 1e-5;

/**
 * Half-float textures (WEBGL_FORCE_F16_TEXTURES): x and dy are rounded to float16 on upload, so the
 * reference takes the values the GPU holds. Issue 13's target: training output at 100 ± 1 within
 * 3e-3 of float64 (the stock layer: 3.5e-2). Measured, |got − want|/(1 + |want|) over [16,8,8,16]:
 * y 8.5e-4 at 100 ± 1 and 8.8e-4 at 10 ± 1 (stock 3.8e-2 and 5.2e-3); ≤ 8.3e-4 at every range
 * below, the saturated ones included; dx ≤ 6.2e-4; mean and variance ≤ 2.9e-3 (unsaturated).
 * Tolerances: 2e-3 for y and dx, 6e-3 for the statistics (about 2× the worst each).
 */
const HALF_Y_TOLERANCE = 2e-3;
const HALF_STATS_TOLERANCE = 6e-3;
/** Centers and spreads swept on half floats: small, offset, large offset, spreads up to the float16 limit. */
const HALF_RANGES: Array<[number, number]> = [[100, 1], [10, 1], [0, 1], [1000, 30], [3e4, 100], [0, 200], [5, 1e-3]];
/** Beyond the half-float range of the variance (a spread above 256; at 1e4 values reach ±6e4): it saturates at 65504. */
const HALF_SATURATED: Array<[number, number]> = [[0, 300], [0, 1e4]];
const HALF_SHAPE = [16, 8, 8, 16];

/**
 * The GPU moving update against the float32 formula of kernel_names.ts applied to the kernel's own
 * mean and variance outputs, fround(fround(old·m) + fround(batch·fround(1 − m))): GLSL and WGSL
 * compilers may contract a·b + c into a fused multiply-add (one rounding instead of two), so this is
 * not guaranteed bit for bit. Measured on SwiftShader: 0 ulps, bit for bit, on webgl and webgpu
 * (every step problem, momentum 0.99); the bound is gpu_kernels.ts's MOVING_UPDATE_ULPS = 1, in
 * units in the last place of the larger rounded product (a fused multiply-add skips one product's
 * rounding, at most half of that unit, and the final rounding can then go the other way).
 */
const MOVING_ULPS = MOVING_UPDATE_ULPS;

/** The float32 unit in the last place at |v| (normal numbers; the subnormal spacing below). */
function ulp32(v: number): number {
  const a = Math.abs(v);
  return a < 2 ** -126 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(a)) - 23);
}

/**
 * Worst |got − want| in ulps of max(|fround(old·m)|, |fround(batch·(1 − m))|) (see MOVING_ULPS);
 * NaN where both are NaN counts 0.
 */
function movingUlps(got: number[], old: number[], batch: number[], momentum: number): number {
  const want = refMovingUpdateFloat32(old, batch, momentum);
  let worst = 0;
  for (let c = 0; c < want.length; c++) {
    if (Number.isNaN(want[c]) && Number.isNaN(got[c])) continue;
    const scale = Math.max(Math.abs(Math.fround(old[c] * Math.fround(momentum))), Math.abs(Math.fround(batch[c] * Math.fround(1 - momentum))));
    const e = Math.abs(got[c] - want[c]) / ulp32(scale);
    if (!(e <= worst)) worst = Number.isFinite(e) ? e : Infinity;
  }
  return worst;
}

describe('fused kernels in Chromium', () => {
  let browser: Browser | undefined;
  let server: PageServer | undefined;

  beforeAll(async () => {
    await bundlePage(join(LAB_DIR, 'page.ts'), join(BUNDLE_DIR, 'lab.js'));
    server = await servePages('/dist/lab.js', {'/dist/': BUNDLE_DIR, '/wasm/': WASM_DIR});
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Opens the lab page with a setting (`''`, `'f16'`, `'wasm'`) and waits for its API. */
  async function openLab(setting: string): Promise<Page> {
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on('pageerror', e => errors.push(e.message));
    await page.goto(`${server!.url}index.html${setting ? `?${setting}` : ''}`);
    await page.waitForFunction(() => window.kernelLab != null || window.kernelLabError != null, undefined, {timeout: 60_000});
    const failed = await page.evaluate(() => window.kernelLabError);
    if (failed != null || errors.length > 0) throw new Error(`the lab page failed: ${failed}; ${errors.join('; ')}`);
    return page;
  }

  async function run(page: Page, p: BrowserProblem, backend: string): Promise<ProblemResult> {
    return fromJson<ProblemResult>(
        await page.evaluate(([problem, b]) => (window.kernelLab as KernelLab).runJson(problem, b), [toJson(p), backend] as const));
  }

  describe.each(['webgl', 'webgpu'])('%s (SwiftShader)', backend => {
    let page: Page;
    const all = [...problems(), nanProblem()];
    const goldenCases = loadGoldenCases();
    const golden = goldenCases.map(goldenProblem);
    const gpu = new Map<string, ProblemResult>();
    const cpu = new Map<string, ProblemResult>();

    beforeAll(async () => {
      page = await openLab('');
      for (const p of all) cpu.set(p.name, await run(page, p, 'cpu'));
      for (const p of [...all, ...golden]) gpu.set(p.name, await run(page, p, backend));
    }, 180_000);

    afterAll(async () => {
      await page?.close();
    });

    if (backend === 'webgl') {
      test('x and dy reached the kernels both as packed and as unpacked textures (and mixed)', () => {
        const layouts = new Set([...all, ...golden].map(p => JSON.stringify(gpu.get(p.name)!.packed)));
        expect([...layouts].sort()).toEqual(['{"x":false,"dy":false}', '{"x":true,"dy":false}', '{"x":true,"dy":true}']);
      });
    }

    test(`${backend} ran, and ran the fused kernels wherever the channel axes are adjacent`, () => {
      for (const p of [...all, ...golden]) {
        const r = gpu.get(p.name)!;
        expect(r.backend).toBe(backend);
        const axes = (Array.isArray(p.axis) ? p.axis : [p.axis]).map(a => (a < 0 ? a + p.shape.length : a)).sort();
        const adjacent = axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
        const ran = (list: string[], name: string) => list.includes(`TfjsBatchNorm_${name}`);
        expect([p.name, ran(r.kernels.train, 'BatchNormTrain'), ran(r.kernels.trainGrads, 'BatchNormTrainGrad'),
          ran(r.kernels.infer, 'BatchNormInfer')]).toEqual([p.name, adjacent, adjacent, adjacent]);
      }
    });

    test(`outputs, statistics and gradients (training and inference) match float64 within ${GPU_TOLERANCE}`, () => {
      const worst = worstErrors(all, p => outputsOf(gpu.get(p.name)!), p => answers(p) as unknown as Record<Output, ArrayLike<number>>);
      if (process.env.MEASURE) console.log(backend, 'vs float64', [...worst].map(([o, w]) => `${o} ${w.error.toPrecision(2)} (${w.where})`).join('\n'));
      expectWithin(worst, () => GPU_TOLERANCE, `${backend} vs float64`);
    });

    test(`and match the cpu backend within ${GPU_TOLERANCE}`, () => {
      const worst = worstErrors(all, p => outputsOf(gpu.get(p.name)!), p => outputsOf(cpu.get(p.name)!));
      if (process.env.MEASURE) console.log(backend, 'vs cpu', [...worst].map(([o, w]) => `${o} ${w.error.toPrecision(2)} (${w.where})`).join('\n'));
      expectWithin(worst, () => GPU_TOLERANCE, `${backend} vs cpu`);
    });

    test('NaN in one value makes its channel NaN and leaves the others exact; constant channels give exactly beta', () => {
      const nan = outputsOf(gpu.get('NaN in channel 1')!);
      expect(nan.y.filter((_, i) => i % 4 === 1).every(Number.isNaN)).toBe(true);
      expect(nan.y.filter((_, i) => i % 4 !== 1).every(Number.isFinite)).toBe(true);
      const constant = problems().find(p => p.name === 'constant channels at 3e4')!;
      const y = outputsOf(gpu.get(constant.name)!).y;
      expect(y).toEqual(y.map((_, i) => constant.beta![i % 3]));
    });

    test('the golden cases (the repository\'s, and ../shared/golden\'s where present) within their own tolerances', () => {
      for (const c of goldenCases) {
        const p = goldenProblem(c);
        const want = answers(p);
        const got = outputsOf(gpu.get(p.name)!);
        for (const o of outputsFor(p)) expect([p.name, o, error(got[o], want[o]) <= goldenTolerance(c)]).toEqual([p.name, o, true]);
      }
    });

    const stepProblems = all.filter(p => p.step);
    const adjacent = (p: BrowserProblem) => {
      const axes = (Array.isArray(p.axis) ? p.axis : [p.axis]).map(a => (a < 0 ? a + p.shape.length : a)).sort();
      return axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
    };
    const maskedProblems = all.filter(p => p.masked);

    test(`the layer's training step is one kernel on ${backend} (moving update inside BatchNormTrain), as on cpu`, () => {
      expect(stepProblems.filter(p => !adjacent(p)).length).toBeGreaterThan(0);
      for (const p of stepProblems.filter(adjacent)) {
        expect([p.name, gpu.get(p.name)!.step!.kernels]).toEqual([p.name, ['TfjsBatchNorm_BatchNormTrain']]);
        expect([p.name, cpu.get(p.name)!.step!.kernels]).toEqual([p.name, ['TfjsBatchNorm_BatchNormTrain']]);
      }
    });

    test(`the moving update is the float32 formula on the kernel's own mean and variance within ${MOVING_ULPS} ulp, ` +
        `and matches float64 and cpu within ${GPU_TOLERANCE}`, () => {
      let worstUlps = 0;
      for (const p of stepProblems) {
        const step = gpu.get(p.name)!.step!;
        const ulps = Math.max(movingUlps(step.movingMean, p.movingMean, step.mean, STEP_MOMENTUM),
            movingUlps(step.movingVariance, p.movingVariance, step.variance, STEP_MOMENTUM));
        worstUlps = Math.max(worstUlps, ulps);
        expect([p.name, ulps <= MOVING_ULPS]).toEqual([p.name, true]);
        const want = trainAnswers(p, false);
        const cpuStep = cpu.get(p.name)!.step!;
        for (const [got, old, batch, onCpu] of [[step.movingMean, p.movingMean, want.mean, cpuStep.movingMean],
          [step.movingVariance, p.movingVariance, want.variance, cpuStep.movingVariance]]) {
          expect([p.name, error(got, refMovingUpdate(old, batch, STEP_MOMENTUM)) <= GPU_TOLERANCE]).toEqual([p.name, true]);
          expect([p.name, error(got, onCpu) <= GPU_TOLERANCE]).toEqual([p.name, true]);
        }
      }
      if (process.env.MEASURE) console.log(backend, 'moving update: worst', worstUlps, 'ulps from the float32 formula');
    });

    test(`a kernel declaring no features still runs the step (base interface: the moving update in tf ops around it), ` +
        'with the same output and the float32 formula exactly', () => {
      for (const p of stepProblems.filter(adjacent)) {
        const {base, y, mean, variance} = gpu.get(p.name)!.step!;
        expect([p.name, base.kernels.filter(k => k.startsWith('TfjsBatchNorm_'))]).toEqual([p.name, ['TfjsBatchNorm_BatchNormTrain']]);
        expect([p.name, base.kernels.filter(k => k === 'Multiply').length]).toEqual([p.name, 4]);
        expect([p.name, base.y]).toEqual([p.name, y]);
        // tfjs's Multiply and Add kernels round each product and the sum: the formula bit for bit.
        expect([p.name, Array.from(refMovingUpdateFloat32(p.movingMean, mean, STEP_MOMENTUM)),
          Array.from(refMovingUpdateFloat32(p.movingVariance, variance, STEP_MOMENTUM))]).toEqual([p.name, base.movingMean, base.movingVariance]);
      }
    });

    test(`the step with [channels, 1] gamma, beta and moving statistics (flexibleParams): outputs, gradients and inference ` +
        `within ${GPU_TOLERANCE} of float64, gradients and updates in the inputs' shape`, () => {
      for (const p of stepProblems) {
        const step = gpu.get(p.name)!.step!;
        const want = trainAnswers(p, false);
        const channels = want.mean.length;
        const checks: Array<[string, number[], ArrayLike<number>]> = [['y', step.y, want.y], ['mean', step.mean, want.mean],
          ['variance', step.variance, want.variance], ['dx', step.dx, want.dx], ['inferY', step.inferY, answers(p).inferY],
          ...(p.gamma == null ? [] : [['dgamma', step.dgamma, want.dgamma] as [string, number[], Float64Array]]),
          ...(p.beta == null ? [] : [['dbeta', step.dbeta, want.dbeta] as [string, number[], Float64Array]])];
        for (const [name, got, w] of checks) expect([p.name, name, error(got, w) <= GPU_TOLERANCE]).toEqual([p.name, name, true]);
        expect([p.name, step.shapes]).toEqual([p.name, {movingMean: [channels, 1], dgamma: p.gamma == null ? [] : [channels, 1]}]);
      }
    });

    // Masked training runs tf ops on every backend; measured worst 1.5e-6 (webgl) and 7.1e-7 (webgpu) against
    // float64 and against cpu alike: GPU_TOLERANCE leaves a margin of 6.5×.
    test(`masked training (a Keras mask): outputs, statistics and the gradients of x, gamma, beta match float64 and cpu within ${GPU_TOLERANCE}`, () => {
      expect(maskedProblems.length).toBeGreaterThanOrEqual(3);
      const worst = {float64: 0, cpu: 0};
      for (const p of maskedProblems) {
        const got = gpu.get(p.name)!.masked!;
        const onCpu = cpu.get(p.name)!.masked!;
        const want = trainAnswers(p, true);
        const outputs = (['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'] as const)
          .filter(o => !((p.gamma == null && o === 'dgamma') || (p.beta == null && o === 'dbeta')));
        for (const o of outputs) {
          const [vsFloat64, vsCpu] = [error(got[o], want[o]), error(got[o], onCpu[o])];
          worst.float64 = Math.max(worst.float64, vsFloat64);
          worst.cpu = Math.max(worst.cpu, vsCpu);
          expect([p.name, o, vsFloat64 <= GPU_TOLERANCE, vsCpu <= GPU_TOLERANCE]).toEqual([p.name, o, true, true]);
        }
      }
      if (process.env.MEASURE) console.log(backend, 'masked: worst vs float64', worst.float64, 'vs cpu', worst.cpu);
    });

    test('no tensor, texture or buffer outlives a training step, the layer\'s step, masked training and an inference (tf.memory before and after)', async () => {
      const p = all[0];
      const {before, after, holding} =
          await page.evaluate(([problem, b]) => (window.kernelLab as KernelLab).memory(problem, b), [p, backend] as const);
      expect(after).toEqual(before);
      expect(holding.numBytesInGPU).toBeGreaterThan(before.numBytesInGPU);  // the GPU byte counter counts here
    }, 60_000);
  });

  describe('half-float textures on webgl (WEBGL_FORCE_F16_TEXTURES)', () => {
    let page: Page;
    const results = new Map<string, HalfFloatResult>();
    const key = ([center, spread]: [number, number]) => `${center} ± ${spread}`;

    beforeAll(async () => {
      page = await openLab('f16');
      for (const range of [...HALF_RANGES, ...HALF_SATURATED]) {
        results.set(key(range), await page.evaluate(([shape, [center, spread]]) =>
          (window.kernelLab as KernelLab).halfFloat(shape, center, spread, 5), [HALF_SHAPE, range] as const));
      }
    }, 120_000);

    afterAll(async () => {
      await page?.close();
    });

    function reference(r: HalfFloatResult) {
      const problem = {shape: HALF_SHAPE, axes: [HALF_SHAPE.length - 1], x: r.x, epsilon: 1e-3};
      return {...refTrain(problem), dx: refTrainGrad(problem, r.dy).dx};
    }

    test('the textures are half floats (x comes back rounded to float16)', () => {
      const r = results.get(key([100, 1]))!;
      expect(r.halfFloat).toBe(true);
      // float16 spacing at 64–128 is 1/16: every stored value is a multiple of it.
      expect(r.x.every(v => Number.isInteger(v * 16))).toBe(true);
    });

    test.each(HALF_RANGES)(`inputs %d ± %d: y and dx within ${HALF_Y_TOLERANCE}, mean and variance within ${HALF_STATS_TOLERANCE} of float64, all finite`,
        (center, spread) => {
          const r = results.get(key([center, spread]))!;
          const want = reference(r);
          expect(maxRelativeError(r.ours.y, want.y)).toBeLessThanOrEqual(HALF_Y_TOLERANCE);
          expect(maxRelativeError(r.ours.dx, want.dx)).toBeLessThanOrEqual(HALF_Y_TOLERANCE);
          expect(maxRelativeError(r.ours.mean, want.mean)).toBeLessThanOrEqual(HALF_STATS_TOLERANCE);
          expect(maxRelativeError(r.ours.variance, want.variance)).toBeLessThanOrEqual(HALF_STATS_TOLERANCE);
          for (const values of [r.ours.y, r.ours.dx, r.ours.mean, r.ours.variance]) expect(values.every(Number.isFinite)).toBe(true);
        });

    test.each(HALF_SATURATED)(`inputs %d ± %d (variance beyond float16): the variance saturates at 65504, y and dx within ${HALF_Y_TOLERANCE}`,
        (center, spread) => {
          const r = results.get(key([center, spread]))!;
          const want = reference(r);
          expect(Math.min(...want.variance)).toBeGreaterThan(65504);
          expect(r.ours.variance).toEqual(r.ours.variance.map(() => 65504));
          expect(maxRelativeError(r.ours.y, want.y)).toBeLessThanOrEqual(HALF_Y_TOLERANCE);
          // The gradient kernel recomputes a saturated variance from x (programs.ts, gradientMerge).
          expect(maxRelativeError(r.ours.dx, want.dx)).toBeLessThanOrEqual(HALF_Y_TOLERANCE);
          for (const values of [r.ours.y, r.ours.dx, r.ours.mean]) expect(values.every(Number.isFinite)).toBe(true);
        });
  });

  describe('SIMD kernels on tfjs\'s multi-threaded wasm build (cross-origin-isolated page)', () => {
    let page: Page;
    let info: WasmInfo;
    const goldenCases = loadGoldenCases();
    const all = [...problems().filter(p => p.shape.reduce((a, b) => a * b, 1) <= 4096), ...goldenCases.map(goldenProblem)];
    const tolerances = new Map(goldenCases.map(c => [goldenProblem(c).name, goldenTolerance(c)]));
    const wasm = new Map<string, ProblemResult>();

    beforeAll(async () => {
      page = await openLab('wasm');
      info = await page.evaluate(() => (window.kernelLab as KernelLab).wasmInfo());
      for (const p of all) wasm.set(p.name, await run(page, p, 'wasm'));
    }, 120_000);

    afterAll(async () => {
      await page?.close();
    });

    test('the backend is the threaded build, and the SIMD loops run in its shared memory', () => {
      expect(info.threads).toBeGreaterThanOrEqual(1);
      expect({...info, threads: undefined}).toEqual({threads: undefined, sharedMemory: true, simdLoops: true, viewsInMemory: true});
    });

    test(`outputs, statistics and gradients match float64 within ${GPU_TOLERANCE} (golden cases: their own tolerances)`, () => {
      for (const p of all) {
        const r = wasm.get(p.name)!;
        expect(r.backend).toBe('wasm');
        const tolerance = tolerances.get(p.name) ?? GPU_TOLERANCE;
        const want = answers(p);
        const got = outputsOf(r);
        for (const o of outputsFor(p)) expect([p.name, o, error(got[o], want[o]) <= tolerance]).toEqual([p.name, o, true]);
      }
    });
  });
});
