/**
 * A browser app as a user writes it: @tensorflow/tfjs and tfjs-batchnorm by package name, bundled
 * by esbuild (platform browser) in a scratch project where the packed package is installed. It
 * trains the same conv2d → batch norm → relu → dense model twice on webgl, once with the stock
 * tf.layers.batchNormalization and once with this package's layer (importing this package must not
 * break the stock layer: two tfjs copies did), saves each to IndexedDB and loads it back.
 * Everything measured goes to window.consumerResult; __tests__/consumer.test.ts makes the checks.
 */
import * as tf from '@tensorflow/tfjs';
import {BatchNorm, batchNormalization} from 'tfjs-batchnorm';

/** What one training run measured. */
export interface RunResult {
  /** Mean loss per epoch. */
  losses: number[];
  /** Class names of the loaded model's layers. */
  loadedClasses: string[];
  /** Max |difference| of predictions, original vs loaded from IndexedDB (on the active backend). */
  roundTripMaxDifference: number;
  /** Whether every weight came back with the same bits. */
  weightsIdentical: boolean;
}

/** What the page reports. */
export interface ConsumerResult {
  backend: string;
  webglVersion: number;
  stock: RunResult;
  ours: RunResult;
  /** BatchNorm as exported is the class tf.serialization builds for 'TfjsBatchNorm>BatchNorm'. */
  registeredClassIsExported: boolean;
}

declare global {
  interface Window {
    consumerResult?: ConsumerResult;
    consumerError?: string;
  }
}

const IMAGES = 64;

/** Seeded images [IMAGES, 8, 8, 1], labelled by which half (left or right) is brighter. */
function data(): {xs: tf.Tensor4D, ys: tf.Tensor2D} {
  return tf.tidy(() => {
    const xs = tf.randomUniform([IMAGES, 8, 8, 1], 0, 1, 'float32', 3).add(2) as tf.Tensor4D;
    const [left, right] = tf.split(xs, 2, 2);
    const labels = tf.greater(left.mean([1, 2, 3]), right.mean([1, 2, 3])).toInt();
    return {xs, ys: tf.oneHot(labels, 2).toFloat() as tf.Tensor2D};
  });
}

function buildModel(norm: tf.layers.Layer): tf.Sequential {
  const model = tf.sequential({layers: [
    tf.layers.conv2d({inputShape: [8, 8, 1], filters: 4, kernelSize: 3, kernelInitializer: tf.initializers.glorotUniform({seed: 1})}),
    norm,
    tf.layers.reLU(),
    tf.layers.flatten(),
    tf.layers.dense({units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: 2})}),
  ]});
  model.compile({optimizer: tf.train.adam(0.05), loss: 'categoricalCrossentropy'});
  return model;
}

function sameBits(a: tf.Tensor, b: tf.Tensor): boolean {
  const [x, y] = [new Uint32Array(new Float32Array(a.dataSync()).buffer), new Uint32Array(new Float32Array(b.dataSync()).buffer)];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

async function run(name: string, norm: tf.layers.Layer): Promise<RunResult> {
  const {xs, ys} = data();
  const model = buildModel(norm);
  const history = await model.fit(xs, ys, {epochs: 12, batchSize: 16, shuffle: false});
  const url = `indexeddb://tfjs-batchnorm-consumer-${name}`;
  await model.save(url);
  const loaded = await tf.loadLayersModel(url);
  const [before, after] = [model, loaded].map(m => (m.predict(xs) as tf.Tensor).dataSync());
  const weights = model.getWeights();
  const result = {
    losses: history.history.loss as number[],
    loadedClasses: loaded.layers.map(l => l.getClassName()),
    roundTripMaxDifference: Math.max(...Array.from(before, (v, i) => Math.abs(v - after[i]))),
    weightsIdentical: loaded.getWeights().length === weights.length && loaded.getWeights().every((w, i) => sameBits(w, weights[i])),
  };
  model.dispose();
  loaded.dispose();
  tf.dispose([xs, ys]);
  return result;
}

async function main(): Promise<ConsumerResult> {
  if (!(await tf.setBackend('webgl'))) throw new Error('the webgl backend did not initialize');
  const stock = await run('stock', tf.layers.batchNormalization());
  const ours = await run('ours', batchNormalization());
  const registered = tf.serialization.SerializationMap.getMap().classNameMap[BatchNorm.className];
  return {backend: tf.getBackend(), webglVersion: tf.env().getNumber('WEBGL_VERSION'), stock, ours,
    registeredClassIsExported: registered != null && registered[0] === BatchNorm};
}

main().then(result => {
  window.consumerResult = result;
}, (e: Error) => {
  window.consumerError = `${e.message}\n${e.stack ?? ''}`;
});
