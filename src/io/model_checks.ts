/**
 * Checks a layers model's artifacts (model.json topology, weight specs, weight bytes) BEFORE tfjs
 * builds the model from them. tfjs itself notices a bad file only halfway through loading, with
 * messages such as "Shape mismatch: [4] vs. [3]" that name neither layer nor weight, after
 * allocating every weight the topology declares (a hostile topology can declare gigabytes) and
 * leaking every tensor created up to that point. Checking first — the weight specs' structure,
 * their byte ranges against the data, and the topology's declared weights (learned without
 * allocating them, see declared_weights.ts) against the specs — gives errors that name the source,
 * the layer and the weight, and a failed load that leaves no tensor behind. The checks mirror
 * tfjs' strict loading (LayersModel.loadWeights): what passes them loads.
 */
import {io, serialization, tidy, util} from '@tensorflow/tfjs-core';
import type {LayersModel} from '@tensorflow/tfjs-layers';
import {buildDeclaredModel, DeclaredModel, DeclaredWeight} from './declared_weights';
import {checkUniqueWeightNames, checkWeightSpecs, describeJson, isObject, parseModelJson, weightSizeProblem} from './manifest_checks';

/** A layer entry of a model.json topology, in the snake_case ("pythonic") form tfjs and Keras write. */
export interface LayerEntry {
  class_name: string;
  config: {[key: string]: unknown};
}

type JsonObject = {[key: string]: unknown};

/** How many weights an error message lists before saying how many more there are. */
const MAX_LISTED = 10;

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

/**
 * The layers topology to check, or null for a graph model (tfjs-converter's GraphDef JSON), which
 * these checks do not cover. Throws when the topology is neither.
 */
function layersTopology(artifacts: io.ModelArtifacts, source: string): JsonObject | null {
  const topology: unknown = artifacts.modelTopology;
  if (artifacts.format === 'graph-model' || (isObject(topology) && Array.isArray(topology.node))) return null;
  if (!isObject(topology) || !isLayerEntry(modelConfigOf(topology))) {
    throw new Error(`${source}: 'modelTopology' is ${describeJson(topology)}, expected a layers-model topology ` +
        `(an object with 'class_name' and 'config')`);
  }
  return topology;
}

/** Throws a clear error naming the layer when a topology uses a class tfjs has no registration for. */
function checkClassesRegistered(topology: JsonObject, source: string): void {
  const registered = serialization.SerializationMap.getMap().classNameMap;
  forEachLayerEntry(topology, entry => {
    if (!Object.prototype.hasOwnProperty.call(registered, entry.class_name)) {
      const name = isObject(entry.config) && typeof entry.config.name === 'string' ? `'${entry.config.name}'` : '(unnamed)';
      throw new Error(`${source}: layer ${name} has class '${entry.class_name}', which is not registered with ` +
          `tf.serialization.registerClass (import the package that defines it before loading)`);
    }
  });
}

function isArrayBuffer(value: unknown): value is ArrayBuffer {
  // A tag test, not instanceof: buffers from another realm (Node's fs inside jest, a worker) count too.
  return Object.prototype.toString.call(value) === '[object ArrayBuffer]';
}

/** Checks weight specs and data against each other; returns the specs (none when absent). */
function checkWeightData(artifacts: io.ModelArtifacts, source: string): io.WeightsManifestEntry[] {
  const {weightSpecs, weightData} = artifacts;
  if (weightSpecs != null) {
    checkWeightSpecs(weightSpecs, `${source}: weight specs`);
    checkUniqueWeightNames(weightSpecs, source);
  }
  if (weightData == null) {
    if (weightSpecs != null && weightSpecs.length > 0) {
      throw new Error(`${source}: the weight specs list ${weightSpecs.length} weights, but there is no weight data`);
    }
    return [];
  }
  if (!isArrayBuffer(weightData) && !(Array.isArray(weightData) && weightData.every(isArrayBuffer))) {
    throw new Error(`${source}: 'weightData' is ${describeJson(weightData)}, expected an ArrayBuffer or a list of them`);
  }
  if (weightSpecs == null) throw new Error(`${source}: there is weight data but no weight specs describing it`);
  const problem = weightSizeProblem(`${source}: the weight data`, weightSpecs, new io.CompositeArrayBuffer(weightData).byteLength);
  if (problem != null) throw new Error(problem);
  return weightSpecs;
}

function describeOwner(w: DeclaredWeight): string {
  return `layer '${w.layer}' (${w.className}) weight '${w.weight}'`;
}

function listed(weights: DeclaredWeight[]): string {
  const more = weights.length > MAX_LISTED ? ` and ${weights.length - MAX_LISTED} more` : '';
  return weights.slice(0, MAX_LISTED).map(describeOwner).join(', ') + more;
}

/** The model weight a spec names, with tfjs' rule that TF >= 2.2 may insert a cell name before the weight name. */
function targetName(targets: Map<string, DeclaredWeight>, specName: string): string {
  if (targets.has(specName)) return specName;
  const tokens = specName.split('/');
  return tokens.slice(0, -2).concat(tokens.slice(-1)).join('/');
}

/**
 * Matches the model weights of the specs with the declared weights as tfjs' strict loadWeights
 * does — by original name, or `layer/<index>` for Keras 3 saves — and compares shapes and dtypes.
 */
function checkModelWeights(declared: DeclaredWeight[], specs: io.WeightsManifestEntry[], source: string): void {
  const modelSpecs = specs.filter(s => s.group !== 'optimizer');
  const lastToken = modelSpecs[0]?.name.split('/').pop() ?? '';
  const kerasV3 = modelSpecs.length > 0 && !isNaN(parseInt(lastToken, 10));
  const targets = new Map<string, DeclaredWeight>();
  for (const w of declared) {
    const key = kerasV3 ? w.kerasV3Name : w.originalName;
    const twin = targets.get(key);
    if (twin != null) throw new Error(`${source}: ${describeOwner(twin)} and ${describeOwner(w)} have the same name '${key}'`);
    targets.set(key, w);
  }
  for (const spec of modelSpecs) {
    const key = targetName(targets, spec.name);
    const target = targets.get(key);
    if (target == null) throw new Error(`${source}: the weights manifest has a weight '${spec.name}' that no layer of the model has`);
    if (!util.arraysEqual(target.shape as number[], spec.shape)) {
      throw new Error(`${source}: ${describeOwner(target)} has shape [${spec.shape}] in the weights manifest, ` +
          `but the layer expects [${target.shape}]`);
    }
    if (spec.dtype !== target.dtype) {
      throw new Error(`${source}: ${describeOwner(target)} has dtype ${spec.dtype} in the weights manifest, ` +
          `but the layer expects ${target.dtype}`);
    }
    targets.delete(key);
  }
  if (targets.size > 0) {
    const missing = [...targets.values()];
    throw new Error(modelSpecs.length === 0 && specs.length === 0 ?
        `${source}: there are no weights, but the model's layers have ${missing.length}: ${listed(missing)} ` +
        `(a topology without weights loads with tf.models.modelFromJSON)` :
        `${source}: the weights manifest has no value for ${listed(missing)}`);
  }
}

/**
 * Optimizer state (`includeOptimizer` saves): tfjs reads the first entry as the iteration count
 * and assigns the others without checking shapes, so a wrong one surfaces at the next training
 * step. Each accumulator is named after its variable (`conv/kernel/m`, or `conv/kernel_1/m` when
 * the saving process had made several models); those whose variable is recognizable must have its shape.
 */
function checkOptimizerWeights(declared: DeclaredWeight[], specs: io.WeightsManifestEntry[], source: string): void {
  const state = specs.filter(s => s.group === 'optimizer');
  if (state.length === 0) return;
  if (state[0].name !== 'iter' || state[0].shape.length !== 0) {
    throw new Error(`${source}: the first optimizer weight is '${state[0].name}' of shape [${state[0].shape}], ` +
        `expected the iteration count 'iter' (a scalar)`);
  }
  const trainable = declared.filter(w => w.trainable);
  for (const spec of state.slice(1)) {
    const variable = spec.name.slice(0, spec.name.lastIndexOf('/'));
    const target = trainable.find(w => w.originalName === variable) ??
        trainable.find(w => variable.startsWith(`${w.originalName}_`) && /^\d+$/.test(variable.slice(w.originalName.length + 1)));
    if (target != null && !util.arraysEqual(target.shape as number[], spec.shape)) {
      throw new Error(`${source}: optimizer weight '${spec.name}' has shape [${spec.shape}] in the weights manifest, ` +
          `but it belongs to ${describeOwner(target)}, of shape [${target.shape}]`);
    }
  }
}

/** What tfjs applies after building: the training config (compile) and user metadata. Tried on the placeholder model. */
function checkTrainingSettings(declared: DeclaredModel, artifacts: io.ModelArtifacts, source: string): void {
  const {trainingConfig, userDefinedMetadata} = artifacts;
  try {
    // tfjs-core and tfjs-layers type the same JSON differently; loadLayersModel passes it the same way.
    if (trainingConfig != null) tidy(() => declared.model.loadTrainingConfig(trainingConfig as Parameters<LayersModel['loadTrainingConfig']>[0]));
  } catch (e) {
    throw new Error(`${source}: 'trainingConfig' cannot be applied: ${(e as Error).message}`);
  }
  try {
    if (userDefinedMetadata != null) declared.model.setUserDefinedMetadata(userDefinedMetadata);
  } catch (e) {
    throw new Error(`${source}: 'userDefinedMetadata' cannot be applied: ${(e as Error).message}`);
  }
}

/**
 * Checks model artifacts against themselves and against the model they describe: the weight
 * specs' structure and unique names, the data's size, registered layer classes, and every
 * weight's name, shape and dtype against what the topology declares, then the training config.
 * Allocates no weight of the model, and creates no tensor that outlives the call. `source` names
 * the origin in error messages (e.g. the file path).
 */
export async function checkModelArtifacts(artifacts: io.ModelArtifacts, source: string): Promise<void> {
  if (!isObject(artifacts)) throw new Error(`${source}: the handler returned ${describeJson(artifacts)}, expected model artifacts`);
  const specs = checkWeightData(artifacts, source);
  const topology = layersTopology(artifacts, source);
  if (topology == null) return;
  checkClassesRegistered(topology, source);
  const declared = await buildDeclaredModel(topology, source);
  try {
    checkModelWeights(declared.weights, specs, source);
    checkOptimizerWeights(declared.weights, specs, source);
    checkTrainingSettings(declared, artifacts, source);
  } finally {
    declared.dispose();
  }
}

/** The one handler tf.io's routers give for a URL (save or load); throws, naming `fn`, otherwise. */
export function soleHandler(fn: string, url: string, kind: 'save' | 'load', loadOptions?: io.LoadOptions): io.IOHandler {
  const handlers = kind === 'save' ? io.getSaveHandlers(url) : io.getLoadHandlers(url, loadOptions);
  if (handlers.length !== 1) {
    throw new Error(`${fn}: found ${handlers.length} ${kind} handlers for '${url}', expected exactly one`);
  }
  return handlers[0];
}

/**
 * A fetch that checks model.json (`modelUrl`) before tfjs' HTTP loader reads it: tfjs indexes
 * into the weights manifest unchecked. Other requests (the weights) pass through.
 */
function checkingFetch(modelUrl: string, fetchFunc: typeof fetch): typeof fetch {
  return async (input, init) => {
    const response = await fetchFunc(input, init);
    if (input !== modelUrl || !response.ok) return response;
    const modelJson = parseModelJson(await response.text(), modelUrl);
    // Parsed here, so the objects tfjs reads are the ones checked (and of this realm).
    return Object.assign(response, {json: async () => modelJson});
  };
}

/**
 * Wraps a load handler (or a URL that tf.io resolves to one) so that tf.loadLayersModel receives
 * only artifacts that passed checkModelArtifacts. For http(s) URLs, model.json is also checked
 * before tfjs' HTTP loader reads its manifest; `loadOptions` (fetchFunc, requestInit, …) go to
 * that loader.
 */
export function checkedLoader(handlerOrUrl: string | io.IOHandler, loadOptions?: io.LoadOptions): io.IOHandler {
  let inner: io.IOHandler;
  if (typeof handlerOrUrl !== 'string') {
    inner = handlerOrUrl;
  } else if (io.isHTTPScheme(handlerOrUrl)) {
    const fetchFunc = loadOptions?.fetchFunc ?? (typeof fetch === 'undefined' ? undefined : fetch);
    if (fetchFunc == null) throw new Error(`checkedLoader: no fetch in this environment for ${handlerOrUrl}; pass loadOptions.fetchFunc`);
    inner = io.http(handlerOrUrl, {...loadOptions, fetchFunc: checkingFetch(handlerOrUrl, fetchFunc)});
  } else {
    inner = soleHandler('checkedLoader', handlerOrUrl, 'load', loadOptions);
  }
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
