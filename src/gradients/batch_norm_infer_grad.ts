/**
 * Gradient of BatchNormInfer (y = (x − mean)·γ/√(var+ε) + β with given statistics): the
 * inference-mode closed form of closed_form.ts, in tf ops. It runs when a frozen or inference-mode
 * layer sits inside a network being trained, where dx is the part that matters (one multiply);
 * each input's gradient is computed only when that input needs one. gamma may be absent (scale 1);
 * every per-channel input has mean's shape (batch_norm_infer.ts), which their gradients take.
 */
import {reshape, sub, Tensor} from '@tensorflow/tfjs-core';
import {BatchNormInfer, BatchNormInferAttrs} from '../kernel_names';
import {broadcastGeometry} from '../ops/channel_axes';
import {inferenceGrads} from './closed_form';
import {SaveLists, savedByName, savingConfig} from './saved';

/** What BatchNormInfer's gradient needs saved. */
export const INFER_SAVES: SaveLists = {inputs: ['x', 'mean', 'variance', 'gamma'], outputs: []};

/** Gradient config registered for BatchNormInfer. */
export const batchNormInferGradConfig = savingConfig(BatchNormInfer, INFER_SAVES,
    (dy, saved, attrs) => {
      const {x, mean, variance, gamma} = savedByName(saved, attrs) as Record<string, Tensor>;
      const {axis, epsilon} = attrs as BatchNormInferAttrs;
      const geometry = broadcastGeometry(x.shape, axis);
      const perChannel = (t: Tensor) => reshape(t, geometry.perChannelShape);
      const grads = inferenceGrads(dy as Tensor, sub(x, perChannel(mean)), gamma == null ? null : perChannel(gamma),
          perChannel(variance), geometry, epsilon);
      const asMean = (t: Tensor) => reshape(t, mean.shape);
      return {
        x: grads.dx,
        mean: () => asMean(grads.dmean()),
        variance: () => asMean(grads.dvariance()),
        gamma: () => asMean(grads.dgamma()),
        beta: () => asMean(grads.dbeta()),
      };
    });
