/**
 * The fused webgl and webgpu kernels (src/kernels/webgl, src/kernels/webgpu) and the SIMD kernels
 * on tfjs's multi-threaded wasm build, in headless Chromium (WebGL 2 and WebGPU on SwiftShader).
 * The page (__tests__/browser_kernels/page.ts) computes; this file checks every output, statistic
 * and gradient against the float64 reference and against the cpu backend, the kernels that ran,
 * memory before and after, half-float textures, and the threaded wasm build.
 * Without Chromium this FAILS (it is not skipped): `.ci/run` installs it.
 */
import {existsSync} from 'fs';
import {join} from 'path';
import type {Browser, Page} from 'playwright-core';
import type {KernelLab, ProblemResult} from './browser_kernels/page';
import {bundlePage, launchChromium, PageServer, servePages, WASM_DIR} from './support/chromium';
import {GOLDEN_PATH, loadGoldenCases} from './support/golden';
import {answers, BrowserProblem, fromJson, goldenProblem, makeProblem, ProblemAnswers, ProblemSpec, toJson} from './support/problems';

const LAB_DIR = join(__dirname, 'browser_kernels');
const BUNDLE_DIR = join(__dirname, 'artifacts', 'browser_kernels');

/**
 * Problems beyond the golden cases: several lanes per channel (the partial and merge passes), both
 * thread orders (channels-last and runs of inner > 2), a list of adjacent axes at rank 6, many
 * channels, a large offset, no gamma/beta, one value per channel, constant channels at 3e4, and
 * gradients arriving at the mean and variance outputs.
 */
const SPECS: ProblemSpec[] = [
  {name: 'nhwc, 512 values per channel', shape: [8, 8, 8, 6], axis: -1, offset: 3, spread: 2, statsGradients: true,
    gradients: 'tape', inferGradients: true},
  {name: 'nchw, 1024 values per channel', shape: [4, 5, 16, 16], axis: 1, offset: -1, spread: 3, statsGradients: true,
    gradients: 'tape', inferGradients: true},
  {name: 'runs of 2 (inner = 2)', shape: [32, 5, 2], axis: 1, offset: 0.5, statsGradients: true},
  {name: 'rank 6, axes [2, 3]', shape: [2, 3, 2, 4, 3, 5], axis: [2, 3], spread: 2, statsGradients: true},
  {name: 'dense, 300 channels', shape: [64, 300], axis: -1, offset: 1},
  {name: 'large offset 1e4 ± 0.5, 2048 values per channel', shape: [2048, 3], axis: -1, offset: 1e4, spread: 0.5, statsGradients: true},
  {name: '16384 values per channel', shape: [16384, 1], axis: -1, offset: 2, spread: 4},
  {name: 'no gamma, no beta', shape: [6, 4, 7], axis: -1, affine: false, statsGradients: true, gradients: 'tape', inferGradients: true},
  {name: 'one value per channel', shape: [1, 5], axis: -1, offset: 2},
  {name: 'constant channels at 3e4', shape: [16, 3], axis: -1, offset: 3e4, spread: 0},
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
 * Tolerances in |got − want|/(1 + |want|). Measured on SwiftShader (see the README): webgl and
 * webgpu 1.3e-5 worst (dx of the large-offset case; everything else ≤ 2e-6), against float64 and
 * against cpu alike. Set at 5e-5: a margin of about 4× over the worst, still 20× tighter than the
 * 1e-3 a large offset would cost with unshifted float32 sums.
 */
const GPU_TOLERANCE = 5e-5;

describe('fused kernels in Chromium', () => {
  let browser: Browser | undefined;
  let server: PageServer | undefined;

  beforeAll(async () => {
    await bundlePage(join(LAB_DIR, 'page.ts'), join(BUNDLE_DIR, 'lab.js'));
    server = await servePages({'/': LAB_DIR, '/dist/': BUNDLE_DIR, '/wasm/': WASM_DIR});
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
    const golden = existsSync(GOLDEN_PATH) ? loadGoldenCases().map(goldenProblem) : [];
    const gpu = new Map<string, ProblemResult>();
    const cpu = new Map<string, ProblemResult>();

    beforeAll(async () => {
      page = await openLab('');
      for (const p of [...all, ...golden]) {
        const start = Date.now();
        gpu.set(p.name, await run(page, p, backend));
        const middle = Date.now();
        cpu.set(p.name, await run(page, p, 'cpu'));
        if (process.env.MEASURE) console.log(`${backend} ${p.name}: ${middle - start} ms, cpu ${Date.now() - middle} ms`);
      }
    }, 180_000);

    afterAll(async () => {
      await page?.close();
    });

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

    (golden.length > 0 ? test : test.skip)(
      `golden cases (${existsSync(GOLDEN_PATH) ? GOLDEN_PATH : 'absent: skipped'}) within their own tolerances`, () => {
        for (const p of golden) {
          const want = answers(p);
          const got = outputsOf(gpu.get(p.name)!);
          const tolerance = /large_offset|tiny_spread/.test(p.name) ? 1e-3 : 1e-4;
          for (const o of outputsFor(p)) expect([p.name, o, error(got[o], want[o]) <= tolerance]).toEqual([p.name, o, true]);
        }
      });

    test('no tensor, texture or buffer outlives a training step and an inference (tf.memory before and after)', async () => {
      const p = all[0];
      const {before, after, holding} =
          await page.evaluate(([problem, b]) => (window.kernelLab as KernelLab).memory(problem, b), [p, backend] as const);
      expect(after).toEqual(before);
      expect(holding.numBytesInGPU).toBeGreaterThan(before.numBytesInGPU);  // the GPU byte counter counts here
    }, 60_000);
  });
});
