/**
 * The fused kernels on tfjs-backend-webgl: GLSL programs (programs.ts) run through the backend's
 * runWebGLProgram (access.ts). Training forward and backward are 5 programs each (partial sums,
 * merge, the elementwise pass, two per-channel picks; the forward 2 more with a layer's moving update), inference one.
 */
import type {KernelConfig} from '@tensorflow/tfjs-core';
import {gpuKernelConfigs} from '../gpu_kernels';
import {webglAccess} from './access';

/** Kernel configs for the webgl backend. */
export const webglKernels: KernelConfig[] = gpuKernelConfigs('webgl', webglAccess);
