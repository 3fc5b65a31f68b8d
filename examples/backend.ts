/** Backend choice shared by the Node examples: tfjs-node where it loads, otherwise wasm (or as asked). */
import * as tf from '@tensorflow/tfjs';
import {registerWasmConv2dFilterGrad} from './wasm_conv2d_grad';

export const BACKENDS = ['cpu', 'wasm', 'tensorflow'] as const;
export type BackendName = typeof BACKENDS[number];

/** Checks a --backend value. */
export function parseBackend(value: string | undefined): BackendName | undefined {
  if (value != null && !BACKENDS.includes(value as BackendName)) {
    throw new Error(`--backend is '${value}', expected one of ${BACKENDS.join(', ')}`);
  }
  return value as BackendName | undefined;
}

/** Loads @tensorflow/tfjs-node if it is installed; returns why not otherwise. */
function loadTfjsNode(): string | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

/** Switches to the requested backend, or to the best one that loads: tensorflow, else wasm. */
export async function selectBackend(requested: BackendName | undefined): Promise<string> {
  if (requested == null || requested === 'tensorflow') {
    const problem = loadTfjsNode();
    if (problem == null) requested = 'tensorflow';
    else if (requested === 'tensorflow') throw new Error(`--backend tensorflow: @tensorflow/tfjs-node does not load (${problem})`);
    else requested = 'wasm';
  }
  if (requested === 'wasm') {
    await import('@tensorflow/tfjs-backend-wasm');
    registerWasmConv2dFilterGrad();
  }
  if (!(await tf.setBackend(requested))) throw new Error(`backend ${requested} failed to initialize`);
  await tf.ready();
  return requested;
}
