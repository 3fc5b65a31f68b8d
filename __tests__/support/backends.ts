/**
 * The backends every numeric suite runs on. cpu and wasm always run here; `tensorflow` runs
 * wherever @tensorflow/tfjs-node loads and is reported as skipped, with the reason, where it
 * does not (it cannot install on machines without access to its libtensorflow download).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

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
