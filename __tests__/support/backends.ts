/**
 * The backends every numeric suite runs on. cpu and wasm always run here; `tensorflow` runs
 * wherever @tensorflow/tfjs-node loads and is reported as skipped, with the reason, where it
 * does not (it cannot install on machines without access to its libtensorflow download).
 */
import * as tf from '@tensorflow/tfjs';
import {MathBackendCPU} from '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import {BASE_INTERFACE_FLAG, FORCE_COMPOSITE_FLAG} from '../../src/ops/dispatch';

export type BackendName = 'cpu' | 'wasm' | 'tensorflow';

interface Availability {
  available: boolean;
  reason: string;
}

function tfjsNodeAvailability(): Availability {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
    return {available: true, reason: ''};
  } catch (e) {
    const message = (e as Error).message.split('\n')[0];
    return {available: false, reason: `@tensorflow/tfjs-node does not load here (${message})`};
  }
}

/** Whether each backend can run in this process, and why not when it cannot. */
export function backendAvailability(name: BackendName): Availability {
  return name === 'tensorflow' ? tfjsNodeAvailability() : {available: true, reason: ''};
}

/** The backends numeric suites run on, in order. */
export const ALL_BACKENDS: BackendName[] = ['cpu', 'wasm', 'tensorflow'];

/**
 * Declares `body` once per backend inside a describe block that switches to that backend first.
 * An unavailable backend's block is declared with describe.skip, so jest reports its tests as
 * skipped (never passed) and the block title carries the reason.
 */
export function describeEachBackend(title: string, body: (backend: BackendName) => void,
                                    backends: BackendName[] = ALL_BACKENDS): void {
  for (const backend of backends) {
    const {available, reason} = backendAvailability(backend);
    if (!available) {
      describe.skip(`${title} [${backend}: skipped, ${reason}]`, () => body(backend));
      continue;
    }
    describe(`${title} [${backend}]`, () => {
      beforeAll(async () => {
        if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialize`);
        await tf.ready();
      });
      body(backend);
    });
  }
}

/**
 * The ways the op can run on a backend: this package's fused kernels with every feature they
 * declare ('fused'), the same kernels used through the base interface only, the rest composed
 * around them in tf ops ('base': what a GPU backend's kernels without the extensions get), or the
 * tf-ops paths ('composite').
 */
export type PathName = 'fused' | 'base' | 'composite';

/** The flags that select a path. */
const PATH_FLAGS: Record<PathName, {[flag: string]: boolean}> = {
  fused: {[FORCE_COMPOSITE_FLAG]: false, [BASE_INTERFACE_FLAG]: false},
  base: {[FORCE_COMPOSITE_FLAG]: false, [BASE_INTERFACE_FLAG]: true},
  composite: {[FORCE_COMPOSITE_FLAG]: true, [BASE_INTERFACE_FLAG]: false},
};

/**
 * Declares `body` once per backend and path. 'composite' sets TFJS_BATCHNORM_FORCE_COMPOSITE, so
 * cpu and wasm take the paths webgl, webgpu and tensorflow take (tf ops, and the backend's own
 * FusedBatchNorm for inference where it broadcasts correctly): that is how those paths' math is
 * checked on every machine. 'base' sets TFJS_BATCHNORM_BASE_INTERFACE. tensorflow has no fused
 * kernels, so it runs 'composite' only.
 */
export function describeEachPath(title: string, body: (backend: BackendName, path: PathName) => void,
                                 backends: BackendName[] = ALL_BACKENDS, paths: PathName[] = ['fused', 'composite']): void {
  describeEachBackend(title, backend => {
    for (const path of backend === 'tensorflow' ? ['composite' as const] : paths) {
      describe(path, () => {
        beforeAll(() => { for (const [flag, value] of Object.entries(PATH_FLAGS[path])) tf.env().set(flag, value); });
        afterAll(() => { for (const flag of Object.keys(PATH_FLAGS[path])) tf.env().set(flag, false); });
        body(backend, path);
      });
    }
  }, backends);
}

/** Runs f with the boolean tf.env() flag set to `value`, restoring it afterwards (f is synchronous). */
export function withFlag<T>(flag: string, value: boolean, f: () => T): T {
  const previous = tf.env().getBool(flag);
  tf.env().set(flag, value);
  try {
    return f();
  } finally {
    tf.env().set(flag, previous);
  }
}

/** Runs f with TFJS_BATCHNORM_FORCE_COMPOSITE set to `forced`, restoring it afterwards. */
export function withForcedComposite<T>(forced: boolean, f: () => T): T {
  return withFlag(FORCE_COMPOSITE_FLAG, forced, f);
}

/** A kernel config for a test backend: cpuCopy registers it under the backend's name. */
export type KernelForCopy = Omit<tf.KernelConfig, 'backendName'>;

/**
 * Registers, once, the test backend `name`: a copy of cpu with every kernel cpu has, then `kernels`
 * registered for it in place of cpu's under the same names (a backend that registers its own kernels
 * under this package's names), and the kernels named in `without` unregistered. Returns `name`.
 */
export function cpuCopy(name: string, kernels: KernelForCopy[] = [], without: string[] = []): string {
  if (tf.findBackend(name) != null) return name;
  tf.registerBackend(name, () => new MathBackendCPU());
  tf.copyRegisteredKernels('cpu', name);
  for (const kernelName of [...kernels.map(k => k.kernelName), ...without]) tf.unregisterKernel(kernelName, name);
  for (const config of kernels) tf.registerKernel({...config, backendName: name});
  return name;
}

/** Switches back to cpu and removes the test backends `names` that are registered (cpuCopy's undo). */
export async function removeCpuCopies(...names: string[]): Promise<void> {
  await tf.setBackend('cpu');
  for (const name of names) if (tf.findBackend(name) != null) tf.removeBackend(name);
}
