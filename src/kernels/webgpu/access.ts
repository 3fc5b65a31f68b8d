/**
 * How the GPU kernels run on tfjs-backend-webgpu: through the backend's own `runWebGPUProgram`
 * (pipeline cache, uniforms, command batching), with the backend typed structurally so this
 * package never imports tfjs-backend-webgpu at run time (it stays out of users' bundles).
 */
import {TensorInfo, util} from '@tensorflow/tfjs-core';
import type {GpuAccess} from '../gpu_kernels';
import {wgslProgram, WgslProgram, WgslUniform} from './programs';

/** The part of tfjs-backend-webgpu's WebGPUBackend these kernels use. */
interface WebGPUBackend {
  runWebGPUProgram(program: WgslProgram, inputs: TensorInfo[], outputDtype: 'float32',
                   programDefinedUniform?: WgslUniform[]): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** The kernels' access to the webgpu backend. */
export const webgpuAccess: GpuAccess = {
  // About 64K lanes fill a large GPU with memory requests; a merge workgroup of 64 threads then
  // merges at most 16 lanes per thread.
  limits: {threads: 65536, maxLanes: 1024, minSteps: 16},
  // Storage buffers are flat already: a view of another shape is the same buffer.
  input: (_backend, t) => ({view: {dataId: t.dataId, shape: [util.sizeFromShape(t.shape)], dtype: t.dtype}, release: () => {}}),
  run(backend, pass, inputs) {
    const {program, uniforms} = wgslProgram(pass);
    return (backend as WebGPUBackend).runWebGPUProgram(program, inputs, 'float32', uniforms);
  },
  dispose(backend, t) {
    (backend as WebGPUBackend).disposeData(t.dataId);
  },
};
