/** The inference-mode op: batchNormInfer(x, mean, variance, gamma, beta, {axis, epsilon}) → y. */
import {engine, ones, reshape, Tensor, tidy, zeros} from '@tensorflow/tfjs-core';
import {BatchNormInfer, BatchNormInferAttrs, BatchNormInferInputs} from '../kernel_names';
import {batchNormInferComposite} from './batch_norm_composite';
import {BatchNormOptions, DEFAULT_AXIS, DEFAULT_EPSILON} from './batch_norm_train';
import {implementationFor} from './dispatch';
import {checkCommon, checkPerChannel} from './validate';

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
  return tidy(() => {
    if (implementation !== 'fused') return batchNormInferComposite(args.x, m, v, g, b, args, implementation);
    const perChannel = [args.channels];
    const attrs: BatchNormInferAttrs = {axis: args.axes, epsilon: args.epsilon};
    const inputs: BatchNormInferInputs = {
      x: args.x,
      mean: reshape(m, perChannel),
      variance: reshape(v, perChannel),
      gamma: g == null ? ones(perChannel) : reshape(g, perChannel),
      beta: b == null ? zeros(perChannel) : reshape(b, perChannel),
    };
    return engine().runKernel(BatchNormInfer, inputs as unknown as Record<string, Tensor>, attrs) as Tensor;
  });
}
