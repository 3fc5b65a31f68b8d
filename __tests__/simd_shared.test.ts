/**
 * The shared-memory variant of the SIMD module (built from simd.wat by scripts/build_simd.ts for
 * tfjs's multi-threaded wasm build), in Node: over a shared WebAssembly.Memory laid out like the
 * threaded build's (exposed as `wasmMemory`, no exported memory), the SIMD loops load (not the JS
 * fallback) and compute what the JS loops compute. The browser suite runs it inside tfjs's real
 * threaded build (__tests__/browser_kernels.test.ts).
 * Tolerance: 1e-12 relative on float64 sums (the loops differ only in summation order) and exact
 * equality of float32 elementwise outputs (same float64 multiply-add, rounded once).
 */
import {channelShift, jsLoops, Loops, oneBlock} from '../src/kernels/loops';
import {simdLoopsAvailable, wasmLoops} from '../src/kernels/simd';
import {SIMD_SHARED_WASM_BASE64, SIMD_WASM_BASE64} from '../src/kernels/simd_binary';
import {readFileSync} from 'fs';
import {join} from 'path';
import {sharedVariant} from '../scripts/build_simd';
import {maxRelativeError} from './support/golden';

/** A stand-in for the threaded Emscripten module: a shared memory and a bump allocator in it. */
function threadedHeap(pages: number) {
  const memory = new WebAssembly.Memory({initial: pages, maximum: 65536, shared: true});
  let next = 1024;
  return {
    memory,
    heap: {
      wasmMemory: memory,
      _malloc: (bytes: number) => { const at = next; next += Math.ceil(bytes / 16) * 16; return at; },
      _free: () => {},
    },
    floats(count: number, fill: (i: number) => number): Float32Array {
      const at = next;
      next += Math.ceil((count * 4) / 16) * 16;
      const view = new Float32Array(memory.buffer, at, count);
      for (let i = 0; i < count; i++) view[i] = fill(i);
      return view;
    },
  };
}

describe('SIMD loops on a shared memory (threaded wasm build)', () => {
  test('the shared variant is a different module, made from the same simd.wat', () => {
    expect(SIMD_SHARED_WASM_BASE64).not.toBe(SIMD_WASM_BASE64);
    // Same functions: the two binaries differ only in the memory import's limits and shared flag.
    expect(Math.abs(SIMD_SHARED_WASM_BASE64.length - SIMD_WASM_BASE64.length)).toBeLessThan(16);
  });

  test('build_simd rewrites the one memory import of simd.wat, and refuses text without exactly one', () => {
    const wat = readFileSync(join(__dirname, '..', 'src', 'kernels', 'simd.wat'), 'utf8');
    const shared = sharedVariant(wat);
    expect(shared).toContain('(import "env" "memory" (memory 1 65536 shared))');
    expect(shared.replace('(memory 1 65536 shared)', '(memory 1)')).toBe(wat);
    expect(() => sharedVariant('(module)')).toThrow(/expected exactly one memory import.*found 0/);
  });

  test.each([
    [{outer: 37, channels: 7, inner: 1}],  // channels-last, a tail of 3 channels
    [{outer: 5, channels: 6, inner: 27}],  // runs of 27 values
  ])('layout %j: the SIMD loops load and equal the JS loops', layout => {
    const {memory, heap, floats} = threadedHeap(4);
    expect(memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    const loops = wasmLoops(heap, layout.channels);
    expect(simdLoopsAvailable(heap)).toBe(true);
    expect(loops).not.toBe(jsLoops);
    const size = layout.outer * layout.channels * layout.inner;
    const x = floats(size, i => 1e3 + Math.sin(i * 1.7) * 3);
    const dy = floats(size, i => Math.cos(i * 0.9));
    const simdY = floats(size, () => 0);
    const jsY = floats(size, () => 0);

    const blocks = oneBlock(layout);
    const shift = channelShift(x, layout);
    const sums = (l: Loops) => {
      const out = Array.from({length: 5}, () => new Float64Array(layout.channels));
      l.momentSums(x, blocks, shift, out[0], out[1]);
      l.gradientSums(dy, x, blocks, shift, out[2], out[3], out[4]);
      return out;
    };
    const simdSums = sums(loops);
    const jsSums = sums(jsLoops);
    // Sums of values near 0 (x − shift): compare relative to their scale, the count of terms.
    for (let k = 0; k < 5; k++) expect(maxRelativeError(simdSums[k].map(v => v / size), jsSums[k].map(v => v / size))).toBeLessThanOrEqual(1e-12);
    expect(simdSums[1].every(v => v > 0)).toBe(true);
    const scale = Float64Array.from({length: layout.channels}, (_, c) => 0.5 + c);
    const offset = Float64Array.from({length: layout.channels}, (_, c) => -c);
    loops.affine(x, simdY, blocks, scale, offset);
    jsLoops.affine(x, jsY, blocks, scale, offset);
    expect(Array.from(simdY)).toEqual(Array.from(jsY));
    loops.gradientApply(dy, x, simdY, blocks, scale, offset, scale);
    jsLoops.gradientApply(dy, x, jsY, blocks, scale, offset, scale);
    expect(Array.from(simdY)).toEqual(Array.from(jsY));
  });
});
