/**
 * BatchNorm.setWeights is all-or-nothing: the count, shape and dtype of every tensor are checked
 * before any is written (tfjs' own setWeights writes in order and fails midway, leaving the first
 * weights replaced). Errors name the layer, the weight and what was expected.
 */
import * as tf from '@tensorflow/tfjs';
import {batchNormalization} from '../src';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function built(name: string): ReturnType<typeof batchNormalization> {
  const bn = batchNormalization({name});
  const x = tf.ones([2, 4]);
  tf.dispose([x, bn.apply(x) as tf.Tensor]);
  return bn;
}

function values(bn: ReturnType<typeof batchNormalization>): number[][] {
  return bn.getWeights().map(w => Array.from(w.dataSync()));
}

describe('BatchNorm.setWeights checks every tensor before writing any', () => {
  const good = () => [tf.fill([4], 2), tf.fill([4], 3), tf.fill([4], 4), tf.fill([4], 5)];

  it.each([
    ['an int32 last tensor (tfjs would have written the first three)', (w: tf.Tensor[]) => { w[3] = tf.fill([4], 5, 'int32'); },
      "argument 'weights' [3] (moving_variance) has dtype int32, expected float32"],
    ['a bool tensor first', (w: tf.Tensor[]) => { w[0] = tf.fill([4], 1, 'bool'); },
      "argument 'weights' [0] (gamma) has dtype bool, expected float32"],
    ['a disposed tensor', (w: tf.Tensor[]) => { w[2].dispose(); },
      "argument 'weights' [2] (moving_mean) is a disposed tensor, expected a float32 tensor of shape [4]"],
    ['something that is not a tensor', (w: tf.Tensor[]) => { w[1] = [1, 2, 3, 4] as unknown as tf.Tensor; },
      "argument 'weights' [1] (beta) is 1,2,3,4, expected a float32 tensor of shape [4]"],
    ['a wrong shape last', (w: tf.Tensor[]) => { w[3] = tf.fill([2, 2], 5); },
      "argument 'weights' [3] (moving_variance) has shape [2,2], expected shape [4]"],
    ['one tensor too many', (w: tf.Tensor[]) => { w.push(tf.fill([4], 6)); },
      "argument 'weights' has 5 tensors, expected 4: [gamma, beta, moving_mean, moving_variance]"],
  ])('%s: refused naming the layer and weight; nothing written, nothing leaked', (_, spoil, message) => {
    const bn = built('bn_set');
    const before = values(bn);
    const weights = good();
    spoil(weights);
    const tensors = tf.memory().numTensors;
    expect(() => bn.setWeights(weights)).toThrow(`BatchNorm layer 'bn_set': ${message}`);
    expect(values(bn)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    tf.dispose(weights.filter(w => w instanceof tf.Tensor && !w.isDisposed));
    bn.dispose();
  });

  it('a good list is written whole', () => {
    const bn = built('bn_good');
    const weights = good();
    bn.setWeights(weights);
    expect(values(bn)).toEqual([[2, 2, 2, 2], [3, 3, 3, 3], [4, 4, 4, 4], [5, 5, 5, 5]]);
    tf.dispose(weights);
    bn.dispose();
  });

  it('the `weights` constructor argument gets the same checks, at build, before any variable exists', () => {
    const weights = good();
    weights[1] = tf.fill([4], 3, 'int32');
    const tensors = tf.memory().numTensors;
    expect(() => batchNormalization({name: 'bn_ctor', weights}).build([null, 4]))
        .toThrow("BatchNorm layer 'bn_ctor': argument 'weights' [1] (beta) has dtype int32, expected float32");
    expect(tf.memory().numTensors).toBe(tensors);
    tf.dispose(weights);
  });
});
