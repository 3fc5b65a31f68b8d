/**
 * What foldBatchNorm and recalibrate need to know about the batch-norm layers of a model, for this
 * package's BatchNorm and the stock BatchNormalization alike: finding them (nested models
 * included), their channel axes, their per-channel weights by name, and whether inference uses
 * their moving statistics. Both classes hold the same weights under the same names and write the
 * same config keys, so everything here reads names and configs, never private fields.
 */
import type {Tensor} from '@tensorflow/tfjs-core';
import {LayersModel, layers, LayerVariable, Sequential} from '@tensorflow/tfjs-layers';
import {BatchNorm} from '../layers/batch_norm';
import {normalizeAxes} from '../ops/channel_axes';
import {callSiteTraining} from './call_site_training';

type Layer = layers.Layer;

/** The stock layer's class name (tfjs and Keras). */
const STOCK_CLASS_NAME = 'BatchNormalization';

/** The four per-channel weights of a batch-norm layer, in their stock names. */
export type BatchNormWeightName = 'gamma' | 'beta' | 'moving_mean' | 'moving_variance' | 'moving_stddev';

/** Whether `layer` is a batch-norm layer this module handles: BatchNorm (or a subclass) or the stock layer. */
export function isBatchNormLayer(layer: Layer): boolean {
  return layer instanceof BatchNorm || layer.getClassName() === STOCK_CLASS_NAME;
}

/** `'name' (ClassName)`, how errors and reports name a layer. */
export function describeLayer(layer: Layer, path = ''): string {
  return `'${path}${layer.name}' (${layer.getClassName()})`;
}

/** Whether `layer` is a model nested as a layer (its own layers are then searched too). */
export function isNestedModel(layer: Layer): layer is LayersModel {
  return layer instanceof LayersModel;
}

/** A batch-norm layer found in a model, with the nested-model path that leads to it. */
export interface FoundBatchNorm {
  layer: Layer;
  /** Names of the nested models that contain it, joined with '/' and ending in '/' ('' at the top). */
  path: string;
  /** The top-level layer that contains it: itself, or the nested model it is in. */
  topLevel: Layer;
}

/**
 * Every batch-norm layer of `model` in execution order: the model's layers in their topological
 * order, nested models expanded in place (their layers run, in their own order, where they are).
 */
export function batchNormLayersOf(model: LayersModel): FoundBatchNorm[] {
  const found: FoundBatchNorm[] = [];
  const walk = (container: LayersModel, path: string, topLevel: Layer | null): void => {
    for (const layer of container.layers) {
      if (isBatchNormLayer(layer)) found.push({layer, path, topLevel: topLevel ?? layer});
      else if (isNestedModel(layer)) walk(layer, `${path}${layer.name}/`, topLevel ?? layer);
    }
  };
  walk(model, '', null);
  return found;
}

/** The layer's channel axes (sorted, non-negative) for an input of rank `rank`, from its config. */
export function channelAxesOf(layer: Layer, rank: number): number[] {
  return normalizeAxes(layer.getConfig().axis as number | number[], rank);
}

/** The layer's weight whose variable name ends in `/name` ('kernel', 'moving_mean', …), or null where it has none. */
export function weightNamed(layer: Layer, name: string): LayerVariable | null {
  return layer.weights.find(w => w.originalName.split('/').pop() === name) ?? null;
}

/** The batch-norm layer's variable `name`, or null where absent (gamma without scale, beta without center). */
export function batchNormVariable(layer: Layer, name: BatchNormWeightName): LayerVariable | null {
  return weightNamed(layer, name);
}

/**
 * Whether inference (predict) normalizes with batch statistics instead of the moving ones:
 * BatchNorm's inferenceStatistics 'batch', or a call-site `training: true` (Keras), unless frozen.
 * The stock tfjs layer ignores call-site arguments, but Keras does not, so such a stock layer counts
 * too: its moving statistics are not what the model was meant to compute with.
 */
export function usesBatchStatisticsAtInference(layer: Layer): boolean {
  const option = layer instanceof BatchNorm && layer.inferenceStatistics === 'batch';
  return (option || callSiteTraining(layer) === true) && layer.trainable;
}

/**
 * Checks that `model` is a LayersModel whose layers have their weights, naming the unbuilt
 * batch-norm layers otherwise (a Sequential model without an input shape is built by its first call).
 */
export function checkBuiltModel(fn: string, model: unknown): LayersModel {
  if (!(model instanceof LayersModel)) {
    throw new Error(`${fn}: argument 'model' is ${model === null ? 'null' : typeof model}, expected a tf.LayersModel (tf.sequential or tf.model)`);
  }
  // A Sequential model that knows its input shape builds its graph on first use; do that now, as predict would.
  if (model instanceof Sequential && !model.built && model.inputs.length > 0) model.build();
  const found = batchNormLayersOf(model);
  const unbuilt = found.filter(b => !b.layer.built).map(b => describeLayer(b.layer, b.path));
  if (!model.built || unbuilt.length > 0) {
    throw new Error(`${fn}: model '${model.name}' is not built, so ${unbuilt.length > 0 ? `its layers ${unbuilt.join(', ')} have` : 'its layers have'} ` +
        `no weights yet; give its first layer an inputShape, or call model.build(shape) or model.predict once first`);
  }
  // read() itself throws a bare 'already disposed' for a disposed variable: look at the value it holds.
  const disposed = found.find(b => b.layer.weights.some(w => (w as unknown as {val: Tensor}).val.isDisposed));
  if (disposed != null) throw new Error(`${fn}: model '${model.name}' has been disposed (layer ${describeLayer(disposed.layer, disposed.path)} has no weights left)`);
  return model;
}
