/**
 * Gradient of BatchNormTrainGrad, so that second-order gradients (gradient penalties, MAML,
 * Hessian-vector products) run through the fused kernels: the closed-form double backward of
 * closed_form.ts, in tf ops (hence itself differentiable: third order works by autodiff).
 *
 * The kernel's `variance` input is BatchNormTrain's variance output, a function of x. tfjs saves a
 * kernel's outputs for its gradient through a copy that the tape cannot trace back to x (the copy is
 * recorded before the kernel that made the output), so the dependence on x through σ² is taken
 * here, in the gradient for x (σ² recomputed from x), and the `variance` input gets none.
 *
 * Renorm (inputs r, d) is plain batch normalization with γ' = r·γ whose dγ is r·dγ' + d·dβ', so the
 * upstream gradients of dγ and dβ reach γ' and β' as r·ddγ and ddβ + d·ddγ; r and d are constants
 * (zero gradient). Ghost batches run in the ghost view (group_view.ts), each group its own problem,
 * with dmean and dvariance shared out over the k ghost batches.
 */
import {add, div, mul, reshape, Tensor, zeros, zerosLike} from '@tensorflow/tfjs-core';
import {BatchNormTrainGrad, BatchNormTrainGradAttrs} from '../kernel_names';
import {compositeMoments} from '../ops/moments';
import {correctionOf, effectiveGamma, perGroupShare} from './batch_norm_train_grad';
import {trainingGradGrads} from './closed_form';
import {groupView} from './group_view';
import {savedByName, savingConfig} from './saved';

/** Gradient config registered for BatchNormTrainGrad. */
export const batchNormTrainGradGradConfig = savingConfig(BatchNormTrainGrad, {inputs: ['dy', 'x', 'gamma', 'dvariance'], outputs: []},
    (upstream, saved, attrs) => {
      const [ddx, ddgamma, ddbeta] = upstream as Tensor[];
      const s = savedByName(saved, attrs);
      const [dy, x, dvariance] = [s.dy as Tensor, s.x as Tensor, s.dvariance as Tensor];
      const [gamma, correction] = [s.gamma ?? null, correctionOf(s)];
      const r = correction?.r ?? null;
      const {axis, epsilon, ghosts} = attrs as unknown as BatchNormTrainGradAttrs;
      const view = groupView(x.shape, axis, ghosts ?? 1);
      // μ and σ² recomputed on the tape, so that third-order gradients see how they depend on x.
      const {centered, variance} = compositeMoments(view.toView(x), view.geometry, null);
      const upstreamGamma = r == null ? view.perChannel(ddgamma) : mul(view.perChannel(r), view.perChannel(ddgamma));
      const upstreamBeta = correction == null ? view.perChannel(ddbeta) :
        add(view.perChannel(ddbeta), mul(view.perChannel(correction.d), view.perChannel(ddgamma)));
      const grads = trainingGradGrads({ddx: view.toView(ddx), ddgamma: upstreamGamma, ddbeta: upstreamBeta}, view.toView(dy), centered,
          effectiveGamma(view, gamma, r), variance, perGroupShare(view, dvariance), view.geometry, epsilon, view.count);
      const channels = dvariance.shape;
      const perChannel = (t: Tensor) => (view.ghosts === 1 ? reshape(t, channels) : div(view.sumOverGhosts(t, channels), view.ghosts));
      return {
        dy: () => reshape(grads.dy(), x.shape),
        x: () => reshape(grads.x(), x.shape),
        gamma: () => {
          const g = view.sumOverGhosts(grads.gamma(), (gamma as Tensor).shape);
          return r == null ? g : mul(g, reshape(r, (gamma as Tensor).shape));
        },
        // σ² is x's variance, differentiated through x above; as an input it is only a cached value
        // ([channels], or per group with ghost batches).
        variance: () => zeros([dvariance.size * view.ghosts]),
        dmean: () => perChannel(grads.dmean()),
        dvariance: () => perChannel(grads.dvariance()),
        // Constants of the forward (Keras' stop_gradient).
        ...(correction == null ? {} : {r: () => zerosLike(correction.r), d: () => zerosLike(correction.d)}),
      };
    });
