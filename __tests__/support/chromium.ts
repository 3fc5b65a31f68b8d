/**
 * Debian's Chromium, headless, driven by playwright-core: the one browser setup every browser test
 * uses. WebGL 2 and WebGPU both run on SwiftShader (software), so no GPU is needed. Without Chromium
 * the browser tests FAIL (they are not skipped): `.ci/run` installs it. Also: bundling a page's
 * script with esbuild, and serving it cross-origin isolated (COOP/COEP: SharedArrayBuffer, hence
 * tfjs's multi-threaded wasm build) for the kernel suite and the browser benchmark.
 */
import {build} from 'esbuild';
import {existsSync} from 'fs';
import {readFile} from 'fs/promises';
import {createServer, Server} from 'http';
import type {AddressInfo} from 'net';
import {extname, join, normalize, sep} from 'path';
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

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** A running server: its base URL and a function that stops it. */
export interface PageServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Bundles a page script (TypeScript, with tfjs and this package's src) into one browser script;
 * `external` modules stay unbundled (Node-only ones a page imports but never calls).
 */
export async function bundlePage(entry: string, outfile: string, external: string[] = []): Promise<void> {
  await build({entryPoints: [entry], outfile, bundle: true, format: 'iife', platform: 'browser', target: 'es2020',
    sourcemap: true, logLevel: 'error', external});
}

/** The page itself: nothing but the bundled script, which does the work and exposes its API on window. */
function pageHtml(script: string): string {
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">` +
    `<title>tfjs-batchnorm</title></head><body><script src="${script}"></script></body></html>\n`;
}

const ISOLATION_HEADERS = {'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp'};

/**
 * Serves a page running `script` at / (and /index.html), and `routes` (URL path prefix →
 * directory) on 127.0.0.1, cross-origin isolated: only files of the kinds above and only inside the
 * routed directories.
 */
export async function servePages(script: string, routes: Record<string, string>): Promise<PageServer> {
  const server: Server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    if (path === '/' || path === '/index.html') {
      response.writeHead(200, {'content-type': CONTENT_TYPES['.html'], 'cache-control': 'no-store', ...ISOLATION_HEADERS})
          .end(pageHtml(script));
      return;
    }
    const prefix = Object.keys(routes).filter(p => path.startsWith(p)).sort((a, b) => b.length - a.length)[0];
    const dir = prefix == null ? undefined : routes[prefix];
    const file = dir == null ? '' : normalize(join(dir, path.slice(prefix.length)));
    const type = CONTENT_TYPES[extname(file)];
    if (dir == null || !file.startsWith(normalize(dir) + sep) || type == null) {
      response.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      response.writeHead(200, {'content-type': type, 'cache-control': 'no-store', ...ISOLATION_HEADERS}).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const {port} = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close(e => (e ? reject(e) : resolve()));
    }),
  };
}

/** Where tfjs-backend-wasm keeps its .wasm files (served to pages under /wasm/). */
export const WASM_DIR = join(__dirname, '..', '..', 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
