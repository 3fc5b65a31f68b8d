/**
 * Checks a layers model's artifacts (model.json topology, weight specs, weight bytes) BEFORE tfjs
 * builds the model from them. tfjs itself only notices a bad file halfway through loading, with
 * messages such as "Shape mismatch: [4] vs. [3]" that name neither layer nor weight, and it leaks
 * every tensor created up to that point. Checking first gives errors that name the file, the layer
 * and the weight, and a failed load that leaves no tensor behind.
 */
import {DataType, io, serialization, util} from '@tensorflow/tfjs-core';
import {LayerVariable, LayersModel, ModelAndWeightsConfig, models} from '@tensorflow/tfjs-layers';

/** A layer entry of a model.json topology, in the snake_case ("pythonic") form tfjs and Keras write. */
export interface LayerEntry {
  class_name: string;
  config: {[key: string]: unknown};
}

type JsonObject = {[key: string]: unknown};

function isObject(value: unknown): value is JsonObject {
  return value != null && typeof value === 'object' && !Array.isArray(value);
}

function isLayerEntry(value: unknown): value is LayerEntry {
  return isObject(value) && typeof value.class_name === 'string';
}

/** The model config of a topology: Keras' full-model JSON wraps it in `model_config`. */
function modelConfigOf(topology: JsonObject): JsonObject {
  return isObject(topology.model_config) ? topology.model_config : topology;
}

/**
 * Calls `visit` on every layer entry of a layers-model topology, depth first, including the layers
 * of nested models and the layers/cells wrapped by TimeDistributed, Bidirectional and RNN layers.
 */
export function forEachLayerEntry(topology: unknown, visit: (entry: LayerEntry) => void): void {
  const walk = (entry: unknown): void => {
    if (!isLayerEntry(entry)) return;
    visit(entry);
    const config: unknown = entry.config;
    // Sequential configs from old Keras versions are a bare list of layers.
    const children = Array.isArray(config) ? config :
        isObject(config) ? [config.layers, config.layer, config.cell, config.cells].flat() : [];
    children.forEach(walk);
  };
  if (isObject(topology)) walk(modelConfigOf(topology));
}

/** Whether the artifacts describe a layers model (as opposed to a converted graph model). */
function isLayersTopology(artifacts: io.ModelArtifacts): artifacts is io.ModelArtifacts & {modelTopology: JsonObject} {
  if (artifacts.format === 'graph-model') return false;
  const topology = artifacts.modelTopology;
  return isObject(topology) && isLayerEntry(modelConfigOf(topology));
}

// Bytes per stored element of quantized weights (tfjs-converter's --quantize options).
const QUANTIZED_BYTES: {[dtype: string]: number} = {uint8: 1, uint16: 2, float16: 2};

/** Bytes a weight occupies in a weights file, or null for string weights (variable length). */
function storedBytes(spec: io.WeightsManifestEntry): number | null {
  if (spec.dtype === 'string') return null;
  const perElement = spec.quantization != null ? QUANTIZED_BYTES[spec.quantization.dtype] :
      util.bytesPerElement(spec.dtype as DataType);
  return util.sizeFromShape(spec.shape) * perElement;
}

/** Where each weight lies in the concatenated weight data, or null when a string weight makes that unknowable. */
function weightByteRanges(specs: io.WeightsManifestEntry[]): {name: string, end: number}[] | null {
  let end = 0;
  const ranges: {name: string, end: number}[] = [];
  for (const spec of specs) {
    const bytes = storedBytes(spec);
    if (bytes == null) return null;
    end += bytes;
    ranges.push({name: spec.name, end});
  }
  return ranges;
}

/**
 * The error for weight data whose size does not match its specs: names where the data came from,
 * both byte counts and the weights that the data does not (fully) hold.
 */
export function weightSizeProblem(where: string, specs: io.WeightsManifestEntry[], actualBytes: number): string | null {
  const ranges = weightByteRanges(specs);
  if (ranges == null) return null;
  const expected = ranges.length === 0 ? 0 : ranges[ranges.length - 1].end;
  if (expected === actualBytes) return null;
  if (actualBytes > expected) {
    return `${where} holds ${actualBytes} bytes but the weights manifest describes ${expected} bytes ` +
        `(${specs.length} weights): the weights file does not belong to this model.json`;
  }
  const affected = ranges.filter(r => r.end > actualBytes).map(r => r.name);
  return `${where} holds ${actualBytes} bytes but the weights manifest needs ${expected} bytes; ` +
      `missing or truncated weights: ${affected.join(', ')}`;
}

/** Throws a clear error naming the layer when a topology uses a class tfjs has no registration for. */
function checkClassesRegistered(topology: JsonObject, source: string): void {
  const registered = serialization.SerializationMap.getMap().classNameMap;
  forEachLayerEntry(topology, entry => {
    if (registered[entry.class_name] == null) {
      const name = isObject(entry.config) && typeof entry.config.name === 'string' ? `'${entry.config.name}'` : '(unnamed)';
      throw new Error(`${source}: layer ${name} has class '${entry.class_name}', which is not registered with ` +
          `tf.serialization.registerClass (import the package that defines it before loading)`);
    }
  });
}

/**
 * A copy of the topology whose initializers are all Zeros: building it only allocates the weights
 * (like tfjs' own fast weight initialization) instead of running e.g. orthogonal initializers whose
 * values would be thrown away.
 */
function withZeroInitializers(topology: JsonObject): ModelAndWeightsConfig['modelTopology'] {
  return JSON.parse(JSON.stringify(topology), (key, value: unknown) =>
      /_initializer$/.test(key) && isLayerEntry(value) ? {class_name: 'Zeros', config: {}} : value) as ModelAndWeightsConfig['modelTopology'];
}

interface WeightOwner {
  layer: string;
  className: string;
  weight: string;
  shape: number[];
}

/** Every weight of the model by original name, with the innermost layer that owns it. */
function weightOwners(model: LayersModel): Map<string, WeightOwner> {
  const owners = new Map<string, WeightOwner>();
  const visit = (layers: LayersModel['layers']) => {
    for (const layer of layers) {
      if (layer instanceof LayersModel) {
        visit(layer.layers);
        continue;
      }
      for (const w of layer.weights as LayerVariable[]) {
        const weight = w.originalName.slice(w.originalName.lastIndexOf('/') + 1);
        owners.set(w.originalName, {layer: layer.name, className: layer.getClassName(), weight, shape: w.shape as number[]});
      }
    }
  };
  visit(model.layers);
  return owners;
}

/** The model weight a spec name refers to, with tfjs' rule that TF >= 2.2 may insert a cell name. */
function ownerOf(owners: Map<string, WeightOwner>, specName: string): [string, WeightOwner] | undefined {
  const tokens = specName.split('/');
  for (const name of [specName, tokens.slice(0, -2).concat(tokens.slice(-1)).join('/')]) {
    const owner = owners.get(name);
    if (owner != null) return [name, owner];
  }
  return undefined;
}

/** Builds the model from the topology (zeros only) and compares its weights with the specs. */
async function checkWeightsFitModel(topology: JsonObject, specs: io.WeightsManifestEntry[], source: string): Promise<void> {
  const model = await models.modelFromJSON({modelTopology: withZeroInitializers(topology)});
  try {
    const owners = weightOwners(model);
    for (const spec of specs) {
      if (spec.group === 'optimizer') continue;
      const found = ownerOf(owners, spec.name);
      if (found == null) {
        throw new Error(`${source}: the weights manifest has a weight '${spec.name}' that no layer of the model has`);
      }
      const [name, owner] = found;
      if (!util.arraysEqual(owner.shape, spec.shape)) {
        throw new Error(`${source}: layer '${owner.layer}' (${owner.className}) weight '${owner.weight}' has shape ` +
            `[${spec.shape}] in the weights manifest, but the layer expects [${owner.shape}]`);
      }
      owners.delete(name);
    }
    const missing = [...owners.values()];
    if (missing.length > 0) {
      throw new Error(`${source}: the weights manifest has no value for ` +
          missing.map(o => `layer '${o.layer}' (${o.className}) weight '${o.weight}'`).join(', '));
    }
  } finally {
    model.dispose();
  }
}

/**
 * Checks model artifacts against themselves and against the model they describe: registered layer
 * classes, weight data size, and every weight's name and shape. Creates no tensor that outlives
 * the call. `source` names the origin in error messages (e.g. the file path).
 */
export async function checkModelArtifacts(artifacts: io.ModelArtifacts, source: string): Promise<void> {
  const specs = artifacts.weightSpecs ?? [];
  if (artifacts.weightData != null) {
    const bytes = new io.CompositeArrayBuffer(artifacts.weightData).byteLength;
    const problem = weightSizeProblem(`the weight data of ${source}`, specs, bytes);
    if (problem != null) throw new Error(problem);
  }
  if (!isLayersTopology(artifacts)) return;
  checkClassesRegistered(artifacts.modelTopology, source);
  if (artifacts.weightData != null) await checkWeightsFitModel(artifacts.modelTopology, specs, source);
}

/** The one handler tf.io's routers give for a URL (save or load); throws, naming `fn`, otherwise. */
export function soleHandler(fn: string, url: string, kind: 'save' | 'load'): io.IOHandler {
  const handlers = kind === 'save' ? io.getSaveHandlers(url) : io.getLoadHandlers(url);
  if (handlers.length !== 1) {
    throw new Error(`${fn}: found ${handlers.length} ${kind} handlers for '${url}', expected exactly one`);
  }
  return handlers[0];
}

/**
 * Wraps a load handler (or a URL that tf.io resolves to one) so that tf.loadLayersModel receives
 * only artifacts that passed checkModelArtifacts.
 */
export function checkedLoader(handlerOrUrl: string | io.IOHandler): io.IOHandler {
  const inner = typeof handlerOrUrl === 'string' ? soleHandler('checkedLoader', handlerOrUrl, 'load') : handlerOrUrl;
  const source = typeof handlerOrUrl === 'string' ? handlerOrUrl : 'the loaded model';
  if (inner.load == null) throw new Error(`checkedLoader: the handler for ${source} cannot load (it has no load method)`);
  const load = inner.load.bind(inner);
  return {
    load: async () => {
      const artifacts = await load();
      await checkModelArtifacts(artifacts, source);
      return artifacts;
    },
  };
}
