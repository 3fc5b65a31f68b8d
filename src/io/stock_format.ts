/**
 * Interop with models that use the stock tfjs / Keras `BatchNormalization` layer, both ways:
 * loading them with BatchNorm in its place, and saving BatchNorm models in the stock format.
 * BatchNorm's config keys and weights are the stock ones (Keras' for renorm and ghost batches), so
 * the two formats differ only in the class name, and in what the stock format cannot hold: an axis
 * list, a renormClipping schedule.
 */
import {io, serialization} from '@tensorflow/tfjs-core';
import {inferenceStatisticsToCallSite} from '../deploy/call_site_training';
import {BatchNorm} from '../layers/batch_norm';
import {unshiftKeras2GhostAxis} from '../layers/ghost';
import {hasSchedule, RenormClipping} from '../layers/renorm_clipping';
import {forEachLayerEntry, LayerEntry, soleHandler} from './model_checks';

const STOCK_CLASS_NAME = 'BatchNormalization';

/**
 * BatchNorm from a stock 'BatchNormalization' config. Keras 2 writes a ghost-batch layer's axes
 * shifted by one (see unshiftKeras2GhostAxis); they are shifted back, everything else is as given.
 */
const fromStockConfig: serialization.FromConfigMethod<serialization.Serializable> = (cls, config) =>
  BatchNorm.fromConfig(cls, {...config, axis: unshiftKeras2GhostAxis(config.axis, config.virtualBatchSize) as serialization.ConfigDictValue});

/**
 * The registry entry replaceBuiltinBatchNormalization installs: the [class, fromConfig] pair
 * registerClass stores for BatchNorm, with Keras 2's ghost-batch axes read back.
 */
const REPLACEMENT: [typeof BatchNorm, typeof fromStockConfig] = [BatchNorm, fromStockConfig];

/**
 * The replacements in effect and what the registry held before the first of them. The stock
 * entry comes back when the last one is undone, whatever the order of the undo calls.
 */
const replacements = {active: new Set<object>(), hadEntry: false, previous: undefined as unknown};

/**
 * Makes deserialization (tf.loadLayersModel, tf.models.modelFromJSON, …) build BatchNorm for
 * 'BatchNormalization' entries, e.g. in models saved by stock tfjs or converted from Keras.
 * Returns a function that undoes this call; once every call is undone (in any order) the stock
 * registration is restored exactly. Calling an undo function again does nothing.
 */
export function replaceBuiltinBatchNormalization(): () => void {
  const classNameMap = serialization.SerializationMap.getMap().classNameMap as {[name: string]: unknown};
  if (replacements.active.size === 0) {
    replacements.hadEntry = Object.prototype.hasOwnProperty.call(classNameMap, STOCK_CLASS_NAME);
    replacements.previous = classNameMap[STOCK_CLASS_NAME];
  }
  classNameMap[STOCK_CLASS_NAME] = REPLACEMENT;
  const token = {};
  replacements.active.add(token);
  return () => {
    if (!replacements.active.delete(token) || replacements.active.size > 0) return;
    // Someone else re-registered the class meanwhile: theirs stays.
    if (classNameMap[STOCK_CLASS_NAME] !== REPLACEMENT) return;
    if (replacements.hadEntry) classNameMap[STOCK_CLASS_NAME] = replacements.previous;
    else delete classNameMap[STOCK_CLASS_NAME];
  };
}

/** Rewrites one BatchNorm entry of a topology (in place) into the stock form, or says why it cannot. */
function toStockEntry(entry: LayerEntry): void {
  const config = entry.config;
  const axis = config.axis;
  if (Array.isArray(axis)) {
    if (axis.length !== 1) {
      throw new Error(`stockFormat: layer '${String(config.name)}' (BatchNorm) has axis [${axis.join(', ')}], which the ` +
          `stock BatchNormalization format cannot express (it takes a single integer axis); save this model ` +
          `without stockFormat, and load it with this package imported`);
    }
    config.axis = axis[0];
  }
  // Numbers are Keras' renorm_clipping; the relaxation schedule (ramps) is this package's own.
  if (config.renorm_clipping != null && hasSchedule(config.renorm_clipping as RenormClipping)) {
    throw new Error(`stockFormat: layer '${String(config.name)}' (BatchNorm) has a renormClipping schedule ` +
        `(${JSON.stringify(config.renorm_clipping)}), which neither Keras nor stock tfjs can represent (Keras takes numbers); ` +
        `save this model without stockFormat, or give the current bounds as numbers`);
  }
  inferenceStatisticsToCallSite(entry);
  entry.class_name = STOCK_CLASS_NAME;
}

/**
 * The artifacts with every BatchNorm layer written as a stock BatchNormalization layer (a deep
 * copy; the argument is left as it was). Throws, naming the layer and the option, when a layer
 * uses an option the stock format cannot express.
 */
export function toStockArtifacts(artifacts: io.ModelArtifacts): io.ModelArtifacts {
  if (artifacts.modelTopology == null || artifacts.modelTopology instanceof ArrayBuffer) return artifacts;
  const topology = JSON.parse(JSON.stringify(artifacts.modelTopology)) as {};
  forEachLayerEntry(topology, entry => {
    if (entry.class_name === BatchNorm.className) toStockEntry(entry);
  });
  return {...artifacts, modelTopology: topology};
}

/**
 * A save handler that writes BatchNorm layers as stock `BatchNormalization` layers, so stock tfjs
 * (without this package) and the Keras converter can read the model, then saves through `target`
 * (an IOHandler or a URL such as 'file://dir', 'http://…', 'indexeddb://…').
 * Usage: `await model.save(stockFormat('file://./my-model'))`.
 */
export function stockFormat(target: string | io.IOHandler): io.IOHandler {
  const inner = typeof target === 'string' ? soleHandler('stockFormat', target, 'save') : target;
  if (inner.save == null) throw new Error('stockFormat: the handler given cannot save (it has no save method)');
  const save = inner.save.bind(inner);
  return {save: async artifacts => save(toStockArtifacts(artifacts))};
}
