/**
 * Keras's call-site `training` argument (`BatchNormalization()(x, training=True)`, as in pix2pix
 * generators) and the layer option that says the same thing for models built in tfjs.
 *
 * Keras writes a call-site argument into the functional model's config, as the kwargs of the layer's
 * inbound node. tfjs-layers reads those kwargs back (Container.fromConfig hands them to `apply`,
 * which keeps them as the node's `callArgs`) and writes them out again on save, but at predict time
 * its executor calls every layer with the model's own `{training: false}`, so the layer has to look
 * at its nodes itself. The executor does not say which node is being run, so a layer called at
 * several call sites that disagree cannot be honored: that is refused, naming the layer.
 */
import type {layers} from '@tensorflow/tfjs-layers';

/** Which statistics a batch-norm layer normalizes with in inference (predict, evaluate, plain apply). */
export type InferenceStatistics = 'moving' | 'batch';

/** The config key of the option in model.json (tfjs writes camelCase config keys as snake_case). */
export const INFERENCE_STATISTICS_KEY = 'inference_statistics';

/**
 * The `training` value given at the layer's call sites (the kwargs of its inbound nodes), or
 * undefined when none gives one. Throws, naming the layer, when call sites disagree.
 */
export function callSiteTraining(layer: layers.Layer): boolean | undefined {
  // null (Python None) means no argument, as in Keras.
  const values = new Set(layer.inboundNodes.map(node => {
    const value = node.callArgs?.training;
    return value == null ? undefined : Boolean(value);
  }));
  if (values.size > 1) {
    const seen = [...values].map(v => (v === undefined ? 'no training argument' : `training: ${v}`)).join(', ');
    throw new Error(`layer '${layer.name}' is called at ${layer.inboundNodes.length} call sites with different ` +
        `'training' arguments (${seen}); tfjs runs every call of a layer the same way, so this cannot be honored`);
  }
  return values.values().next().value;
}

/**
 * For stockFormat: the stock BatchNormalization (tfjs and Keras) has no `inference_statistics` key,
 * so `'batch'` is written the Keras way, as `training: true` in the kwargs of every inbound node of
 * the layer (which this package reads back as the same behavior). A Sequential model has no nodes
 * in its config, so there it cannot be expressed: refused, naming the layer. Edits `entry` in place.
 */
export function inferenceStatisticsToCallSite(entry: {config: {[key: string]: unknown}; inbound_nodes?: unknown}): void {
  const value = entry.config[INFERENCE_STATISTICS_KEY];
  delete entry.config[INFERENCE_STATISTICS_KEY];
  if (value !== 'batch') return;
  if (!Array.isArray(entry.inbound_nodes) || entry.inbound_nodes.length === 0) {
    throw new Error(`stockFormat: layer '${String(entry.config.name)}' has inferenceStatistics: 'batch', which the stock ` +
        `BatchNormalization format can only express as a call-site training argument, and this model's config has no call ` +
        `sites (a Sequential model); build the model with the functional API, or save it without stockFormat`);
  }
  // Keras 2 node format: a list of [layer name, node index, tensor index, kwargs] per input.
  for (const node of entry.inbound_nodes as unknown[][][]) {
    for (const input of node) input[3] = {...(input[3] as object | undefined), training: true};
  }
}
