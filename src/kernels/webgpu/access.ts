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
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

function flat(t: TensorInfo): TensorInfo {
  return {dataId: t.dataId, shape: [util.sizeFromShape(t.shape)], dtype: t.dtype};
}

/** The kernels' access to the webgpu backend. */
export const webgpuAccess: GpuAccess = {
  // About 64K lanes fill a large GPU with memory requests; a merge workgroup of 64 threads then
  // merges at most 16 lanes per thread.
  limits: {threads: 65536, maxLanes: 1024, minSteps: 16},
  begin(backend, fullSize) {
    const gpu = backend as WebGPUBackend;
    return {
      // Storage buffers are flat already: a view of another shape is the same buffer.
      views: fullSize.map(flat),
      run(pass, inputs) {
        const {program, uniforms} = wgslProgram(pass);
        return gpu.runWebGPUProgram(program, inputs, 'float32', uniforms);
      },
      vector: t => ({view: flat(t), allocated: false}),
      fill: (size, value) => gpu.makeTensorInfo([size], 'float32', new Float32Array(size).fill(value)),
      dispose: t => { gpu.disposeData(t.dataId); },
      release: () => {},
    };
  },
};
