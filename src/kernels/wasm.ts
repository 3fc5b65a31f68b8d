/**
 * The fused kernels on the `wasm` backend. They run in the backend's own WebAssembly heap: no
 * copies in or out, outputs allocated by the backend itself. The loops are the SIMD WebAssembly
 * ones of simd.ts where they load, else the JS loops over Float32Array views of the heap.
 */
import type {TensorInfo} from '@tensorflow/tfjs-core';
import {BatchNormInfer, BatchNormKernelConfig, BatchNormTrain, BatchNormTrainGrad} from '../kernel_names';
import {BufferAccess, FUSED_FEATURES, inferKernel, trainGradKernel, trainKernel} from './fused';
import {wasmLoops} from './simd';

/** The part of tfjs-backend-wasm's BackendWasm these kernels use (typed structurally, so no import). */
interface WasmBackend {
  /** The Emscripten module: its memory and malloc. */
  wasm: unknown;
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

const wasmAccess: BufferAccess = {
  run(backend: unknown, inputs, outputShapes, body) {
    const wasm = backend as unknown as WasmBackend;
    // Allocate first: an allocation may grow the heap and detach views taken before it.
    const outputs = outputShapes.map(shape => wasm.makeOutput(shape, 'float32'));
    body(inputs.map(t => (t == null ? null : wasm.typedArrayFromHeap(t))), outputs.map(t => wasm.typedArrayFromHeap(t)));
    return outputs;
  },
  loops(backend: unknown, channels) {
    return wasmLoops((backend as WasmBackend).wasm, channels);
  },
};

/** Kernel configs for the wasm backend. */
export const wasmKernels: BatchNormKernelConfig[] = [
  {kernelName: BatchNormTrain, backendName: 'wasm', kernelFunc: trainKernel(wasmAccess), features: FUSED_FEATURES},
  {kernelName: BatchNormTrainGrad, backendName: 'wasm', kernelFunc: trainGradKernel(wasmAccess), features: FUSED_FEATURES},
  {kernelName: BatchNormInfer, backendName: 'wasm', kernelFunc: inferKernel(wasmAccess), features: FUSED_FEATURES},
];
