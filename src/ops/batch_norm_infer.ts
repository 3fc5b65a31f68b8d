/** The inference-mode op: batchNormInfer(x, mean, variance, gamma, beta, {axis, epsilon}) → y. */
import {ones, reshape, Tensor, tidy, zeros} from '@tensorflow/tfjs-core';
import {runKernelSaving} from '../gradients/saved';
import {BatchNormInfer, BatchNormInferAttrs} from '../kernel_names';
import {batchNormInferComposite} from './batch_norm_composite';
import {BatchNormOptions, DEFAULT_AXIS, DEFAULT_EPSILON} from './batch_norm_train';
import {implementationFor, situationOf} from './dispatch';
import {CheckedArgs, checkCommon, checkPerChannel} from './validate';

/** What BatchNormInfer's gradient needs saved. */
export const INFER_SAVES = {inputs: ['x', 'mean', 'variance', 'gamma'], outputs: []};

/**
 * The fused inference kernel: per-channel tensors as they are where it declares flexibleParams
 * (one kernel, nothing else; any of them shaped unlike `mean` is reshaped to mean's shape, which the
 * gradient gives them all), else [channels] with ones/zeros for a null gamma/beta.
 */
function fusedInfer(args: CheckedArgs, mean: Tensor, variance: Tensor, gamma: Tensor | null, beta: Tensor | null): Tensor {
  const attrs: BatchNormInferAttrs = {axis: args.axes, epsilon: args.epsilon};
  const flexible = situationOf('infer', args.x.rank, args.axes).features.includes('flexibleParams');
  const perChannel = flexible ? mean.shape : [args.channels];
  const asChannels = (t: Tensor) => (t.shape.join() === perChannel.join() ? t : reshape(t, perChannel));
  const inputs: Record<string, Tensor> = {x: args.x, mean: asChannels(mean), variance: asChannels(variance)};
  if (gamma != null || !flexible) inputs.gamma = gamma == null ? ones(perChannel) : asChannels(gamma);
  if (beta != null || !flexible) inputs.beta = beta == null ? zeros(perChannel) : asChannels(beta);
  return runKernelSaving(BatchNormInfer, inputs, attrs, INFER_SAVES)[0];
}

/**
 * Normalizes x with given (moving) statistics: y = (x − mean)/√(variance + ε)·γ + β per channel.
 * Correct for any channel axis, unlike tf.batchNorm on cpu/wasm with channels-first broadcasts
 * (tfjs #1106); differentiable to any order in every input. dispatch.ts decides what runs.
 */
export function batchNormInfer(
    x: Tensor, mean: Tensor, variance: Tensor, gamma: Tensor | null, beta: Tensor | null,
    options: BatchNormOptions = {}): Tensor {
  const fn = 'batchNormInfer';
  const args = checkCommon(fn, x, options.axis ?? DEFAULT_AXIS, options.epsilon ?? DEFAULT_EPSILON);
  const m = checkPerChannel(fn, 'mean', mean, args.channels, false) as Tensor;
  const v = checkPerChannel(fn, 'variance', variance, args.channels, false) as Tensor;
  const g = checkPerChannel(fn, 'gamma', gamma, args.channels, true);
  const b = checkPerChannel(fn, 'beta', beta, args.channels, true);
  const implementation = implementationFor('infer', args.x.rank, args.axes);
  return tidy(() => (implementation === 'fused' ? fusedInfer(args, m, v, g, b) :
    batchNormInferComposite(args.x, m, v, g, b, args, implementation)));
}
