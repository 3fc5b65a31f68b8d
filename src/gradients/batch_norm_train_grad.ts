/**
 * Gradient of BatchNormTrain: one BatchNormTrainGrad kernel gives dx, dgamma and dbeta together,
 * instead of autodiff through the moments (dozens of kernels and full-size temporaries). The
 * gradients arriving at the mean and variance outputs (zeros unless the caller differentiates
 * through them) are folded into dx. A backend that registers the forward kernel but not the
 * gradient kernel gets the same closed form in tf ops (dispatch.ts, mode 'trainGrad').
 */
import {engine, GradConfig, NamedAttrMap, reshape, Tensor} from '@tensorflow/tfjs-core';
import {BatchNormTrain, BatchNormTrainAttrs, BatchNormTrainGrad, BatchNormTrainGradInputs} from '../kernel_names';
import {broadcastGeometry} from '../ops/channel_axes';
import {implementationFor} from '../ops/dispatch';
import {compositeMoments} from '../ops/moments';
import {trainingGrads} from './closed_form';

/** Gradient config registered for BatchNormTrain. */
export const batchNormTrainGradConfig: GradConfig = {
  kernelName: BatchNormTrain,
  inputsToSave: ['x', 'gamma'],
  outputsToSave: [false, false, true],
  gradFunc: (dys: Tensor | Tensor[], saved: Tensor[], attrs?: NamedAttrMap) => {
    const [dy, dmean, dvariance] = dys as Tensor[];
    const [x, gamma, variance] = saved;
    const {axis, epsilon} = attrs as BatchNormTrainAttrs;
    if (implementationFor('trainGrad', x.rank, axis) === 'fused') {
      const inputs: BatchNormTrainGradInputs = {dy, x, gamma, variance, dmean, dvariance};
      const [dx, dgamma, dbeta] =
          engine().runKernel(BatchNormTrainGrad, inputs as unknown as Record<string, Tensor>, attrs) as Tensor[];
      return {x: () => dx, gamma: () => dgamma, beta: () => dbeta};
    }
    // The moments again, on the tape: the saved variance output cannot be traced back to x there
    // (see batch_norm_train_grad_grad.ts), and second-order gradients need that dependence.
    const geometry = broadcastGeometry(x.shape, axis);
    const perChannel = (t: Tensor) => reshape(t, geometry.perChannelShape);
    const moments = compositeMoments(x, geometry, null);
    const grads = trainingGrads(dy, moments.centered, perChannel(gamma), moments.variance, geometry, epsilon,
        {weights: null, count: moments.count, dmean: perChannel(dmean), dvariance: perChannel(dvariance)});
    return {x: () => grads.dx, gamma: () => reshape(grads.dgamma, gamma.shape), beta: () => reshape(grads.dbeta, gamma.shape)};
  },
};
