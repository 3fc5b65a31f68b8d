/**
 * How the GPU kernels run on tfjs-backend-webgl: through the backend's own `runWebGLProgram`
 * (shader cache, texture management, uniform upload of tiny inputs), with the backend typed
 * structurally so this package never imports tfjs-backend-webgl at run time.
 */
import {env, TensorInfo, util} from '@tensorflow/tfjs-core';
import type {GpuAccess} from '../gpu_kernels';
import {glslProgram, GlslProgram, packedView} from './programs';

/** The part of tfjs-backend-webgl's MathBackendWebGL these kernels use. */
interface WebGLBackend {
  texData: {get(dataId: object): {isPacked?: boolean}};
  runWebGLProgram(program: GlslProgram, inputs: TensorInfo[], outputDtype: 'float32'): TensorInfo;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
  packTensor(input: TensorInfo): TensorInfo;
  unpackTensor(input: TensorInfo): TensorInfo;
  disposeIntermediateTensorInfo(tensorInfo: TensorInfo): void;
}

function view(t: TensorInfo, shape: number[]): TensorInfo {
  return {dataId: t.dataId, shape, dtype: t.dtype};
}

/** The kernels' access to the webgl backend. */
export const webglAccess: GpuAccess = {
  // Fragments are cheap but each merge fragment walks all lanes of its channel in order.
  limits: {threads: 16384, maxLanes: 256, minSteps: 16},
  begin(backend, fullSize, plan) {
    const gl = backend as WebGLBackend;
    // Read x in the layout it has (programs.ts); dy, if laid out otherwise, is converted once here
    // rather than by tfjs in every pass that reads it.
    const packed = gl.texData.get(fullSize[0].dataId).isPacked === true;
    const converted: TensorInfo[] = [];
    const views = fullSize.map(t => {
      let data = t;
      if ((gl.texData.get(t.dataId).isPacked === true) !== packed) {
        data = packed ? gl.packTensor(t) : gl.unpackTensor(t);
        converted.push(data);
      }
      return view(data, packed ? packedView(plan.shape) : [util.sizeFromShape(t.shape)]);
    });
    // tfjs-backend-webgl's own switch between float32 and half-float textures.
    const format = {packed, halfFloat: !env().getBool('WEBGL_RENDER_FLOAT32_ENABLED')};
    return {
      views,
      run: (pass, inputs) => gl.runWebGLProgram(glslProgram(pass, format), inputs, 'float32'),
      // An unpacked texture is row-major whatever its shape, so a flat view reads it by channel (as
      // tfjs's own Reshape does); a packed one of rank > 1 is laid out by its last two dimensions.
      vector(t) {
        if (t.shape.length === 1) return {view: t, allocated: false};
        const unpack = gl.texData.get(t.dataId).isPacked === true;
        const data = unpack ? gl.unpackTensor(t) : t;
        return {view: view(data, [util.sizeFromShape(t.shape)]), allocated: unpack};
      },
      fill: (size, value) => gl.makeTensorInfo([size], 'float32', new Float32Array(size).fill(value)),
      dispose: t => gl.disposeIntermediateTensorInfo(t),
      release: () => { for (const t of converted) gl.disposeIntermediateTensorInfo(t); },
    };
  },
};
