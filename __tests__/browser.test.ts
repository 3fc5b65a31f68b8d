/**
 * The browser demo (examples/browser) in a real browser, once per GPU backend: Debian's Chromium,
 * headless, driven by playwright-core, with WebGL 2 and WebGPU both on SwiftShader (software, so it
 * runs on machines without a GPU). The page does the work and puts what it measured on
 * window.demoResult; the checks are made here, from the raw numbers. Without Chromium this FAILS
 * (it is not skipped): `.ci/run` installs it. Whichever path the layer takes on a backend (tf-ops
 * composite or a fused GPU kernel), these checks hold.
 */
import {mkdirSync, statSync} from 'fs';
import {join} from 'path';
import type {Browser} from 'playwright-core';
import type {DemoResult, GpuBackend, LayerValues} from '../examples/browser/main';
import {buildDemo, DemoServer, serveDemo} from '../examples/browser/serve';
import {launchChromium, pageResult} from './support/chromium';

/** GPU vs cpu: absolute, on values of order 1 (float32 on both sides; measured ≤ 4.8e-7 on SwiftShader, webgl and webgpu). */
const GPU_TOLERANCE = 1e-4;
/**
 * WebGPU on SwiftShader compiles every shader on the CPU: the webgpu page takes ~40 s alone and
 * over 120 s while the other suites load the machine's 2 cores.
 */
const PAGE_TIMEOUT_MS = 360_000;

function maxAbsDifference(a: number[], b: number[]): number {
  expect(a).toHaveLength(b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
}

let browser: Browser | undefined;
let server: DemoServer | undefined;

beforeAll(async () => {
  await buildDemo();
  server = await serveDemo();
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe.each(['webgl', 'webgpu'] as GpuBackend[])('browser demo in Chromium (%s)', backend => {
  const screenshot = join(__dirname, 'artifacts', `browser-${backend}.png`);
  let demo: DemoResult;

  beforeAll(async () => {
    if (browser == null || server == null) throw new Error('Chromium or the demo server did not start');
    const page = await browser.newPage();
    demo = await pageResult<DemoResult>(page, `${server.url}?backend=${backend}`, 'demoResult', 'demoError', PAGE_TIMEOUT_MS);
    mkdirSync(join(__dirname, 'artifacts'), {recursive: true});
    await page.screenshot({path: screenshot, fullPage: true});
    await page.close();
  }, PAGE_TIMEOUT_MS + 30_000);

  test(`the ${backend} backend ran, on SwiftShader`, () => {
    expect(demo.requested).toBe(backend);
    expect(demo.backend).toBe(backend);
    expect(demo.renderer).toMatch(/swiftshader/i);
    if (backend === 'webgl') expect(demo.webglVersion).toBe(2);
    for (const layout of Object.values(demo.vsCpu)) {
      expect(layout.gpu?.backend).toBe(backend);
      expect(layout.cpu.backend).toBe('cpu');
    }
  });

  test.each(['channelsLast', 'channelsFirst'] as const)(
    `%s: the layer's outputs, moving statistics and input gradient on ${backend} match cpu within ${GPU_TOLERANCE}`, layout => {
      const {gpu, cpu} = demo.vsCpu[layout];
      if (gpu == null) throw new Error(`the page computed nothing on ${backend}`);
      for (const key of Object.keys(cpu.values) as Array<keyof LayerValues>) {
        const values = cpu.values[key];
        expect(values.length).toBeGreaterThan(0);
        expect(values.every(Number.isFinite)).toBe(true);
        const difference = maxAbsDifference(gpu.values[key], values);
        // The key and the difference show in a failure message.
        expect({key, difference, within: difference <= GPU_TOLERANCE}).toEqual({key, difference, within: true});
      }
      // Training and inference mode differ here (batch vs moving statistics), so both were exercised.
      expect(maxAbsDifference(cpu.values.training, cpu.values.inference)).toBeGreaterThan(0.1);
    });

  test('the IndexedDB round trip keeps the weights bit for bit and the predictions', () => {
    expect(demo.modelUrl).toBe(`indexeddb://tfjs-batchnorm-demo-${backend}`);
    expect(demo.loadedLayerClasses.filter(c => c.endsWith('BatchNorm'))).toHaveLength(2);
    expect(demo.weightsIdentical).toBe(true);
    expect(demo.cpuPredictionsIdentical).toBe(true);
    // Bit for bit on the GPU backend too: the loaded model runs the same kernels on the same weights.
    expect(demo.predictionsAfterLoad).toHaveLength(demo.predictionsBeforeSave.length);
    expect(maxAbsDifference(demo.predictionsAfterLoad, demo.predictionsBeforeSave)).toBe(0);
    expect(demo.idbMatch).toBe(true);
  });

  test('the training loss fell', () => {
    expect(demo.losses.length).toBeGreaterThan(1);
    expect(demo.losses.every(Number.isFinite)).toBe(true);
    expect(demo.losses[demo.losses.length - 1]).toBeLessThan(0.5 * demo.losses[0]);
  });

  test('a screenshot was saved', () => {
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);
  });
});
