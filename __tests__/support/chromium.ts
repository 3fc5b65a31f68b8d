/**
 * Headless Chromium for the browser suites and the browser benchmark: bundles a page's script with
 * esbuild, serves it from 127.0.0.1 with the headers that make a page cross-origin isolated
 * (COOP/COEP: SharedArrayBuffer, hence tfjs's multi-threaded wasm build), and launches Debian's
 * Chromium with WebGL 2 and WebGPU on SwiftShader, so no GPU is needed.
 */
import {build} from 'esbuild';
import {existsSync} from 'fs';
import {readFile} from 'fs/promises';
import {createServer, Server} from 'http';
import type {AddressInfo} from 'net';
import {extname, join, normalize, sep} from 'path';
import {Browser, chromium} from 'playwright-core';

/** Debian's Chromium. */
export const CHROMIUM = '/usr/bin/chromium';

/** Launch switches: software WebGL 2 and WebGPU (SwiftShader), as on a machine without a GPU. */
export const CHROMIUM_ARGS = [
  // Root in a container has no user namespace for Chromium's sandbox.
  '--no-sandbox',
  '--use-angle=swiftshader',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--disable-quic',
];

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

/** Bundles a page script (TypeScript, with tfjs and this package's src) into one browser script. */
export async function bundlePage(entry: string, outfile: string): Promise<void> {
  await build({entryPoints: [entry], outfile, bundle: true, format: 'iife', platform: 'browser', target: 'es2020',
    sourcemap: true, logLevel: 'error'});
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

/** Launches headless Chromium; fails (never skips) when it is not installed. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}; the browser suites need it ` +
      '(Debian: apt-get install chromium; bash .ci/run installs it when missing)');
  }
  return chromium.launch({executablePath: CHROMIUM, args: CHROMIUM_ARGS});
}

/** Where tfjs-backend-wasm keeps its .wasm files (served to pages under /wasm/). */
export const WASM_DIR = join(__dirname, '..', '..', 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
