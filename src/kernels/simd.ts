/**
 * The SIMD WebAssembly loops (simd.wat, compiled into simd_binary.ts) for the tfjs wasm backend.
 * The module imports the backend's own WebAssembly.Memory, so it reads x and dy and writes y and dx
 * where tfjs keeps them, with no copies. tfjs's multi-threaded build (the default in
 * cross-origin-isolated pages) has a shared memory, which only a module importing a shared memory
 * accepts: simd_binary.ts holds both variants, built from the one simd.wat. Where neither can run
 * (no WebAssembly SIMD, synchronous compilation refused), or when the TFJS_BATCHNORM_WASM_SIMD flag
 * is false, the plain JS loops run instead over the same memory.
 */
import {env} from '@tensorflow/tfjs-core';
import {Blocks, jsLoops, Loops} from './loops';
import {SIMD_SHARED_WASM_BASE64, SIMD_WASM_BASE64} from './simd_binary';

/** tf.env() flag: false runs the JS loops on the wasm backend instead of the SIMD ones. */
export const SIMD_FLAG = 'TFJS_BATCHNORM_WASM_SIMD';
env().registerFlag(SIMD_FLAG, () => true);

/** The part of the Emscripten module of tfjs-backend-wasm used here (typed structurally). */
interface EmscriptenModule {
  /** The exports; they include the memory in the single-threaded builds, which create it. */
  asm?: {memory?: unknown};
  /** The memory the multi-threaded build creates in JS (shared) and imports. */
  wasmMemory?: unknown;
  _malloc(bytes: number): number;
  _free(pointer: number): void;
}

/**
 * simd.wat's exports; every pointer is a byte offset into the backend's memory. Each runs over
 * `blocks` blocks of [outer, C, inner] values, block b with set b mod `sets` of the per-channel arrays.
 */
interface SimdExports {
  moments(x: number, blocks: number, sets: number, outer: number, C: number, inner: number, shift: number, sum: number, sumSq: number): void;
  affine(x: number, y: number, blocks: number, sets: number, outer: number, C: number, inner: number, scale: number, offset: number): void;
  gradientSums(dy: number, x: number, blocks: number, sets: number, outer: number, C: number, inner: number, shift: number,
               sumDy: number, sumDyXs: number, sumXs: number): void;
  gradientApply(dy: number, x: number, dx: number, blocks: number, sets: number, outer: number, C: number, inner: number,
                a: number, b: number, k: number): void;
}

/** Float64 arrays a loop needs in the heap at most (gradientSums: shift and three sums). */
const SCRATCH_ARRAYS = 4;

/** The block geometry as simd.wat's functions take it: blocks, sets, outer, C, inner. */
function geometry({layout, count, sets}: Blocks): [number, number, number, number, number] {
  return [count, sets, layout.outer, layout.channels, layout.inner];
}

/**
 * The SIMD loops bound to one backend's memory. Per-channel arrays are copied through a scratch
 * block in that memory (a few KB, kept for the backend's lifetime, grown on demand by `reserve`).
 */
class SimdLoops implements Loops {
  private scratch = 0;
  private capacity = 0;

  constructor(private readonly memory: WebAssembly.Memory, private readonly heap: EmscriptenModule,
              private readonly fns: SimdExports) {}

  /** Makes room for per-channel arrays of `values` values; must run before views of the heap are taken (malloc may grow it). */
  reserve(values: number): boolean {
    if (values <= this.capacity) return true;
    const pointer = this.heap._malloc(values * SCRATCH_ARRAYS * Float64Array.BYTES_PER_ELEMENT);
    if (pointer === 0) return false;
    if (this.scratch !== 0) this.heap._free(this.scratch);
    this.scratch = pointer;
    this.capacity = values;
    return true;
  }

  momentSums(x: Float32Array, blocks: Blocks, shift: Float64Array, sum: Float64Array, sumSq: Float64Array): void {
    if (!this.fits([x], shift.length)) return jsLoops.momentSums(x, blocks, shift, sum, sumSq);
    const [p, q, r] = this.put(shift, sum, sumSq);
    this.fns.moments(x.byteOffset, ...geometry(blocks), p, q, r);
    this.get([1, sum], [2, sumSq]);
  }

  affine(x: Float32Array, y: Float32Array, blocks: Blocks, scale: Float64Array, offset: Float64Array): void {
    if (!this.fits([x, y], scale.length)) return jsLoops.affine(x, y, blocks, scale, offset);
    const [p, q] = this.put(scale, offset);
    this.fns.affine(x.byteOffset, y.byteOffset, ...geometry(blocks), p, q);
  }

  gradientSums(dy: Float32Array, x: Float32Array, blocks: Blocks, shift: Float64Array,
               sumDy: Float64Array, sumDyXs: Float64Array, sumXs: Float64Array): void {
    if (!this.fits([dy, x], shift.length)) return jsLoops.gradientSums(dy, x, blocks, shift, sumDy, sumDyXs, sumXs);
    const [p, q, r, s] = this.put(shift, sumDy, sumDyXs, sumXs);
    this.fns.gradientSums(dy.byteOffset, x.byteOffset, ...geometry(blocks), p, q, r, s);
    this.get([1, sumDy], [2, sumDyXs], [3, sumXs]);
  }

  gradientApply(dy: Float32Array, x: Float32Array, dx: Float32Array, blocks: Blocks,
                a: Float64Array, b: Float64Array, k: Float64Array): void {
    if (!this.fits([dy, x, dx], a.length)) return jsLoops.gradientApply(dy, x, dx, blocks, a, b, k);
    const [p, q, r] = this.put(a, b, k);
    this.fns.gradientApply(dy.byteOffset, x.byteOffset, dx.byteOffset, ...geometry(blocks), p, q, r);
  }

  /** Whether the arrays live in this memory (its current buffer) and the scratch block holds `values` per array. */
  private fits(arrays: Float32Array[], values: number): boolean {
    const buffer = this.memory.buffer;
    return values <= this.capacity && arrays.every(a => a.buffer === buffer);
  }

  /** Copies per-channel arrays (of one length) into consecutive scratch slots; returns their addresses. */
  private put(...arrays: Float64Array[]): number[] {
    const n = arrays[0].length;
    const slots = new Float64Array(this.memory.buffer, this.scratch, arrays.length * n);
    arrays.forEach((a, i) => slots.set(a, i * n));
    return arrays.map((_, i) => this.scratch + i * n * Float64Array.BYTES_PER_ELEMENT);
  }

  /** Copies scratch slots back into per-channel arrays (of one length). */
  private get(...slotsAndArrays: Array<[number, Float64Array]>): void {
    for (const [slot, array] of slotsAndArrays) {
      const n = array.length;
      array.set(new Float64Array(this.memory.buffer, this.scratch + slot * n * Float64Array.BYTES_PER_ELEMENT, n));
    }
  }
}

/** Compiled modules, plain and shared-memory: undefined until tried, null where unavailable here. */
const compiled = new Map<boolean, WebAssembly.Module | null>();

function simdModule(shared: boolean): WebAssembly.Module | null {
  let module = compiled.get(shared);
  if (module === undefined) {
    try {
      const bytes = Uint8Array.from(atob(shared ? SIMD_SHARED_WASM_BASE64 : SIMD_WASM_BASE64), ch => ch.charCodeAt(0));
      // Synchronous: kernels are synchronous. The module is small enough (3 KB) for browsers to allow it.
      module = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    } catch {
      module = null;
    }
    compiled.set(shared, module);
  }
  return module;
}

/** The backend's memory: exported by the single-threaded builds, created in JS by the threaded one. */
function memoryOf(heap: EmscriptenModule): WebAssembly.Memory | null {
  const memory = heap.asm?.memory ?? heap.wasmMemory;
  return memory instanceof WebAssembly.Memory ? memory : null;
}

function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

const instances = new WeakMap<object, SimdLoops | null>();

function instanceFor(heap: EmscriptenModule): SimdLoops | null {
  let loops = instances.get(heap);
  if (loops === undefined) {
    loops = null;
    const memory = memoryOf(heap);
    const module = memory == null ? null : simdModule(isShared(memory));
    if (memory != null && module != null) {
      try {
        const instance = new WebAssembly.Instance(module, {env: {memory}});
        loops = new SimdLoops(memory, heap, instance.exports as unknown as SimdExports);
      } catch {
        // The memory does not match the module's import after all: keep the JS loops.
        loops = null;
      }
    }
    instances.set(heap, loops);
  }
  return loops;
}

/** Whether the SIMD loops can run on this wasm backend's Emscripten module (lets tests see a silent fallback). */
export function simdLoopsAvailable(heap: unknown): boolean {
  return instanceFor(heap as EmscriptenModule) != null;
}

/**
 * The loops for a wasm backend's Emscripten module and per-channel arrays of `values` values (sets
 * × channels): the SIMD loops when available and enabled, else the JS loops. Call before taking
 * heap views.
 */
export function wasmLoops(heap: unknown, values: number): Loops {
  if (!env().getBool(SIMD_FLAG)) return jsLoops;
  const simd = instanceFor(heap as EmscriptenModule);
  return simd != null && simd.reserve(values) ? simd : jsLoops;
}
