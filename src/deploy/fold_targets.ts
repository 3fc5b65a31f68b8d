/**
 * The layers a batch norm can be folded into, and where their output channels are: in the output
 * tensor (dataFormat) and in the kernel (Keras/tfjs kernel layouts). Everything layout-specific
 * about folding is in this table.
 *
 * Kernels are seen as [outer, channels, inner] in row-major order:
 *   Dense [in, units], ConvND [...k, in, filters], SeparableConv2D pointwise [1, 1, in·m, filters]:
 *     channels last, inner 1;
 *   ConvNDTranspose [...k, filters, in]: channels second to last, inner = in;
 *   DepthwiseConv2D [kh, kw, in, m]: output channel i·m + j is the last two dimensions flattened,
 *     inner 1 (tf.depthwiseConv2d's channel order).
 */
import type {layers} from '@tensorflow/tfjs-layers';

type Layer = layers.Layer;

/** How to fold into one layer class. */
interface FoldTarget {
  /** The weight scaled per output channel: 'kernel', 'depthwise_kernel' or 'pointwise_kernel'. */
  kernel: string;
  /** Row-major elements of the kernel after each channel's run (see the file comment). */
  inner(kernelShape: number[]): number;
  /** Whether a dataFormat option decides where the output channels are (Dense has none). */
  hasDataFormat: boolean;
  /**
   * Config keys (snake_case) of the constraints on the weights folding changes. tfjs applies a
   * constraint whenever it writes a weight, loading included, so a folded kernel that the constraint
   * does not allow (a negative γ under nonNeg, a larger norm under maxNorm) would be clipped: they are
   * dropped from the folded layer's config (constraints only matter for further training).
   */
  constraints: string[];
}

const KERNEL_CONSTRAINTS = ['kernel_constraint', 'bias_constraint'];
const CHANNELS_LAST: FoldTarget = {kernel: 'kernel', inner: () => 1, hasDataFormat: true, constraints: KERNEL_CONSTRAINTS};
const TRANSPOSED: FoldTarget = {kernel: 'kernel', inner: shape => shape[shape.length - 1], hasDataFormat: true, constraints: KERNEL_CONSTRAINTS};

const TARGETS: {[className: string]: FoldTarget} = {
  Dense: {...CHANNELS_LAST, hasDataFormat: false},
  Conv1D: CHANNELS_LAST,
  Conv2D: CHANNELS_LAST,
  Conv3D: CHANNELS_LAST,
  Conv2DTranspose: TRANSPOSED,
  Conv3DTranspose: TRANSPOSED,
  DepthwiseConv2D: {kernel: 'depthwise_kernel', inner: () => 1, hasDataFormat: true, constraints: ['depthwise_constraint', 'bias_constraint']},
  SeparableConv2D: {kernel: 'pointwise_kernel', inner: () => 1, hasDataFormat: true, constraints: ['pointwise_constraint', 'bias_constraint']},
};

/** The class names a batch norm can be folded into, for messages. */
export const FOLD_TARGET_CLASSES = Object.keys(TARGETS);

/** The fold target of a layer class, or null when a batch norm cannot be folded into it. */
export function foldTargetOf(layer: Layer): FoldTarget | null {
  return TARGETS[layer.getClassName()] ?? null;
}

/** The axis of the layer's output (of rank `rank`) that holds its output channels. */
export function outputChannelAxis(layer: Layer, target: FoldTarget, rank: number): number {
  return target.hasDataFormat && layer.getConfig().dataFormat === 'channelsFirst' ? 1 : rank - 1;
}

/**
 * Why tfjs 4.22 itself cannot run the folded layer right, or null. Conv1D's config drops dataFormat
 * (and its channelsFirst output is channels-last anyway), so the folded copy would differ;
 * SeparableConv2D channelsFirst adds its bias along the wrong axis, and folding needs a bias.
 */
export function tfjsLimitation(layer: Layer): string | null {
  const className = layer.getClassName();
  const dataFormat = (layer as unknown as {dataFormat?: string}).dataFormat;
  if (className === 'Conv1D' && dataFormat === 'channelsFirst') {
    return `tfjs does not save Conv1D's dataFormat 'channelsFirst' (its config drops it), so a folded copy would change`;
  }
  if (className === 'SeparableConv2D' && dataFormat === 'channelsFirst') {
    return `tfjs 4.22's SeparableConv2D with dataFormat 'channelsFirst' adds its bias along the wrong axis, and folding needs a bias`;
  }
  return null;
}

/**
 * Fills in config keys that tfjs 4.22 reads but does not write, so that the folded copy (made from
 * the model's JSON, as a load would) and any saved copy of it keep them: SeparableConv2D's
 * getConfig drops depthMultiplier, and without it the copy's depthwise kernel has the wrong shape.
 * Edits the layer entry's (snake_case) config in place.
 */
export function completeConfig(entry: {class_name: string; config: {[key: string]: unknown}}, layer: Layer): void {
  const depthMultiplier = (layer as unknown as {depthMultiplier?: number}).depthMultiplier;
  if (entry.class_name === 'SeparableConv2D' && entry.config.depth_multiplier == null && depthMultiplier != null) {
    entry.config.depth_multiplier = depthMultiplier;
  }
}
