/** The fused kernels on the `cpu` backend, reading and writing its JS typed arrays in place. */
import {TensorInfo, util} from '@tensorflow/tfjs-core';
import {BatchNormInfer, BatchNormKernelConfig, BatchNormTrain, BatchNormTrainGrad} from '../kernel_names';
import {BufferAccess, FUSED_FEATURES, inferKernel, trainGradKernel, trainKernel} from './fused';
import {jsLoops} from './loops';

/** The part of tfjs-backend-cpu's MathBackendCPU these kernels use (typed structurally, so no import). */
interface CpuBackend {
  data: {get(dataId: object): {values?: unknown}};
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
}

const cpuAccess: BufferAccess = {
  run(backend: unknown, inputs, outputShapes, body) {
    const cpu = backend as unknown as CpuBackend;
    const ins = inputs.map(t => (t == null ? null : cpu.data.get(t.dataId).values as Float32Array));
    const outs = outputShapes.map(shape => new Float32Array(util.sizeFromShape(shape)));
    body(ins, outs);
    return outs.map((values, i) => cpu.makeTensorInfo(outputShapes[i], 'float32', values));
  },
  loops: () => jsLoops,
};

/** Kernel configs for the cpu backend. */
export const cpuKernels: BatchNormKernelConfig[] = [
  {kernelName: BatchNormTrain, backendName: 'cpu', kernelFunc: trainKernel(cpuAccess), features: FUSED_FEATURES},
  {kernelName: BatchNormTrainGrad, backendName: 'cpu', kernelFunc: trainGradKernel(cpuAccess), features: FUSED_FEATURES},
  {kernelName: BatchNormInfer, backendName: 'cpu', kernelFunc: inferKernel(cpuAccess), features: FUSED_FEATURES},
];
