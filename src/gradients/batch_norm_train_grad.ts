/**
 * Gradient of BatchNormTrain: one BatchNormTrainGrad kernel gives dx, dgamma and dbeta together,
 * instead of autodiff through the moments (dozens of kernels and full-size temporaries). The
 * gradients arriving at the mean and variance outputs (zeros unless the caller differentiates
 * through them) are folded into dx. A backend whose gradient kernel is missing, or lacks a feature
 * the forward used (dispatch.ts, mode 'trainGrad'), gets the same closed form in tf ops.
 *
 * Renorm's r and d and the updated statistics are constants to the gradient: r and d by definition
 * (Keras' stop_gradient), the updates as assignments (ops/train_step.ts); what arrives at those
 * outputs is not propagated. The inputs they come from (moving and renorm statistics, clipping
 * bounds) get no gradient: a tf.grad with respect to one of them fails with tfjs' "Cannot backprop
 * through input" instead of answering.
 */
import {add, div, mul, NamedAttrMap, NamedTensorInfoMap, reshape, Tensor} from '@tensorflow/tfjs-core';
import {BatchNormFeature, BatchNormTrain, BatchNormTrainAttrs, BatchNormTrainGrad, BatchNormTrainGradAttrs, batchNormTrainOutputs} from '../kernel_names';
import {implementationFor} from '../ops/dispatch';
import {compositeMoments} from '../ops/moments';
import {trainingGrads} from './closed_form';
import {GroupView, groupView} from './group_view';
import {runKernelSaving, savedByName, SaveLists, savingConfig} from './saved';

/** What BatchNormTrainGrad's own gradient (the double backward) needs saved. */
export const TRAIN_GRAD_SAVES: SaveLists = {inputs: ['dy', 'x', 'gamma', 'dvariance', 'r', 'd'], outputs: []};

/**
 * What BatchNormTrain's gradient needs saved from a call with these outputs: x, gamma; the variance
 * output, or with ghost batches the per-group variances; r and d with renorm.
 */
export function trainSaves(outputs: string[]): SaveLists {
  const wanted = [outputs.includes('groupVariance') ? 'groupVariance' : 'variance', ...(outputs.includes('r') ? ['r', 'd'] : [])];
  return {inputs: ['x', 'gamma'], outputs: wanted.map(name => [name, outputs.indexOf(name)] as [string, number])};
}

/** The same for a call with these inputs and attributes (its outputs follow from them: kernel_names.ts). */
export function trainCallSaves(inputs: NamedTensorInfoMap, attrs: NamedAttrMap): SaveLists {
  const {ghosts} = attrs as unknown as BatchNormTrainAttrs;
  return trainSaves(batchNormTrainOutputs({moving: inputs.movingMean != null, renorm: inputs.renormMean != null, ghosts: (ghosts ?? 1) > 1}));
}

/** The features of the forward call that the gradient kernel must declare too. */
function featuresOf(attrs: BatchNormTrainAttrs, renorm: boolean): BatchNormFeature[] {
  return [...(attrs.paramShape != null ? ['flexibleParams' as const] : []), ...(renorm ? ['renorm' as const] : []),
    ...((attrs.ghosts ?? 1) > 1 ? ['ghosts' as const] : [])];
}

/** Renorm's r and d as saved (both or neither: the kernels take them together). */
export interface Correction {
  r: Tensor;
  d: Tensor;
}

/** The saved r and d, or null without renorm. */
export function correctionOf(saved: Record<string, Tensor | undefined>): Correction | null {
  return saved.r == null ? null : {r: saved.r, d: saved.d as Tensor};
}

/** γ' = γ·r broadcast over the view (γ = 1 without scale; null when neither is there). */
export function effectiveGamma(view: GroupView, gamma: Tensor | null, r: Tensor | null): Tensor | null {
  if (r == null) return gamma == null ? null : view.perChannel(gamma);
  return gamma == null ? view.perChannel(r) : mul(view.perChannel(gamma), view.perChannel(r));
}

/** A per-channel gradient arriving at an output that averages the groups over k ghost batches: its share per group. */
export function perGroupShare(view: GroupView, t: Tensor): Tensor {
  return view.ghosts === 1 ? view.perChannel(t) : div(view.perChannel(t), view.ghosts);
}

/** Gradient config registered for BatchNormTrain. */
export const batchNormTrainGradConfig = savingConfig(BatchNormTrain, trainSaves(batchNormTrainOutputs({moving: false, renorm: false, ghosts: false})),
    (dys, saved, attrs) => {
      const [dy, dmean, dvariance] = dys as Tensor[];
      const s = savedByName(saved, attrs);
      // With ghost batches the per-group variances are saved (what the gradient kernel takes).
      const [x, variance] = [s.x as Tensor, (s.groupVariance ?? s.variance) as Tensor];
      const [gamma, correction] = [s.gamma ?? null, correctionOf(s)];
      const a = attrs as unknown as BatchNormTrainAttrs;
      // Absent optional attributes pass as undefined, which the kernels read as their defaults.
      const gradAttrs: BatchNormTrainGradAttrs = {axis: a.axis, epsilon: a.epsilon, paramShape: a.paramShape, ghosts: a.ghosts};
      if (implementationFor('trainGrad', x.rank, a.axis, {uses: featuresOf(a, correction != null)}) === 'fused') {
        const inputs = {dy, x, variance, dmean, dvariance, ...(gamma == null ? {} : {gamma}), ...correction};
        const [dx, dgamma, dbeta] = runKernelSaving(BatchNormTrainGrad, inputs, gradAttrs as unknown as NamedAttrMap, TRAIN_GRAD_SAVES);
        return {x: () => dx, gamma: () => dgamma, beta: () => dbeta};
      }
      // The moments again, on the tape: the saved variance output cannot be traced back to x there
      // (see batch_norm_train_grad_grad.ts), and second-order gradients need that dependence.
      const view = groupView(x.shape, a.axis, a.ghosts ?? 1);
      const moments = compositeMoments(view.toView(x), view.geometry, null);
      const grads = trainingGrads(view.toView(dy), moments.centered, effectiveGamma(view, gamma, correction?.r ?? null), moments.variance, view.geometry,
          a.epsilon, {weights: null, count: moments.count, dmean: perGroupShare(view, dmean), dvariance: perGroupShare(view, dvariance)});
      const paramShape = gamma?.shape ?? a.paramShape ?? [dmean.size];
      const dbeta = () => view.sumOverGhosts(grads.dbeta, paramShape);
      const dgamma = () => {
        const dg = view.sumOverGhosts(grads.dgamma, paramShape);
        // y = x̂·(r·γ) + d·γ + β: dγ = r·Σdy·x̂ + d·Σdy.
        return correction == null ? dg : add(mul(reshape(correction.r, paramShape), dg), mul(reshape(correction.d, paramShape), dbeta()));
      };
      return {x: () => reshape(grads.dx, x.shape), gamma: dgamma, beta: dbeta};
    });
