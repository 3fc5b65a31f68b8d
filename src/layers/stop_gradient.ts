/**
 * TensorFlow's `stop_gradient`, which tfjs-core lacks: values that enter a differentiated
 * computation as constants. Batch Renormalization needs it for its corrections r and d.
 */
import {customGrad, GradSaveFunc, scalar, stack, Tensor, tidy, unstack, zerosLike} from '@tensorflow/tfjs-core';

/**
 * Runs `f` so that no gradient flows back through what it returns (tensors of one shape).
 *
 * How: `f` runs as the forward function of a tf.customGrad, where tfjs records nothing on the
 * gradient tape (it runs with the engine's kernel depth above zero). The one node that is recorded
 * takes a fresh scalar as its input, which no tf.grads call can be differentiating, so backprop never
 * visits it: unlike a custom gradient that returns zeros, this costs no backward work at all.
 */
export function withoutGradient(f: () => Tensor[]): Tensor[] {
  return tidy(() => {
    const anchor = scalar(0);
    const constant = customGrad((...args: Array<Tensor | GradSaveFunc>) => ({value: stack(f()), gradFunc: () => zerosLike(args[0] as Tensor)}));
    return unstack(constant(anchor));
  });
}
