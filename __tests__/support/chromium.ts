/**
 * Debian's Chromium, headless, driven by playwright-core: the one browser setup every browser test
 * uses. WebGL 2 and WebGPU both run on SwiftShader (software), so no GPU is needed. Without Chromium
 * the browser tests FAIL (they are not skipped): `.ci/run` installs it.
 */
import {existsSync} from 'fs';
import {Browser, chromium, Page} from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

const ARGS = [
  // Root in a container has no user namespace for Chromium's sandbox.
  '--no-sandbox',
  // WebGL through ANGLE on SwiftShader: the same software GPU on every machine, GPU or not.
  '--use-angle=swiftshader',
  // WebGPU on SwiftShader's Vulkan (Dawn); without these Chromium offers no adapter in headless mode.
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  // playwright-core already passes --headless, --enable-unsafe-swiftshader and the switches that
  // quiet background networking (--disable-background-networking, --disable-component-update,
  // --disable-sync, --no-first-run); QUIC is not among them.
  '--disable-quic',
];

/** Launches Chromium, or throws saying how to install it. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}; the browser tests need it ` +
      '(Debian: apt-get install chromium; bash .ci/run installs it when missing)');
  }
  return chromium.launch({executablePath: CHROMIUM, args: ARGS});
}

/** What a page reported: its result or error global, and every uncaught error. */
export interface PageOutcome<T> {
  result: T | undefined;
  error: string | undefined;
  pageErrors: string[];
}

/**
 * Opens `url` and waits until the page sets window[resultKey] or window[errorKey], or throws an
 * uncaught error; returns what it reported (the caller decides what is a failure).
 */
export async function openPage<T>(page: Page, url: string, resultKey: string, errorKey: string, timeoutMs: number): Promise<PageOutcome<T>> {
  const pageErrors: string[] = [];
  const uncaught = new Promise<void>(resolve => page.on('pageerror', e => {
    pageErrors.push(e.message);
    resolve();
  }));
  await page.goto(url);
  const reported = page.waitForFunction(([r, e]) => {
    const w = window as unknown as Record<string, unknown>;
    return w[r] != null || w[e] != null;
  }, [resultKey, errorKey], {timeout: timeoutMs});
  try {
    await Promise.race([reported, uncaught]);
  } catch (e) {
    // Say how far the page got (pages that report progress show it in #status).
    const status = await page.evaluate(() => document.getElementById('status')?.textContent ?? '').catch(() => '');
    throw new Error(`${url}: ${(e as Error).message}${status ? `; the page's status: ${status}` : ''}`);
  }
  const {result, error} = await page.evaluate(([r, e]) => {
    const w = window as unknown as Record<string, unknown>;
    return {result: w[r] as T | undefined, error: w[e] == null ? undefined : String(w[e])};
  }, [resultKey, errorKey]);
  return {result, error, pageErrors};
}

/** openPage, for pages that must succeed: throws with the page's errors unless it reported a result. */
export async function pageResult<T>(page: Page, url: string, resultKey: string, errorKey: string, timeoutMs: number): Promise<T> {
  const {result, error, pageErrors} = await openPage<T>(page, url, resultKey, errorKey, timeoutMs);
  if (error != null || result == null) throw new Error(`${url} failed: ${error}; page errors: ${pageErrors.join('; ')}`);
  return result;
}
