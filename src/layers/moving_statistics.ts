/** The moving-average update every batch-normalization variant shares. */
import {add, mul, reshape, Tensor} from '@tensorflow/tfjs-core';
import type {LayerVariable} from '@tensorflow/tfjs-layers';

/**
 * variable ← variable·momentum + value·(1 − momentum), the tfjs / Keras 3 convention; `value` holds
 * one number per channel in any shape (it takes the variable's). Returns the new value (a tensor the
 * caller's scope owns), for updates that derive one weight from another.
 */
export function updateMovingAverage(variable: LayerVariable, value: Tensor, momentum: number): Tensor {
  const updated = add(mul(variable.read(), momentum), mul(reshape(value, variable.shape as number[]), 1 - momentum));
  variable.write(updated);
  return updated;
}
