/**
 * `npm run build`: the published dist/, in three forms.
 *
 *   dist/esm/   ES modules + .d.ts (the `import` condition and the `module` field). Node's ESM loader
 *               needs file extensions in relative imports, so every relative specifier is rewritten
 *               on the syntax tree to the file it names (`./ops/validate` → `./ops/validate.js`),
 *               in the JS and in the declarations, and an unresolvable one fails the build.
 *   dist/cjs/   CommonJS + .d.ts (the `require` condition and `main`).
 *   dist/tfjs-batchnorm.min.js
 *               the script-tag build: one minified IIFE of the browser entry that reads tfjs from
 *               the global `tf` (load tf.min.js first) and puts the exports on `tf.batchnorm`.
 *
 * Each module directory gets a package.json with its "type" and "sideEffects" (bundlers read the
 * nearest package.json). Source maps carry the sources (`sourcesContent`), since src/ is not
 * published. Run with --check-only to type-check without writing.
 */
import {build as esbuild, Plugin} from 'esbuild';
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const ROOT = path.resolve(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
const SCRIPT_BUILD = path.join(DIST, 'tfjs-batchnorm.min.js');
/** The global the script-tag build reads tfjs from and writes its exports under. */
export const SCRIPT_GLOBAL = 'tf';
export const SCRIPT_NAMESPACE = 'batchnorm';

/**
 * Modules that register something with tfjs when evaluated (kernels, gradients, a flag, the layer
 * class, the file:// router). Everything else is side-effect free, so bundlers may drop what a
 * program does not use. package.json's "sideEffects" must list exactly these, in dist/esm, dist/cjs
 * and src/ (bundles of the sources, like the browser demo's, read it too), plus the script-tag
 * build: checkSideEffectList() below fails the build otherwise.
 */
export const SIDE_EFFECT_MODULES = ['index', 'node', 'op', 'kernels/simd', 'layers/batch_norm'];

/** The "sideEffects" list package.json must have. */
export function packageSideEffects(): string[] {
  return [...['esm', 'cjs'].flatMap(f => SIDE_EFFECT_MODULES.map(m => `./dist/${f}/${m}.js`)), './dist/tfjs-batchnorm.min.js',
    ...SIDE_EFFECT_MODULES.map(m => `./src/${m}.ts`)];
}

/** The specifier with the extension Node's ESM loader needs, or null when it names no file here. */
function resolveSpecifier(specifier: string, fromFile: string): string | null {
  if (specifier.startsWith('./') || specifier.startsWith('../')) {
    if (/\.(js|json)$/.test(specifier)) return specifier;
    const base = path.resolve(path.dirname(fromFile), specifier);
    if (existsSync(`${base}.ts`)) return `${specifier}.js`;
    if (existsSync(path.join(base, 'index.ts'))) return `${specifier}/index.js`;
    return null;
  }
  // A deep import into a package without an exports map (types such as
  // '@tensorflow/tfjs-layers/dist/initializers'): ESM resolution needs the file name too.
  const parts = specifier.split('/');
  const packageParts = specifier.startsWith('@') ? 2 : 1;
  if (parts.length > packageParts && !/\.[cm]?js$/.test(specifier)) {
    try {
      require.resolve(`${specifier}.js`, {paths: [ROOT]});
      return `${specifier}.js`;
    } catch {
      return specifier;
    }
  }
  return specifier;
}

/** A transformer (JS and declarations) that rewrites module specifiers with resolveSpecifier. */
const addExtensions: ts.TransformerFactory<ts.SourceFile> = context => {
  const f = context.factory;
  return root => {
    const fileName = root.fileName;
    const rewrite = (literal: ts.Expression): ts.StringLiteral | undefined => {
      if (!ts.isStringLiteral(literal)) return undefined;
      const resolved = resolveSpecifier(literal.text, fileName);
      if (resolved == null) throw new Error(`${path.relative(ROOT, fileName)}: cannot resolve '${literal.text}' to a source file`);
      return resolved === literal.text ? undefined : f.createStringLiteral(resolved);
    };
    const visit = (node: ts.Node): ts.Node => {
      if (ts.isImportDeclaration(node)) {
        const s = rewrite(node.moduleSpecifier);
        if (s) return f.updateImportDeclaration(node, node.modifiers, node.importClause, s, node.attributes);
      } else if (ts.isExportDeclaration(node) && node.moduleSpecifier != null) {
        const s = rewrite(node.moduleSpecifier);
        if (s) return f.updateExportDeclaration(node, node.modifiers, node.isTypeOnly, node.exportClause, s, node.attributes);
      } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
        const s = rewrite(node.argument.literal);
        if (s) {
          return f.updateImportTypeNode(node, f.createLiteralTypeNode(s), node.attributes, node.qualifier,
              node.typeArguments?.map(t => ts.visitNode(t, visit) as ts.TypeNode), node.isTypeOf);
        }
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments.length > 0) {
        const s = rewrite(node.arguments[0]);
        if (s) return f.updateCallExpression(node, node.expression, node.typeArguments, [s, ...node.arguments.slice(1)]);
      }
      return ts.visitEachChild(node, visit, context);
    };
    return ts.visitNode(root, visit) as ts.SourceFile;
  };
};

/** addExtensions for declaration emit, whose transformers also receive bundles (never produced here). */
const addExtensionsToDeclarations: ts.TransformerFactory<ts.SourceFile | ts.Bundle> = context => {
  const transform = addExtensions(context);
  return node => (ts.isSourceFile(node) ? transform(node) : node);
};

function formatDiagnostics(diagnostics: readonly ts.Diagnostic[]): string {
  return ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: f => f, getCurrentDirectory: () => ROOT, getNewLine: () => '\n',
  });
}

/** Compiles src/ (tsconfig.build.json) to dist/<format>; throws on any diagnostic. */
function compile(format: 'esm' | 'cjs', write: boolean): void {
  const configPath = path.join(ROOT, 'tsconfig.build.json');
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
    ...ts.sys, onUnRecoverableConfigFileDiagnostic: d => { throw new Error(formatDiagnostics([d])); },
  });
  if (parsed == null) throw new Error(`cannot read ${configPath}`);
  const outDir = path.join(DIST, format);
  const options: ts.CompilerOptions = {
    ...parsed.options,
    module: format === 'esm' ? ts.ModuleKind.ES2020 : ts.ModuleKind.CommonJS,
    outDir,
    declaration: true,
    declarationMap: false,
    sourceMap: true,
    inlineSources: true,
    noEmitOnError: true,
  };
  const program = ts.createProgram(parsed.fileNames, options);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  if (diagnostics.length > 0) throw new Error(formatDiagnostics(diagnostics));
  if (!write) return;
  const transformers: ts.CustomTransformers = format === 'esm' ? {after: [addExtensions], afterDeclarations: [addExtensionsToDeclarations]} : {};
  const result = program.emit(undefined, undefined, undefined, false, transformers);
  if (result.emitSkipped || result.diagnostics.length > 0) throw new Error(formatDiagnostics(result.diagnostics));
  writeFileSync(path.join(outDir, 'package.json'), `${JSON.stringify({
    type: format === 'esm' ? 'module' : 'commonjs',
    sideEffects: SIDE_EFFECT_MODULES.map(m => `./${m}.js`),
  }, null, 2)}\n`);
}

/**
 * Fails when package.json's sideEffects differs from packageSideEffects(), or names a file that does
 * not exist (a renamed module would silently lose its registration in every bundle).
 */
function checkSideEffectList(): void {
  const listed = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {sideEffects: unknown}).sideEffects;
  const expected = packageSideEffects();
  if (JSON.stringify(listed) !== JSON.stringify(expected)) {
    throw new Error(`package.json "sideEffects" must be ${JSON.stringify(expected)}`);
  }
  const missing = expected.filter(f => !existsSync(path.join(ROOT, f)));
  if (missing.length > 0) throw new Error(`package.json "sideEffects" lists files that do not exist: ${missing.join(', ')}`);
}

/**
 * esbuild plugin for the script-tag build: every @tensorflow/tfjs-* import becomes the global `tf`
 * (tf.min.js holds tfjs-core and tfjs-layers, and the separate tfjs bundles add to the same global),
 * so the page keeps exactly the one tfjs it loaded.
 */
const tfGlobal: Plugin = {
  name: 'tf-global',
  setup(build) {
    build.onResolve({filter: /^@tensorflow\/tfjs(-[a-z-]+)?$/}, args => ({path: args.path, namespace: 'tf-global'}));
    build.onResolve({filter: /^@tensorflow\/tfjs/}, args => ({
      errors: [{text: `the script-tag build cannot map the deep import '${args.path}' to the global ${SCRIPT_GLOBAL}`}],
    }));
    build.onLoad({filter: /.*/, namespace: 'tf-global'}, args => ({
      loader: 'js',
      contents: `if (typeof globalThis.${SCRIPT_GLOBAL} !== 'object' || typeof globalThis.${SCRIPT_GLOBAL}.registerKernel !== 'function') {
  throw new Error('tfjs-batchnorm.min.js: the global ${SCRIPT_GLOBAL} (${args.path}) is missing: load @tensorflow/tfjs (tf.min.js) in a script tag before this one');
}
module.exports = globalThis.${SCRIPT_GLOBAL};`,
    }));
  },
};

/** Bundles the browser entry into the script-tag build. */
async function scriptBuild(): Promise<void> {
  const result = await esbuild({
    entryPoints: [path.join(ROOT, 'src', 'index.ts')],
    outfile: SCRIPT_BUILD,
    bundle: true,
    format: 'iife',
    globalName: `${SCRIPT_GLOBAL}.${SCRIPT_NAMESPACE}`,
    platform: 'browser',
    target: 'es2017',
    minify: true,
    sourcemap: true,
    sourcesContent: true,
    legalComments: 'none',
    banner: {js: '/* tfjs-batchnorm, Apache-2.0. Load after @tensorflow/tfjs; exports on tf.batchnorm. */'},
    plugins: [tfGlobal],
    logLevel: 'warning',
    metafile: true,
  });
  const inputs = Object.keys(result.metafile.inputs);
  const unexpected = inputs.filter(i => /file_handler|node_modules/.test(i));
  if (unexpected.length > 0) throw new Error(`the script-tag build must not contain ${unexpected.join(', ')}`);
}

async function main(): Promise<void> {
  const checkOnly = process.argv.includes('--check-only');
  if (!checkOnly) rmSync(DIST, {recursive: true, force: true});
  for (const format of ['esm', 'cjs'] as const) compile(format, !checkOnly);
  if (checkOnly) return;
  mkdirSync(DIST, {recursive: true});
  await scriptBuild();
  checkSideEffectList();
  console.log(`built ${path.relative(ROOT, DIST)}/{esm,cjs} and ${path.relative(ROOT, SCRIPT_BUILD)}`);
}

if (require.main === module) {
  main().catch((e: Error) => {
    console.error(`build failed: ${e.message}`);
    process.exitCode = 1;
  });
}
