/**
 * Wires the kernels and gradients into the tfjs registry. Importing the package calls this once;
 * it is idempotent, so a second copy of the package (or a hot reload) neither throws nor replaces
 * (with a warning) what the first registered.
 */
import {getGradient, getKernel, GradConfig, KernelConfig, registerGradient, registerKernel} from '@tensorflow/tfjs-core';
import {batchNormInferGradConfig, INFER_SAVES} from './gradients/batch_norm_infer_grad';
import {batchNormTrainGradConfig, TRAIN_GRAD_SAVES, trainCallSaves} from './gradients/batch_norm_train_grad';
import {batchNormTrainGradGradConfig} from './gradients/batch_norm_train_grad_grad';
import {CallSaves, savingDirectCalls} from './gradients/saved';
import {BatchNormInfer, BatchNormTrain, BatchNormTrainGrad} from './kernel_names';
import {cpuKernels} from './kernels/cpu';
import {wasmKernels} from './kernels/wasm';
import {webglKernels} from './kernels/webgl';
import {webgpuKernels} from './kernels/webgpu';

/** What each kernel's direct calls save for its gradient (gradients/saved.ts; calls through the ops choose their own). */
const DIRECT_SAVES: Record<string, CallSaves> = {[BatchNormTrain]: trainCallSaves, [BatchNormTrainGrad]: () => TRAIN_GRAD_SAVES,
  [BatchNormInfer]: () => INFER_SAVES};

const kernels: KernelConfig[] = [...cpuKernels, ...wasmKernels, ...webglKernels, ...webgpuKernels]
    .map(config => savingDirectCalls(config, DIRECT_SAVES[config.kernelName]));
const gradients: GradConfig[] = [batchNormTrainGradConfig, batchNormTrainGradGradConfig, batchNormInferGradConfig];

/** Registers the fused cpu/wasm/webgl/webgpu kernels and the gradients (safe to call more than once). */
export function registerBatchNorm(): void {
  for (const config of kernels) {
    if (getKernel(config.kernelName, config.backendName) == null) registerKernel(config);
  }
  for (const config of gradients) {
    if (getGradient(config.kernelName) == null) registerGradient(config);
  }
}
