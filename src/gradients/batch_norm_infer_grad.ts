/**
 * Gradient of BatchNormInfer (y = (x − mean)·γ/√(var+ε) + β with given statistics): the
 * inference-mode closed form of closed_form.ts, in tf ops. It runs when a frozen or inference-mode
 * layer sits inside a network being trained, where dx is the part that matters (one multiply);
 * each input's gradient is computed only when that input needs one.
 */
import {GradConfig, NamedAttrMap, reshape, sub, Tensor} from '@tensorflow/tfjs-core';
import {BatchNormInfer, BatchNormInferAttrs} from '../kernel_names';
import {broadcastGeometry} from '../ops/channel_axes';
import {inferenceGrads} from './closed_form';

/** Gradient config registered for BatchNormInfer. */
export const batchNormInferGradConfig: GradConfig = {
  kernelName: BatchNormInfer,
  inputsToSave: ['x', 'mean', 'variance', 'gamma'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs?: NamedAttrMap) => {
    const [x, mean, variance, gamma] = saved;
    const {axis, epsilon} = attrs as BatchNormInferAttrs;
    const geometry = broadcastGeometry(x.shape, axis);
    const perChannel = (t: Tensor) => reshape(t, geometry.perChannelShape);
    const grads = inferenceGrads(dy as Tensor, sub(x, perChannel(mean)), perChannel(gamma), perChannel(variance), geometry, epsilon);
    const channels = [mean.size];
    return {
      x: grads.dx,
      mean: () => reshape(grads.dmean(), channels),
      variance: () => reshape(grads.dvariance(), channels),
      gamma: () => reshape(grads.dgamma(), channels),
      beta: () => reshape(grads.dbeta(), channels),
    };
  },
};
