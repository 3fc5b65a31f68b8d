/**
 * The fused kernels on the `wasm` backend. They run as JS loops over Float32Array views of the
 * backend's own WebAssembly heap: no copies in or out, outputs allocated by the backend itself.
 */
import type {KernelConfig, TensorInfo} from '@tensorflow/tfjs-core';
import {BatchNormInfer, BatchNormTrain, BatchNormTrainGrad} from '../kernel_names';
import {BufferAccess, inferKernel, trainGradKernel, trainKernel} from './fused';

/** The part of tfjs-backend-wasm's BackendWasm these kernels use (typed structurally, so no import). */
interface WasmBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

const wasmAccess: BufferAccess = {
  run(backend: unknown, inputs, outputShapes, body) {
    const wasm = backend as unknown as WasmBackend;
    // Allocate first: an allocation may grow the heap and detach views taken before it.
    const outputs = outputShapes.map(shape => wasm.makeOutput(shape, 'float32'));
    body(inputs.map(t => wasm.typedArrayFromHeap(t)), outputs.map(t => wasm.typedArrayFromHeap(t)));
    return outputs;
  },
};

/** Kernel configs for the wasm backend. */
export const wasmKernels: KernelConfig[] = [
  {kernelName: BatchNormTrain, backendName: 'wasm', kernelFunc: trainKernel(wasmAccess)},
  {kernelName: BatchNormTrainGrad, backendName: 'wasm', kernelFunc: trainGradKernel(wasmAccess)},
  {kernelName: BatchNormInfer, backendName: 'wasm', kernelFunc: inferKernel(wasmAccess)},
];
