/**
 * The models the folding benchmark times before and after foldBatchNorm, as functions that build
 * them, so that the browser benchmark (webgl) can time exactly the same workloads: the `npm start`
 * convnet (examples/mnist_model.ts) and a MobileNet-style block (depthwise → BN → ReLU6 → pointwise
 * → BN → ReLU6). Batch-norm weights are set away from their defaults, as after training.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization} from '../src';
import {buildModel, IMAGE_SIZE} from '../examples/mnist_model';
import {randomizeBatchNorms} from '../__tests__/support/deploy_models';

/** A MobileNet v1 block's shape: input [height, width, channels], pointwise filters. */
export interface MobileNetBlockArgs {
  inputShape: number[];
  filters: number;
  seed?: number;
  /** Which batch-norm layer the block uses (default: this package's). */
  norm?: 'ours' | 'stock';
}

/** depthwise 3×3 → BN → ReLU6 → pointwise 1×1 → BN → ReLU6, no conv biases (BN's beta takes their place), as in MobileNet v1. */
export function mobileNetBlock({inputShape, filters, seed = 1, norm = 'ours'}: MobileNetBlockArgs): tf.LayersModel {
  const bn = (name: string) => (norm === 'ours' ? batchNormalization({name}) : tf.layers.batchNormalization({name}));
  const input = tf.input({shape: inputShape, name: 'input'});
  let y = tf.layers.depthwiseConv2d({name: 'depthwise', kernelSize: 3, padding: 'same', useBias: false,
    depthwiseInitializer: tf.initializers.glorotUniform({seed})}).apply(input);
  y = tf.layers.reLU({name: 'relu6_1', maxValue: 6}).apply(bn('depthwise_bn').apply(y));
  y = tf.layers.conv2d({name: 'pointwise', filters, kernelSize: 1, useBias: false,
    kernelInitializer: tf.initializers.glorotUniform({seed: seed + 1})}).apply(y);
  y = tf.layers.reLU({name: 'relu6_2', maxValue: 6}).apply(bn('pointwise_bn').apply(y));
  return tf.model({inputs: input, outputs: y as tf.SymbolicTensor});
}

/** One model timed before and after folding. */
export interface FoldWorkload {
  id: string;
  label: string;
  /** The input batch's shape. */
  inputShape: number[];
  /** Builds the unfolded model, its batch norms given trained-looking weights. */
  build(): tf.LayersModel;
}

/** The workloads of the folding rows of `npm run bench`. */
export const FOLD_WORKLOADS: FoldWorkload[] = [
  {
    id: 'mnist', label: 'npm start convnet, batch 64', inputShape: [64, IMAGE_SIZE, IMAGE_SIZE, 1],
    build: () => withTrainedStatistics(buildModel('ours', 0.1)),
  },
  {
    id: 'mobilenet', label: 'MobileNet block 28×28×64→128, batch 8', inputShape: [8, 28, 28, 64],
    build: () => withTrainedStatistics(mobileNetBlock({inputShape: [28, 28, 64], filters: 128})),
  },
];

function withTrainedStatistics(model: tf.LayersModel): tf.LayersModel {
  randomizeBatchNorms(model);
  return model;
}
