/**
 * Detects a second copy of @tensorflow/tfjs-core in the page or process, at import.
 *
 * Two copies happen when the package manager nests a different tfjs-core version under
 * @tensorflow/tfjs than the one this package resolves, or when a bundler mixes tfjs's CommonJS and
 * ES builds. tfjs then half works: the copies share one engine and kernel registry (kept on the
 * global object), but each has its own Tensor class and its own tf.serialization registry, so
 * models fail later with unrelated-looking errors (`Unknown layer: TfjsBatchNorm>BatchNorm`
 * although this package was imported, a layer "must be an instance of class Layer", a gradient
 * reading `clone` of null). Failing at import, naming the cause and the fix, is kinder.
 *
 * The signal: tfjs-core caches the Tensor class of the first copy that loads on the global object
 * (`_tfGlobals`, see tfjs-core's getGlobalTensorClass); a copy loaded later finds a class that is not
 * its own. When this package itself was already imported in the same global (a test runner's module
 * reset, e.g. jest.resetModules or isolateModules, reloads everything), the mismatch is expected
 * and not reported.
 */
import {env, Tensor, version_core} from '@tensorflow/tfjs-core';

/** Key of this package's own marker on the global object: set once any copy of it has loaded. */
const LOADED_MARKER = '_tfjsBatchNormLoaded';

/** The global object as tfjs-core keeps it, with the two fields this check reads or writes. */
interface TfjsGlobal {
  _tfGlobals?: Map<string, unknown>;
  [LOADED_MARKER]?: boolean;
}

/** The error for a second tfjs-core copy: what happened and how to fix it. */
export function twoCopiesError(): Error {
  return new Error(
      'tfjs-batchnorm: two copies of @tensorflow/tfjs-core are loaded. Another copy was loaded first ' +
      `(typically the one @tensorflow/tfjs uses), and tfjs-batchnorm resolved a different one (version ${version_core}). ` +
      'The copies do not share their Tensor classes or their layer registries, so models would fail later. Fix: make every ' +
      'package use one copy of @tensorflow/tfjs-core (and of @tensorflow/tfjs-layers): run `npm ls @tensorflow/tfjs-core`, ' +
      'install matching versions (e.g. @tensorflow/tfjs and @tensorflow/tfjs-core at the same version) and `npm dedupe`; ' +
      'in a bundler, do not alias tfjs to a prebuilt file (use the package names).');
}

/** Throws twoCopiesError() when a different tfjs-core copy was loaded in this global before ours. */
export function checkSingleTfjsCore(): void {
  const global = env().global as TfjsGlobal | undefined;
  if (global == null) return;
  const firstTensorClass = global._tfGlobals?.get('Tensor');
  const reloaded = global[LOADED_MARKER] === true;
  global[LOADED_MARKER] = true;
  if (firstTensorClass != null && firstTensorClass !== Tensor && !reloaded) throw twoCopiesError();
}
