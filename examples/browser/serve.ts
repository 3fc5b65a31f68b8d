/**
 * Builds the browser demo (esbuild bundles main.ts with the package source and @tensorflow/tfjs into
 * dist/demo.js) and serves this directory over http on 127.0.0.1. Used by `npm run demo` and by
 * __tests__/browser.test.ts. IndexedDB and WebGL need a real origin, hence a server, not file://.
 *
 *   npm run demo            # then open the printed URL
 *   PORT=9000 npm run demo
 */
import {build} from 'esbuild';
import {readFile} from 'fs/promises';
import {createServer, Server} from 'http';
import {AddressInfo} from 'net';
import {extname, join, normalize, sep} from 'path';

const DEMO_DIR = __dirname;
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Bundles main.ts into dist/demo.js; returns the bundle's path. */
export async function buildDemo(): Promise<string> {
  const outfile = join(DEMO_DIR, 'dist', 'demo.js');
  await build({
    entryPoints: [join(DEMO_DIR, 'main.ts')],
    outfile,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    sourcemap: true,
    logLevel: 'error',
  });
  return outfile;
}

/** A running demo server: its page URL and a function that stops it. */
export interface DemoServer {
  url: string;
  close(): Promise<void>;
}

/** Serves the demo directory on 127.0.0.1 (port 0: any free port). Call buildDemo first. */
export function serveDemo(port = 0): Promise<DemoServer> {
  return serveDirectory(DEMO_DIR, port);
}

/** Serves the files of `root` (html, js, source maps) on 127.0.0.1; `/` is index.html. Port 0: any free port. */
export async function serveDirectory(root: string, port = 0): Promise<DemoServer> {
  const server: Server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    // Only files inside the served directory, and only the kinds the pages need.
    const type = CONTENT_TYPES[extname(file)];
    if (!file.startsWith(root + sep) || type == null) {
      response.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      response.writeHead(200, {'content-type': type, 'cache-control': 'no-store'}).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const {port: actualPort} = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${actualPort}/`,
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close(e => (e ? reject(e) : resolve()));
    }),
  };
}

if (require.main === module) {
  (async () => {
    const bundle = await buildDemo();
    const {url} = await serveDemo(Number(process.env.PORT ?? 8080));
    console.log(`built ${bundle}\nserving the demo at ${url} (Ctrl-C to stop)`);
  })().catch((e: Error) => {
    console.error(`error: ${e.message}`);
    process.exitCode = 1;
  });
}
