/**
 * The folded weights, in float64 from the float32 values, rounded to float32 once at the end:
 *   s = γ / √(σ² + ε)          per output channel (γ = 1 without scale, β = 0 without center)
 *   W' = W · s                 along the kernel's output channels
 *   b' = (b − μ) · s + β       (b = 0 where the layer had no bias)
 */
import {layers} from '@tensorflow/tfjs-layers';
import {batchNormVariable, BatchNormWeightName, describeLayer, weightNamed} from './batch_norm_layers';
import {foldTargetOf} from './fold_targets';

type Layer = layers.Layer;

/** New values for the folded layer's weights, by weight name ('kernel', 'bias', …). */
export interface FoldedWeights {
  kernelName: string;
  kernel: Float32Array;
  kernelShape: number[];
  bias: Float32Array;
}

/** A weight's values as float64, or `fallback` (one per channel) where the layer has no such weight. */
function batchNormValues(layer: Layer, name: BatchNormWeightName, channels: number, fallback: number): Float64Array {
  const variable = batchNormVariable(layer, name);
  if (variable == null) return new Float64Array(channels).fill(fallback);
  return Float64Array.from(variable.read().dataSync());
}

/** Folds `batchNorm`'s inference-time affine map into `into`'s kernel and bias. */
export function foldedWeights(batchNorm: Layer, into: Layer): FoldedWeights {
  const target = foldTargetOf(into);
  const kernelVariable = target && weightNamed(into, target.kernel);
  if (target == null || kernelVariable == null) {
    throw new Error(`foldBatchNorm: ${describeLayer(into)} has no weight '${target?.kernel ?? 'kernel'}' to fold into`);
  }
  const mean = Float64Array.from(batchNormVariable(batchNorm, 'moving_mean')?.read().dataSync() ?? []);
  const channels = mean.length;
  const variance = batchNormValues(batchNorm, 'moving_variance', channels, 1);
  const gamma = batchNormValues(batchNorm, 'gamma', channels, 1);
  const beta = batchNormValues(batchNorm, 'beta', channels, 0);
  const epsilon = batchNorm.getConfig().epsilon as number;
  const scale = gamma.map((g, c) => g / Math.sqrt(variance[c] + epsilon));

  const kernelShape = kernelVariable.shape as number[];
  const kernel = kernelVariable.read().dataSync() as Float32Array;
  const inner = target.inner(kernelShape);
  if (kernel.length % (channels * inner) !== 0) {
    throw new Error(`foldBatchNorm: ${describeLayer(into)}'s ${target.kernel} has shape [${kernelShape}], which does not ` +
        `have ${channels} output channels for ${describeLayer(batchNorm)}`);
  }
  const folded = new Float32Array(kernel.length);
  for (let i = 0; i < kernel.length; i++) folded[i] = kernel[i] * scale[Math.floor(i / inner) % channels];

  const biasVariable = weightNamed(into, 'bias');
  const bias = biasVariable == null ? new Float64Array(channels) : Float64Array.from(biasVariable.read().dataSync());
  return {
    kernelName: target.kernel,
    kernel: folded,
    kernelShape,
    bias: Float32Array.from(bias, (b, c) => (b - mean[c]) * scale[c] + beta[c]),
  };
}
