/**
 * TensorFlow's `stop_gradient`, which tfjs-core lacks: values that enter a differentiated
 * computation as constants. Batch Renormalization's corrections r and d, the tf-ops moving-statistics
 * updates, and the shift of ops/moments.ts use it.
 *
 * How: `f` runs as the forward function of a tf.customGrad with no inputs. tfjs records nothing on
 * the gradient tape inside it (it runs with the engine's kernel depth above zero), so neither does
 * it clone the inputs its ops would save for a gradient (an Identity kernel each); the one node that
 * is recorded is connected to nothing, so backprop never visits it.
 */
import {customGrad, stack, Tensor, tidy, unstack} from '@tensorflow/tfjs-core';

/** The tensors `f` returns (several must share a shape), as constants to the gradient tape. */
export function withoutGradient(f: () => Tensor[]): Tensor[] {
  return tidy(() => {
    let count = 0;
    const value = customGrad(() => {
      const outputs = f();
      count = outputs.length;
      return {value: count === 1 ? outputs[0] : stack(outputs), gradFunc: () => []};
    })();
    return count === 1 ? [value] : unstack(value);
  });
}

/** The value of f() as a constant: the tape does not see how it was computed. */
export function stopGradient(f: () => Tensor): Tensor {
  return withoutGradient(() => [f()])[0];
}
