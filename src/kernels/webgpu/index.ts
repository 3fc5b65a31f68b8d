/**
 * The fused kernels on tfjs-backend-webgpu: WGSL compute programs (programs.ts) run through the
 * backend's runWebGPUProgram (access.ts). Training forward and backward are 5 dispatches each
 * (partial sums, merge, the elementwise pass, two per-channel picks; the forward 2 more with a layer's moving update), inference one.
 */
import type {KernelConfig} from '@tensorflow/tfjs-core';
import {gpuKernelConfigs} from '../gpu_kernels';
import {webgpuAccess} from './access';

/** Kernel configs for the webgpu backend. */
export const webgpuKernels: KernelConfig[] = gpuKernelConfigs('webgpu', webgpuAccess);
