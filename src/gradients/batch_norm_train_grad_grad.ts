/**
 * Gradient of BatchNormTrainGrad, so that second-order gradients (gradient penalties, MAML,
 * Hessian-vector products) run through the fused kernels: the closed-form double backward of
 * closed_form.ts, in tf ops (hence itself differentiable: third order works by autodiff).
 *
 * The kernel's `variance` input is BatchNormTrain's variance output, a function of x. tfjs saves a
 * kernel's outputs for its gradient through a copy that the tape cannot trace back to x (the copy is
 * recorded before the kernel that made the output), so the dependence on x through σ² is taken
 * here, in the gradient for x (σ² recomputed from x), and the `variance` input gets none.
 */
import {GradConfig, NamedAttrMap, reshape, Tensor, zeros} from '@tensorflow/tfjs-core';
import {BatchNormTrainGrad, BatchNormTrainGradAttrs} from '../kernel_names';
import {broadcastGeometry} from '../ops/channel_axes';
import {compositeMoments} from '../ops/moments';
import {trainingGradGrads} from './closed_form';

/** Gradient config registered for BatchNormTrainGrad. */
export const batchNormTrainGradGradConfig: GradConfig = {
  kernelName: BatchNormTrainGrad,
  inputsToSave: ['dy', 'x', 'gamma', 'dvariance'],
  gradFunc: (upstream: Tensor | Tensor[], saved: Tensor[], attrs?: NamedAttrMap) => {
    const [ddx, ddgamma, ddbeta] = upstream as Tensor[];
    const [dy, x, gamma, dvariance] = saved;
    const {axis, epsilon} = attrs as BatchNormTrainGradAttrs;
    const geometry = broadcastGeometry(x.shape, axis);
    const perChannel = (t: Tensor) => reshape(t, geometry.perChannelShape);
    // μ and σ² recomputed on the tape, so that third-order gradients see how they depend on x.
    const {centered, variance, count} = compositeMoments(x, geometry, null);
    const grads = trainingGradGrads({ddx, ddgamma: perChannel(ddgamma), ddbeta: perChannel(ddbeta)}, dy, centered,
        perChannel(gamma), variance, perChannel(dvariance), geometry, epsilon, count as number);
    const channels = [gamma.size];
    return {
      dy: grads.dy,
      x: grads.x,
      gamma: () => reshape(grads.gamma(), channels),
      // σ² is x's variance, differentiated through x above; as an input it is only a cached value.
      variance: () => zeros(channels),
      dmean: () => reshape(grads.dmean(), channels),
      dvariance: () => reshape(grads.dvariance(), channels),
    };
  },
};
