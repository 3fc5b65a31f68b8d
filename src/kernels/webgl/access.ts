/**
 * How the GPU kernels run on tfjs-backend-webgl: through the backend's own `runWebGLProgram`
 * (shader cache, texture management, uniform upload of tiny inputs), with the backend typed
 * structurally so this package never imports tfjs-backend-webgl at run time.
 */
import {env, TensorInfo, util} from '@tensorflow/tfjs-core';
import type {GpuAccess} from '../gpu_kernels';
import {glslProgram, GlslProgram} from './programs';

/** The part of tfjs-backend-webgl's MathBackendWebGL these kernels use. */
interface WebGLBackend {
  texData: {get(dataId: object): {isPacked?: boolean}};
  runWebGLProgram(program: GlslProgram, inputs: TensorInfo[], outputDtype: 'float32'): TensorInfo;
  unpackTensor(input: TensorInfo): TensorInfo;
  disposeIntermediateTensorInfo(tensorInfo: TensorInfo): void;
}

function flat(t: TensorInfo): TensorInfo {
  return {dataId: t.dataId, shape: [util.sizeFromShape(t.shape)], dtype: t.dtype};
}

/** The kernels' access to the webgl backend. */
export const webglAccess: GpuAccess = {
  // Fragments are cheap but each merge fragment walks all lanes of its channel in order.
  limits: {threads: 16384, maxLanes: 256, minSteps: 16},
  input(backend, t) {
    const gl = backend as WebGLBackend;
    // Packed textures (WEBGL_PACK, the output of most tfjs webgl ops) hold 2×2 blocks; the passes
    // read unpacked ones. Unpack once here: runWebGLProgram would otherwise do it for every pass.
    if (gl.texData.get(t.dataId).isPacked !== true) return {view: flat(t), release: () => {}};
    const unpacked = gl.unpackTensor(t);
    return {view: flat(unpacked), release: () => gl.disposeIntermediateTensorInfo(unpacked)};
  },
  run(backend, pass, inputs) {
    // tfjs-backend-webgl's own switch between float32 and half-float textures.
    const halfFloat = !env().getBool('WEBGL_RENDER_FLOAT32_ENABLED');
    return (backend as WebGLBackend).runWebGLProgram(glslProgram(pass, halfFloat), inputs, 'float32');
  },
  dispose(backend, t) {
    (backend as WebGLBackend).disposeIntermediateTensorInfo(t);
  },
};
