/**
 * Gradient of BatchNormTrain in closed form: one BatchNormTrainGrad kernel gives dx, dgamma and
 * dbeta together, instead of autodiff through the moments (dozens of kernels and full-size
 * temporaries). The gradients arriving at the mean and variance outputs (zeros unless the caller
 * differentiates through them) are folded into dx by the kernel.
 */
import {engine, GradConfig, NamedAttrMap, Tensor} from '@tensorflow/tfjs-core';
import {BatchNormTrain, BatchNormTrainGrad} from '../kernel_names';

/** Gradient config registered for BatchNormTrain. */
export const batchNormTrainGradConfig: GradConfig = {
  kernelName: BatchNormTrain,
  inputsToSave: ['x', 'gamma'],
  outputsToSave: [false, false, true],
  gradFunc: (dys: Tensor | Tensor[], saved: Tensor[], attrs?: NamedAttrMap) => {
    const [dy, dmean, dvariance] = dys as Tensor[];
    const [x, gamma, variance] = saved;
    const [dx, dgamma, dbeta] =
        engine().runKernel(BatchNormTrainGrad, {dy, x, gamma, variance, dmean, dvariance}, attrs) as Tensor[];
    return {x: () => dx, gamma: () => dgamma, beta: () => dbeta};
  },
};
