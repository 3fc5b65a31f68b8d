/**
 * recalibrate: sets every batch-norm layer's moving statistics to the exact population statistics
 * of that layer's input over the given data (PreciseBN, Wu & Johnson 2021). After fine-tuning,
 * weight averaging or pruning the moving statistics no longer match the weights, and with momentum
 * 0.99 training takes hundreds of steps to forget them; recalibration needs one pass per layer.
 *
 * Layer by layer in execution order, each with the layers before it already recalibrated, the data
 * runs in inference mode (nothing else changes: weights frozen, dropout off) through the part of the
 * model that ends at the layer. The layer's `call` is wrapped for the pass to see exactly the input
 * and the mask the layer gets (the model's own mask propagation, the layer's own mask checks), whose
 * per-batch statistics are merged exactly in float64 (population_moments.ts).
 */
import {dispose, keep, Tensor, tensor, tidy} from '@tensorflow/tfjs-core';
import {LayersModel, layers, model as functionalModel, SymbolicTensor} from '@tensorflow/tfjs-layers';
import type {Kwargs} from '@tensorflow/tfjs-layers/dist/types';
import {batchNormLayersOf, batchNormVariable, channelAxesOf, checkBuiltModel, describeLayer, FoundBatchNorm} from './batch_norm_layers';
import {Pass, passes, RecalibrationData} from './data_source';
import {BatchMoments, batchMoments, PopulationMoments} from './population_moments';

type Layer = layers.Layer;

const FN = 'recalibrate';

/** Where recalibration stands, after each batch. */
export interface RecalibrationProgress {
  /** The layer being recalibrated ('nested/name' inside nested models). */
  layer: string;
  /** Its position (0-based) among the model's batch-norm layers, and their number. */
  layerIndex: number;
  layerCount: number;
  /** Batches read so far for this layer. */
  batches: number;
}

/** recalibrate's options. */
export interface RecalibrateOptions {
  /** Read at most this many batches per layer (default: all the data). */
  batches?: number;
  /** Called after each batch; recalibration waits for a returned promise. */
  onProgress?: (progress: RecalibrationProgress) => void | Promise<void>;
}

/** What recalibrate did to one layer. */
export interface RecalibratedLayer {
  layer: string;
  batches: number;
  /** Values per channel the statistics were taken over (the fewest, where a mask makes them differ). */
  count: number;
}

/** The part of `model` that ends with `topLevel` (the layer, or the nested model holding it). */
function modelUpTo(model: LayersModel, topLevel: Layer): LayersModel {
  const outputs: SymbolicTensor[] = Object.values(model.nodesByDepth).flat()
    .filter(node => node.outboundLayer === topLevel).flatMap(node => node.outputTensors);
  return functionalModel({inputs: model.inputs, outputs});
}

/** Runs `body` with the layer's call wrapped to hand each call's input statistics to `record`. */
async function recording<T>(found: FoundBatchNorm, record: (moments: BatchMoments) => void, body: () => Promise<T>): Promise<T> {
  const layer = found.layer;
  const call = layer.call;
  layer.call = (inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor | Tensor[] => {
    // The layer's own call first: its checks (the mask's shape among them) run before ours.
    const output = call.call(layer, inputs, kwargs);
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const mask = (Array.isArray(kwargs.mask) ? kwargs.mask[0] : kwargs.mask) as Tensor | undefined;
    try {
      const [count, mean, variance] = tidy(() => {
        const m = batchMoments(x, mask ?? null, channelAxesOf(layer, x.rank));
        return [m.count, m.mean, m.variance];
      }).map(t => keep(t));
      record({count, mean, variance});
    } catch (e) {
      throw new Error(`${FN}: layer ${describeLayer(layer, found.path)}, input of shape [${x.shape}]` +
          `${mask == null ? '' : ` with a mask of shape [${mask.shape}]`}: ${(e as Error).message}`);
    }
    return output;
  };
  try {
    return await body();
  } finally {
    delete (layer as {call?: unknown}).call;
    if (layer.call !== call) layer.call = call;
  }
}

/** Statistics of one layer's input over one pass of the data, merged in float64. */
async function layerStatistics(model: LayersModel, found: FoundBatchNorm, pass: Pass,
                               onBatch: (batches: number) => Promise<void>): Promise<{moments: PopulationMoments; batches: number}> {
  const upTo = modelUpTo(model, found.topLevel);
  const pending: BatchMoments[] = [];
  let moments: PopulationMoments | null = null;
  let batches = 0;
  try {
    await recording(found, m => pending.push(m), async () => {
      for (let batch = await pass.next(); batch != null; batch = await pass.next()) {
        try {
          dispose(upTo.apply(batch.inputs, {training: false}) as Tensor | Tensor[]);
        } finally {
          batch.release();
        }
        for (const m of pending.splice(0)) {
          moments ??= new PopulationMoments(m.mean.size);
          moments.add(await m.count.data(), await m.mean.data(), await m.variance.data());
          dispose([m.count, m.mean, m.variance]);
        }
        await onBatch(++batches);
      }
    });
  } finally {
    pending.forEach(m => dispose([m.count, m.mean, m.variance]));
  }
  if (batches === 0) throw new Error(`${FN}: argument 'data' yielded no batches (an empty dataset?); nothing to take statistics over`);
  if (moments == null) {
    throw new Error(`${FN}: layer ${describeLayer(found.layer, found.path)} was never called while the data ran through the model`);
  }
  return {moments, batches};
}

/** Writes float64 statistics into a moving-statistics variable (float32), keeping channels that saw no value. */
function writeStatistic(found: FoundBatchNorm, name: 'moving_mean' | 'moving_variance' | 'moving_stddev', values: Float64Array): void {
  const variable = batchNormVariable(found.layer, name);
  if (variable == null) throw new Error(`${FN}: layer ${describeLayer(found.layer, found.path)} has no weight '${name}'`);
  const previous = variable.read().dataSync();
  const shape = variable.shape as number[];
  if (values.length !== previous.length) {
    throw new Error(`${FN}: layer ${describeLayer(found.layer, found.path)} has ${previous.length} channels but its input has ${values.length}`);
  }
  const next = tensor(Float32Array.from(values, (v, c) => (Number.isNaN(v) ? previous[c] : v)), shape);
  variable.write(next);
  next.dispose();
}

function checkBatches(batches: unknown): number {
  if (batches === undefined) return Infinity;
  if (typeof batches !== 'number' || !Number.isInteger(batches) || batches < 1) {
    throw new Error(`${FN}: option 'batches' is ${JSON.stringify(batches)}, expected a positive integer`);
  }
  return batches;
}

/**
 * Sets the moving mean and variance of every batch-norm layer of `model` (BatchNorm and the stock
 * BatchNormalization, nested models included) to the exact population mean and biased variance of
 * that layer's input over `data`, layer by layer in execution order, each computed with the layers
 * before it already recalibrated. Masked positions are left out (the layer's mask rule, Keras's). A
 * channel that saw no unmasked value keeps its statistics. Nothing else in the model changes.
 *
 * `data`: a tf.data.Dataset, an array of batches, or a function returning an iterator (a generator
 * function, sync or async); each batch is what predict takes, or {xs, ys} as fitDataset reads. The
 * data is read once per batch-norm layer, so it should yield the same batches each time. On error
 * (data that does not fit the model, an empty dataset, …) every layer keeps its old statistics.
 */
export async function recalibrate(model: LayersModel, data: RecalibrationData, options: RecalibrateOptions = {}): Promise<RecalibratedLayer[]> {
  checkBuiltModel(FN, model);
  const start = passes(FN, model, data, checkBatches(options.batches));
  const found = batchNormLayersOf(model);
  // Kept until the end, so that an error leaves every layer as it was.
  const saved = found.map(f => (['moving_mean', 'moving_variance', 'moving_stddev'] as const).map(name => batchNormVariable(f.layer, name))
    .map(v => (v == null ? null : {variable: v, value: keep(v.read().clone())})));
  const results: RecalibratedLayer[] = [];
  let done = false;
  try {
    for (const [layerIndex, f] of found.entries()) {
      const name = `${f.path}${f.layer.name}`;
      const onBatch = async (batches: number) => options.onProgress?.({layer: name, layerIndex, layerCount: found.length, batches});
      const {moments, batches} = await layerStatistics(model, f, await start(), onBatch);
      writeStatistic(f, 'moving_mean', moments.mean);
      const variance = moments.variance();
      writeStatistic(f, 'moving_variance', variance);
      // Batch Renormalization keeps the moving standard deviation too, and its next training step
      // derives moving_variance from it (max(stddev² − ε, 0)): keep the two consistent.
      if (batchNormVariable(f.layer, 'moving_stddev') != null) writeStatistic(f, 'moving_stddev', variance.map(v => Math.sqrt(v + (f.layer.getConfig().epsilon as number))));
      results.push({layer: name, batches, count: Math.min(...moments.count)});
    }
    done = true;
    return results;
  } finally {
    for (const s of saved.flat()) {
      if (s == null) continue;
      if (!done) s.variable.write(s.value);
      s.value.dispose();
    }
  }
}
