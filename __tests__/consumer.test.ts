/**
 * The package as users get it. `npm pack` (which builds dist/), then the tarball installed by npm
 * into scratch projects outside the repository, next to tfjs as a user installs it:
 *
 *  - current: @tensorflow/tfjs at the version this repository develops with. A CommonJS and an
 *    ES-module Node program, TypeScript `strict` under moduleResolution node16 (ESM and CJS) and
 *    bundler, an esbuild browser bundle (one tfjs-core, one tfjs-layers, the ES build, no Node-only
 *    code, no warning) that trains the stock layer and ours on webgl in Chromium with an IndexedDB
 *    round trip, the script-tag build after tfjs's own tf.min.js, and a second tfjs-core copy.
 *  - lowest: tfjs-core, tfjs-layers and tfjs-backend-cpu at the lowest version of the peer range;
 *    the same Node programs. And npm's resolution next to @tensorflow/tfjs at that version.
 *
 * npm works from its cache where it can (--prefer-offline): `npm ci` of this repository already
 * fetched the current tfjs; the lowest version is fetched once per machine.
 */
import {execFile} from 'child_process';
import {build, Metafile} from 'esbuild';
import {copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'fs';
import {tmpdir} from 'os';
import {dirname, join} from 'path';
import type {Browser} from 'playwright-core';
import {promisify} from 'util';
import type {ConsumerResult} from './consumer/browser_app';
import {serveDirectory, DemoServer} from '../examples/browser/serve';
import {launchChromium, openPage, pageResult} from './support/chromium';
import {refTrain} from './support/reference';

const run = promisify(execFile);
const ROOT = join(__dirname, '..');
const APP_FILES = join(__dirname, 'consumer');
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};
/** The tfjs this repository develops and tests with. */
const CURRENT_TFJS = PACKAGE.devDependencies['@tensorflow/tfjs'];
/** The lowest version of the peer range, which must be the same for tfjs-core and tfjs-layers. */
const LOWEST_TFJS = lowestOf(PACKAGE.peerDependencies['@tensorflow/tfjs-core']);
const NPM_TIMEOUT_MS = 300_000;
const PAGE_TIMEOUT_MS = 240_000;
/** webgl (float32 on SwiftShader) vs the float64 reference, on O(1) values: measured ~1e-7. */
const WEBGL_TOLERANCE = 1e-4;

function lowestOf(range: string): string {
  const match = /^>=(\d+\.\d+\.\d+) <\d+$/.exec(range);
  if (match == null) throw new Error(`peer range '${range}' is not of the form '>=X.Y.Z <N' this test installs the lowest of`);
  return match[1];
}

async function npm(cwd: string, args: string[]): Promise<string> {
  try {
    const {stdout} = await run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
        {cwd, timeout: NPM_TIMEOUT_MS, maxBuffer: 64 << 20});
    return stdout;
  } catch (e) {
    const err = e as Error & {stdout?: string, stderr?: string};
    throw new Error(`npm ${args.join(' ')} in ${cwd} failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

/** Runs `node file` in a scratch project; returns stdout (throws with the output on a non-zero exit). */
async function node(cwd: string, args: string[]): Promise<string> {
  try {
    return (await run(process.execPath, args, {cwd, timeout: 120_000})).stdout;
  } catch (e) {
    const err = e as Error & {stdout?: string, stderr?: string};
    throw new Error(`node ${args.join(' ')} failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

/** A scratch project with these packages installed (and the consumer programs in app/). */
async function scratchProject(root: string, name: string, packages: string[]): Promise<string> {
  const dir = join(root, name);
  mkdirSync(join(dir, 'app'), {recursive: true});
  writeFileSync(join(dir, 'package.json'), JSON.stringify({name: `consumer-${name}`, version: '1.0.0', private: true}));
  await npm(dir, ['install', ...packages]);
  for (const file of readdirSync(APP_FILES)) copyFileSync(join(APP_FILES, file), join(dir, 'app', file));
  return dir;
}

/** The measurements line a consumer program printed. */
function measurements(stdout: string): {tfjsCore: string, opMaxError: number, roundTripMaxDifference: number, loadedClasses: string[]} {
  const line = stdout.split('\n').find(l => l.startsWith('{'));
  if (line == null) throw new Error(`no measurements in:\n${stdout}`);
  return JSON.parse(line);
}

/**
 * The files whose code is in the bundle. (metafile.inputs also lists files esbuild read and then
 * dropped as unused, which is exactly what tree shaking is about.)
 */
function bundled(metafile: Metafile): string[] {
  return Object.values(metafile.outputs).flatMap(o => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([f]) => f));
}

/** The distinct installed copies (node_modules directories) of a package in a bundle. */
function copiesOf(metafile: Metafile, packageName: string): string[] {
  const marker = `node_modules/${packageName}/`;
  return [...new Set(bundled(metafile).filter(i => i.includes(marker)).map(i => i.slice(0, i.indexOf(marker) + marker.length)))];
}

/** The files of this package in a bundle, relative to its dist/. */
function ourInputs(metafile: Metafile): string[] {
  const marker = 'node_modules/tfjs-batchnorm/dist/';
  return bundled(metafile).filter(i => i.includes(marker)).map(i => i.slice(i.indexOf(marker) + marker.length));
}

let scratch: string;
let tarball: string;
let packedFiles: string[];
let current: string;
let lowest: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'tfjs-batchnorm-consumer-'));
  // The build (what the prepack script runs), then the tarball exactly as `npm publish` would make it.
  await npm(ROOT, ['run', 'build']);
  const packed = JSON.parse(await npm(ROOT, ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch])) as Array<{filename: string, files: Array<{path: string}>}>;
  tarball = join(scratch, packed[0].filename);
  packedFiles = packed[0].files.map(f => f.path);
  current = await scratchProject(scratch, 'current', [tarball, `@tensorflow/tfjs@${CURRENT_TFJS}`]);
  lowest = await scratchProject(scratch, 'lowest',
      [tarball, ...['tfjs-core', 'tfjs-layers', 'tfjs-backend-cpu'].map(p => `@tensorflow/${p}@${LOWEST_TFJS}`)]);
}, 900_000);

afterAll(() => {
  if (scratch != null) rmSync(scratch, {recursive: true, force: true});
});

describe('the packed tarball', () => {
  test('holds only what users need: dist/, README, LICENSE, package.json', () => {
    expect(packedFiles).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'dist/tfjs-batchnorm.min.js',
      'dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/esm/node.js', 'dist/esm/op.js']));
    const others = packedFiles.filter(f => !f.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE'].includes(f));
    expect(others).toEqual([]);
    expect(packedFiles.filter(f => /\.tsbuildinfo$|\.test\.|__tests__|\.ts$/.test(f) && !f.endsWith('.d.ts'))).toEqual([]);
  });

  test('every source map carries its sources (src/ is not published)', () => {
    const maps = packedFiles.filter(f => f.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(10);
    for (const map of maps) {
      const {sources, sourcesContent} = JSON.parse(readFileSync(join(current, 'node_modules', 'tfjs-batchnorm', map), 'utf8')) as
          {sources: string[], sourcesContent?: Array<string | null>};
      expect({map, count: sourcesContent?.filter(s => typeof s === 'string' && s.length > 0).length}).toEqual({map, count: sources.length});
    }
  });
});

/** The CommonJS and ES-module programs in a scratch project (read when the tests run: set up by beforeAll). */
function testNodePrograms(project: () => string, tfjsVersion: string): void {
  test.each(['cjs.cjs', 'esm.mjs'])('%s: every entry loads; op within 1e-5 of float64, fit, file:// round trip', async program => {
    const stdout = await node(project(), [join('app', program)]);
    expect(stdout).toContain(`${program.split('.')[0]}: ok`);
    const m = measurements(stdout);
    expect(m.tfjsCore).toBe(tfjsVersion);
    expect(m.opMaxError).toBeLessThanOrEqual(1e-5);
    expect(m.roundTripMaxDifference).toBe(0);
  });
}

describe(`Node, next to @tensorflow/tfjs ${CURRENT_TFJS}`, () => {
  testNodePrograms(() => current, CURRENT_TFJS);

  test('a second tfjs-core copy loaded first makes the import fail, naming the cause and the fix', async () => {
    // The repository's own tfjs-core: the same version, another directory, so another module instance.
    const otherCopy = dirname(require.resolve('@tensorflow/tfjs-core/package.json'));
    const stdout = await node(current, [join('app', 'two_copies.cjs'), otherCopy]);
    expect(stdout).toContain('tfjs-batchnorm: two copies of @tensorflow/tfjs-core are loaded');
    expect(stdout).toContain('npm ls @tensorflow/tfjs-core');
  });
});

describe(`Node, on the lowest supported tfjs (${LOWEST_TFJS})`, () => {
  testNodePrograms(() => lowest, LOWEST_TFJS);

  test(`npm install next to @tensorflow/tfjs@${LOWEST_TFJS} keeps the user's single tfjs-core and tfjs-layers`, async () => {
    const dir = join(scratch, 'resolution');
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({name: 'resolution', version: '1.0.0', private: true,
      dependencies: {'@tensorflow/tfjs': LOWEST_TFJS, 'tfjs-batchnorm': `file:${tarball}`}}));
    await npm(dir, ['install', '--package-lock-only', '--ignore-scripts']);
    const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as {packages: Record<string, {version?: string}>};
    const copies = Object.entries(lock.packages).filter(([path]) => /@tensorflow\/tfjs-(core|layers)$/.test(path))
        .map(([path, {version}]) => `${path}@${version}`).sort();
    expect(copies).toEqual([`node_modules/@tensorflow/tfjs-core@${LOWEST_TFJS}`, `node_modules/@tensorflow/tfjs-layers@${LOWEST_TFJS}`]);
  });
});

describe('TypeScript strict', () => {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const compile = (options: Record<string, unknown>, files: string[]) => {
    writeFileSync(join(current, 'app', 'tsconfig.json'), JSON.stringify({
      compilerOptions: {strict: true, noEmit: true, target: 'es2020', lib: ['es2020', 'dom'], types: [], skipLibCheck: true, ...options},
      files,
    }));
    return node(current, [tsc, '-p', join('app', 'tsconfig.json')]);
  };

  test('moduleResolution node16, as an ES module and as CommonJS', async () => {
    copyFileSync(join(current, 'app', 'types.ts'), join(current, 'app', 'types_esm.mts'));
    copyFileSync(join(current, 'app', 'types.ts'), join(current, 'app', 'types_cjs.cts'));
    await expect(compile({module: 'node16', moduleResolution: 'node16'}, ['types_esm.mts', 'types_cjs.cts'])).resolves.toBe('');
  });

  test('moduleResolution node10 (typesVersions maps the subpaths)', async () => {
    // As under bundler: the plain 'types' field is the browser entry's; fileHandler comes from tfjs-batchnorm/node.
    copyFileSync(join(current, 'app', 'types_bundler.ts'), join(current, 'app', 'types_node10.ts'));
    await expect(compile({module: 'commonjs', moduleResolution: 'node10'}, ['types_node10.ts'])).resolves.toBe('');
  });

  test('moduleResolution bundler', async () => {
    await expect(compile({module: 'esnext', moduleResolution: 'bundler'}, ['types_bundler.ts', 'browser_app.ts'])).resolves.toBe('');
  });
});

describe('bundled with esbuild for the browser', () => {
  const bundle = async (entry: string, outfile: string) => {
    const result = await build({
      entryPoints: [join(current, 'app', entry)], outfile: join(current, 'app', outfile), absWorkingDir: current,
      bundle: true, format: 'iife', platform: 'browser', target: 'es2020', minify: true, metafile: true, logLevel: 'silent',
    });
    expect(result.warnings.map(w => w.text)).toEqual([]);
    return result.metafile;
  };

  test('the app: one tfjs-core and one tfjs-layers (the ES builds @tensorflow/tfjs uses), no Node-only code', async () => {
    const metafile = await bundle('browser_app.ts', 'app.js');
    expect(copiesOf(metafile, '@tensorflow/tfjs-core')).toEqual(['node_modules/@tensorflow/tfjs-core/']);
    expect(copiesOf(metafile, '@tensorflow/tfjs-layers')).toEqual(['node_modules/@tensorflow/tfjs-layers/']);
    const inputs = bundled(metafile);
    expect(inputs.filter(i => /tf-core\.node\.js|tf-layers\.node\.js/.test(i))).toEqual([]);
    const ours = ourInputs(metafile);
    expect(ours).toEqual(expect.arrayContaining(['esm/register.js', 'esm/kernels/cpu.js', 'esm/layers/batch_norm.js']));
    expect(ours.filter(f => !f.startsWith('esm/') || f.includes('file_handler') || f === 'esm/node.js')).toEqual([]);
  });

  test("only batchNormInfer from 'tfjs-batchnorm/op': neither the layer nor the io code nor tfjs-layers", async () => {
    writeFileSync(join(current, 'app', 'op_only.ts'), [
      "import * as tf from '@tensorflow/tfjs-core';",
      "import '@tensorflow/tfjs-backend-cpu';",
      "import {batchNormInfer} from 'tfjs-batchnorm/op';",
      'batchNormInfer(tf.ones([2, 2]), tf.zeros([2]), tf.ones([2]), null, null).print();',
    ].join('\n'));
    const metafile = await bundle('op_only.ts', 'op_only.js');
    const ours = ourInputs(metafile);
    expect(ours).toEqual(expect.arrayContaining(['esm/op.js', 'esm/ops/batch_norm_infer.js', 'esm/kernels/cpu.js']));
    expect(ours.filter(f => /layers\/|io\//.test(f))).toEqual([]);
    expect(copiesOf(metafile, '@tensorflow/tfjs-layers')).toEqual([]);
  });

  test("only batchNormInfer from 'tfjs-batchnorm': no io code (the layer comes along: it registers its class)", async () => {
    writeFileSync(join(current, 'app', 'main_op_only.ts'), [
      "import * as tf from '@tensorflow/tfjs';",
      "import {batchNormInfer} from 'tfjs-batchnorm';",
      'batchNormInfer(tf.ones([2, 2]), tf.zeros([2]), tf.ones([2]), null, null).print();',
    ].join('\n'));
    const ours = ourInputs(await bundle('main_op_only.ts', 'main_op_only.js'));
    expect(ours.filter(f => /io\//.test(f))).toEqual([]);
    expect(ours).toContain('esm/layers/batch_norm.js');
  });
});

/** A fenced code block of the README. */
interface ReadmeBlock {
  lang: string;
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The reason given by a `<!-- readme: not run (reason) -->` line right above it, if any. */
  notRun?: string;
}

function readmeBlocks(): ReadmeBlock[] {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (open == null) continue;
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l));
    if (end < 0) throw new Error(`README.md:${i + 1}: unclosed code block`);
    const marker = /^<!-- readme: not run \((.+)\) -->$/.exec(lines[i - 1] ?? '');
    blocks.push({lang: open[1], code: lines.slice(i + 1, end).join('\n'), line: i + 1, notRun: marker?.[1]});
    i = end;
  }
  return blocks;
}

describe('README code blocks, verbatim, against the installed package', () => {
  const blocks = readmeBlocks();
  const tsBlocks = blocks.filter(b => b.lang === 'ts' && b.notRun == null);
  const blockDir = (b: ReadmeBlock) => join(current, 'readme', `line-${b.line}`);

  beforeAll(() => {
    for (const b of tsBlocks) {
      mkdirSync(blockDir(b), {recursive: true});
      writeFileSync(join(blockDir(b), 'block.mts'), `${b.code}\n`);
    }
  });

  test('every block says what it is; blocks that are not run are marked, with a reason, and few', () => {
    expect(blocks.filter(b => !['ts', 'sh', 'text', 'html'].includes(b.lang)).map(b => `line ${b.line}: '${b.lang}'`)).toEqual([]);
    // Only the HTML page (the consumer test loads the same scripts in Chromium).
    expect(blocks.filter(b => b.notRun != null).map(b => b.lang)).toEqual(['html']);
    expect(blocks.filter(b => b.lang === 'html' && b.notRun == null)).toEqual([]);
    expect(tsBlocks.length).toBeGreaterThanOrEqual(6);
  });

  test('the ts blocks type-check under strict (moduleResolution node16)', async () => {
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    writeFileSync(join(current, 'readme', 'tsconfig.json'), JSON.stringify({
      compilerOptions: {strict: true, noEmit: true, module: 'node16', moduleResolution: 'node16', target: 'es2022',
        lib: ['es2022', 'dom'], types: [], skipLibCheck: true},
      include: ['line-*/block.mts'],
    }));
    await expect(node(current, [tsc, '-p', join('readme', 'tsconfig.json')])).resolves.toBe('');
  });

  test.each(blocks.filter(b => b.lang === 'ts' && b.notRun == null).map(b => [b.line, b] as [number, ReadmeBlock]))(
    'the ts block at line %i runs', async (_, b) => {
      await node(blockDir(b), [join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'block.mts']);
    });

  test('the sh blocks name commands that exist here (npm scripts, files, packages)', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {scripts: Record<string, string>}).scripts;
    const known = new Set(['tfjs-batchnorm', ...Object.keys(PACKAGE.devDependencies), ...Object.keys(PACKAGE.peerDependencies),
      '@tensorflow/tfjs-node', 'chromium']);
    const problems: string[] = [];
    for (const b of blocks.filter(x => x.lang === 'sh')) {
      for (const command of b.code.split('\n').map(l => l.replace(/#.*$/, '').trim()).filter(Boolean).flatMap(l => l.split('&&').map(c => c.trim()))) {
        const [tool, sub, ...rest] = command.split(/\s+/);
        const ok = tool === 'npm' && sub === 'ci' ? true
          : tool === 'npm' && ['test', 'start'].includes(sub) ? scripts[sub] != null
          : tool === 'npm' && sub === 'run' ? scripts[rest[0]] != null
          : tool === 'npm' && sub === 'install' ? rest.every(p => known.has(p))
          : tool === 'bash' || tool === 'python3' ? existsSync(join(ROOT, sub))
          : false;
        if (!ok) problems.push(`README.md:${b.line}: ${command}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('in Chromium', () => {
  let browser: Browser;
  let server: DemoServer;

  beforeAll(async () => {
    // The app bundle is built by the esbuild test above when it runs first; build it here too, so
    // this block also runs on its own (jest -t).
    await build({entryPoints: [join(current, 'app', 'browser_app.ts')], outfile: join(current, 'app', 'app.js'),
      absWorkingDir: current, bundle: true, format: 'iife', platform: 'browser', target: 'es2020', logLevel: 'silent'});
    server = await serveDirectory(current);
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  test('the bundled app trains the stock layer and ours on webgl, each through an IndexedDB round trip', async () => {
    const page = await browser.newPage();
    const r = await pageResult<ConsumerResult>(page, `${server.url}app/app.html`, 'consumerResult', 'consumerError', PAGE_TIMEOUT_MS);
    expect(r.backend).toBe('webgl');
    expect(r.webglVersion).toBe(2);
    expect(r.registeredClassIsExported).toBe(true);
    for (const [name, run] of [['stock', r.stock], ['ours', r.ours]] as const) {
      expect({name, finite: run.losses.every(Number.isFinite)}).toEqual({name, finite: true});
      // Separable data, adam(0.05), 12 epochs: both runs reach a small fraction of the first loss (measured ~0.1x).
      expect({name, fell: run.losses[run.losses.length - 1] < 0.5 * run.losses[0]}).toEqual({name, fell: true});
      expect(run.weightsIdentical).toBe(true);
      // Inference after loading runs the same kernels on the same weights: the same bits.
      expect(run.roundTripMaxDifference).toBe(0);
    }
    expect(r.stock.loadedClasses[1]).toBe('BatchNormalization');
    expect(r.ours.loadedClasses[1]).toBe('TfjsBatchNorm>BatchNorm');
    await page.close();
  }, PAGE_TIMEOUT_MS + 30_000);

  test('the script-tag build after tf.min.js: tf.batchnorm, the op on cpu and webgl, fit, IndexedDB round trip', async () => {
    const page = await browser.newPage();
    const r = await pageResult<{
      x: number[], backends: Record<string, {y: number[], mean: number[], variance: number[]}>, losses: number[],
      loadedClasses: string[], before: number[], after: number[], exports: string[], backend: string, kernels: string[],
    }>(page, `${server.url}app/script_tag.html`, 'scriptResult', 'scriptError', PAGE_TIMEOUT_MS);
    expect(r.exports).toEqual(expect.arrayContaining(['BatchNorm', 'batchNormTrain', 'batchNormInfer', 'batchNormalization', 'stockFormat']));
    expect(r.exports).not.toContain('fileHandler');
    // The fused cpu kernels registered (a bundle that dropped the registering module would fall back silently).
    expect(r.kernels).toHaveLength(3);
    const want = refTrain({shape: [4, 3], axes: [1], x: r.x.map(Math.fround), epsilon: 1e-3});
    for (const backend of ['cpu', 'webgl']) {
      const got = r.backends[backend];
      for (const [key, values] of [['y', want.y], ['mean', want.mean], ['variance', want.variance]] as const) {
        const error = Math.max(...got[key].map((v, i) => Math.abs(v - values[i])));
        expect({backend, key, withinTolerance: error <= WEBGL_TOLERANCE}).toEqual({backend, key, withinTolerance: true});
      }
    }
    expect(r.backend).toBe('webgl');
    expect(r.losses[r.losses.length - 1]).toBeLessThan(r.losses[0]);
    expect(r.loadedClasses[1]).toBe('TfjsBatchNorm>BatchNorm');
    expect(r.after).toEqual(r.before);
    await page.close();
  }, PAGE_TIMEOUT_MS + 30_000);

  test('the script-tag build without tf.min.js before it fails saying to load tfjs first', async () => {
    const page = await browser.newPage();
    const {error, pageErrors} = await openPage(page, `${server.url}app/script_tag_without_tf.html`, 'scriptResult', 'scriptError', 30_000);
    expect(`${error} ${pageErrors.join(' ')}`).toContain('load @tensorflow/tfjs (tf.min.js) in a script tag before this one');
    await page.close();
  });
});
