/**
 * Exact per-channel population mean and (biased) variance over many batches: each batch's count,
 * mean and variance come from the device (the same statistics the layer computes in training), and
 * are merged on the host in float64 with Chan et al.'s pairwise update, which is exact in exact
 * arithmetic and does not cancel (no E[x²] − E[x]²):
 *   δ = m_b − M,  N' = N + n_b,  M' = M + δ·n_b/N',  M2' = M2 + n_b·v_b + δ²·N·n_b/N'.
 */
import {broadcastTo, fill, reshape, sum, Tensor} from '@tensorflow/tfjs-core';
import {maskedMoments, maskWeights} from '../layers/batch_norm';
import {batchNormTrain} from '../ops/batch_norm_train';
import {channelCount, reductionAxes} from '../ops/channel_axes';

/** One batch's per-channel statistics, each of shape [channels]. */
export interface BatchMoments {
  count: Tensor;
  mean: Tensor;
  variance: Tensor;
}

/**
 * The batch's per-channel count, mean and biased variance, with the layer's own definitions: the
 * fused training op's statistics (float64 accumulation on cpu/wasm), or with a mask the layer's
 * masked moments over the positions its mask rule keeps (their denominator carries Keras's +1e-7,
 * a relative 1e-7/count: below float32 resolution). Call inside tidy.
 */
export function batchMoments(x: Tensor, mask: Tensor | null, axes: number[]): BatchMoments {
  const channels = channelCount(x.shape, axes);
  if (mask == null) {
    const {y, mean, variance} = batchNormTrain(x, null, null, {axis: axes});
    y.dispose();
    return {count: fill([channels], x.size / channels), mean, variance};
  }
  const count = sum(broadcastTo(maskWeights(x, mask, axes), x.shape), reductionAxes(x.rank, axes));
  const {mean, variance} = maskedMoments(x, mask, axes);
  return {count: reshape(count, [channels]), mean: reshape(mean, [channels]), variance: reshape(variance, [channels])};
}

/** Float64 accumulator of per-channel population statistics. */
export class PopulationMoments {
  readonly count: Float64Array;
  readonly mean: Float64Array;
  private readonly m2: Float64Array;

  constructor(channels: number) {
    this.count = new Float64Array(channels);
    this.mean = new Float64Array(channels);
    this.m2 = new Float64Array(channels);
  }

  /** Merges one batch's per-channel count, mean and biased variance. */
  add(count: ArrayLike<number>, mean: ArrayLike<number>, variance: ArrayLike<number>): void {
    for (let c = 0; c < this.count.length; c++) {
      const n = count[c];
      if (n === 0) continue;
      const total = this.count[c] + n;
      const delta = mean[c] - this.mean[c];
      this.mean[c] += delta * n / total;
      this.m2[c] += n * variance[c] + delta * delta * this.count[c] * n / total;
      this.count[c] = total;
    }
  }

  /** The biased population variance (M2 / N); NaN for a channel that saw no position. */
  variance(): Float64Array {
    return this.m2.map((m2, c) => (this.count[c] > 0 ? m2 / this.count[c] : NaN));
  }
}
