/**
 * The browser demo (examples/browser) in a real browser: Debian's Chromium, headless, driven by
 * playwright-core, with WebGL 2 through SwiftShader (software, so it runs on machines without a GPU).
 * The page does the work and puts what it measured on window.demoResult; the checks are made here,
 * from the raw numbers. Without Chromium this FAILS (it is not skipped): `.ci/run` installs it.
 */
import {existsSync, mkdirSync, statSync} from 'fs';
import {join} from 'path';
import {Browser, chromium} from 'playwright-core';
import type {DemoResult, LayerValues} from '../examples/browser/main';
import {buildDemo, DemoServer, serveDemo} from '../examples/browser/serve';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = join(__dirname, 'artifacts', 'browser.png');
/** webgl vs cpu: absolute, on values of order 1 (float32 on both; the webgl path is composite ops). */
const WEBGL_TOLERANCE = 1e-4;
const PAGE_TIMEOUT_MS = 60_000;

const CHROMIUM_ARGS = [
  // Root in a container has no user namespace for Chromium's sandbox.
  '--no-sandbox',
  // WebGL through ANGLE on SwiftShader: the same software GPU on every machine, GPU or not.
  '--use-angle=swiftshader',
  // playwright-core already passes --headless, --enable-unsafe-swiftshader and the switches that
  // quiet background networking (--disable-background-networking, --disable-component-update,
  // --disable-sync, --no-first-run); QUIC is not among them.
  '--disable-quic',
];

function maxAbsDifference(a: number[], b: number[]): number {
  expect(a).toHaveLength(b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
}

describe('browser demo in Chromium (webgl)', () => {
  let browser: Browser | undefined;
  let server: DemoServer | undefined;
  let demo: DemoResult;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is not installed at ${CHROMIUM}; the browser test needs it ` +
        '(Debian: apt-get install chromium; bash .ci/run installs it when missing)');
    }
    await buildDemo();
    server = await serveDemo();
    browser = await chromium.launch({executablePath: CHROMIUM, args: CHROMIUM_ARGS});
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', e => pageErrors.push(e.message));
    await page.goto(server.url);
    await page.waitForFunction(() => window.demoResult != null || window.demoError != null, undefined, {timeout: PAGE_TIMEOUT_MS});
    mkdirSync(join(__dirname, 'artifacts'), {recursive: true});
    await page.screenshot({path: SCREENSHOT, fullPage: true});
    const {result, error} = await page.evaluate(() => ({result: window.demoResult, error: window.demoError}));
    if (error != null || result == null) throw new Error(`the demo page failed: ${error}; page errors: ${pageErrors.join('; ')}`);
    demo = result;
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  test('the webgl backend ran, on WebGL 2', () => {
    expect(demo.backend).toBe('webgl');
    expect(demo.webglVersion).toBe(2);
    expect(demo.webglRenderer).not.toBe('');
    for (const layout of Object.values(demo.webglVsCpu)) {
      expect(layout.webgl?.backend).toBe('webgl');
      expect(layout.cpu.backend).toBe('cpu');
    }
  });

  test.each(['channelsLast', 'channelsFirst'] as const)(
    `%s: the layer's outputs, moving statistics and input gradient on webgl match cpu within ${WEBGL_TOLERANCE}`, layout => {
      const {webgl, cpu} = demo.webglVsCpu[layout];
      if (webgl == null) throw new Error('the page computed nothing on webgl');
      for (const key of Object.keys(cpu.values) as Array<keyof LayerValues>) {
        const values = cpu.values[key];
        expect(values.length).toBeGreaterThan(0);
        expect(values.every(Number.isFinite)).toBe(true);
        expect(maxAbsDifference(webgl.values[key], values)).toBeLessThanOrEqual(WEBGL_TOLERANCE);
      }
      // Training and inference mode differ here (batch vs moving statistics), so both were exercised.
      expect(maxAbsDifference(cpu.values.training, cpu.values.inference)).toBeGreaterThan(0.1);
    });

  test('the IndexedDB round trip keeps the weights bit for bit and the predictions', () => {
    expect(demo.modelUrl.startsWith('indexeddb://')).toBe(true);
    expect(demo.loadedLayerClasses.filter(c => c.endsWith('BatchNorm'))).toHaveLength(2);
    expect(demo.weightsIdentical).toBe(true);
    expect(demo.cpuPredictionsIdentical).toBe(true);
    // Bit for bit on webgl too: inference there is one FusedBatchNorm kernel (batch_norm_composite.ts).
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
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
  });
});
