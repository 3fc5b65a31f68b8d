/**
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel, so a conv2d layer cannot train on wasm
 * ("Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'"). It does have the 3-D one,
 * and a 2-D convolution is a 3-D convolution with depth 1 whose tensors have the same memory layout
 * (NHWC = NDHWC with D = 1). So this kernel hands wasm's Conv3DBackpropFilterV2 the same buffers
 * described with a depth of 1 and describes its output again as a 2-D filter: no copy, no new math.
 * It belongs to the example, not the package: it patches a gap in tfjs, not in batch normalization.
 */
import {getKernel, KernelConfig, registerKernel, TensorInfo} from '@tensorflow/tfjs-core';

/** With depth 1 inserted after the batch dimension: [b, h, w, c] -> [b, 1, h, w, c]. */
function withUnitDepth(info: TensorInfo): TensorInfo {
  return {...info, shape: [info.shape[0], 1, ...info.shape.slice(1)]};
}

const conv2dBackpropFilterWasm: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: ({inputs, backend, attrs}) => {
    const {x, dy} = inputs as {x: TensorInfo, dy: TensorInfo};
    const {strides, pad, dataFormat, dimRoundingMode, filterShape} = attrs as unknown as {
      strides: number | [number, number], pad: 'valid' | 'same' | number | unknown[], dataFormat: string,
      dimRoundingMode?: string, filterShape: [number, number, number, number]};
    const [strideH, strideW] = typeof strides === 'number' ? [strides, strides] : strides;
    // Only what was checked against the cpu backend: NHWC, 'valid'/'same', stride 1. (With stride 2,
    // wasm's Conv3DBackpropFilterV2 and cpu's disagree, so strided convolutions fail loudly here.)
    if (dataFormat !== 'NHWC' || (pad !== 'valid' && pad !== 'same') || dimRoundingMode != null ||
        strideH !== 1 || strideW !== 1) {
      throw new Error('Conv2DBackpropFilter on wasm (example shim): only NHWC, pad \'valid\' or \'same\' and ' +
        `stride 1 are supported, got dataFormat ${dataFormat}, pad ${JSON.stringify(pad)}, ` +
        `strides ${JSON.stringify(strides)}, dimRoundingMode ${dimRoundingMode}`);
    }
    const conv3dFilterGrad = getKernel('Conv3DBackpropFilterV2', 'wasm');
    if (conv3dFilterGrad == null) throw new Error('tfjs-backend-wasm has no Conv3DBackpropFilterV2 kernel');
    const dw = conv3dFilterGrad.kernelFunc({
      inputs: {x: withUnitDepth(x), dy: withUnitDepth(dy)},
      backend,
      attrs: {strides: 1, pad, filterShape: [1, ...filterShape]},
    }) as TensorInfo;
    return {...dw, shape: filterShape};
  },
};

/** Registers the kernel once; call after importing @tensorflow/tfjs-backend-wasm. */
export function registerWasmConv2dFilterGrad(): void {
  if (getKernel('Conv2DBackpropFilter', 'wasm') == null) registerKernel(conv2dBackpropFilterWasm);
}
