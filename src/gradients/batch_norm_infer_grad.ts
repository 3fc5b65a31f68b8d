/**
 * Gradient of BatchNormInfer (y = (x − mean)·γ/√(var+ε) + β), written with tf ops: it runs only
 * when a frozen or inference-mode layer sits inside a network being trained, where dx is the part
 * that matters and is a single multiply.
 */
import {add, GradConfig, mul, NamedAttrMap, neg, pow, reshape, rsqrt, scalar, sub, sum, Tensor} from '@tensorflow/tfjs-core';
import {BatchNormAttrs, BatchNormInfer} from '../kernel_names';
import {broadcastShape, reductionAxes} from '../ops/channel_axes';

/** Gradient config registered for BatchNormInfer. */
export const batchNormInferGradConfig: GradConfig = {
  kernelName: BatchNormInfer,
  inputsToSave: ['x', 'mean', 'variance', 'gamma'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs?: NamedAttrMap) => {
    const grad = dy as Tensor;
    const [x, mean, variance, gamma] = saved;
    const {axis, epsilon} = attrs as BatchNormAttrs;
    const shape = broadcastShape(x.shape, axis);
    const reduce = reductionAxes(x.rank, axis);
    const perChannel = [mean.size];
    const rstd = rsqrt(add(reshape(variance, shape), scalar(epsilon)));
    const scale = mul(reshape(gamma, shape), rstd);
    const centered = sub(x, reshape(mean, shape));
    const sumDy = () => sum(grad, reduce);
    const sumDyXc = () => sum(mul(grad, centered), reduce);
    return {
      x: () => mul(grad, scale),
      mean: () => reshape(neg(mul(sum(grad, reduce, true), scale)), perChannel),
      variance: () => reshape(mul(mul(sum(mul(grad, centered), reduce, true), reshape(gamma, shape)), mul(scalar(-0.5), pow(rstd, 3))), perChannel),
      gamma: () => reshape(mul(sumDyXc(), reshape(rstd, perChannel)), perChannel),
      beta: () => reshape(sumDy(), perChannel),
    };
  },
};
