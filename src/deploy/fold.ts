/**
 * foldBatchNorm: a copy of a trained model with each foldable batch-norm layer merged into the
 * Dense/Conv layer before it (see fold_plan.ts for which fold and fold_weights.ts for the math).
 *
 * The copy is made the way a save and a load make one: the model's JSON topology, with the folded
 * batch norms removed and their readers wired to the layer before them, and the model's named
 * weights, with the folded layers' kernel and bias replaced, loaded through tf.io.fromMemory. So the
 * copy is exactly what any handler would save, it shares nothing with the original, and a model
 * whose batch norms all folded is plain tfjs: it loads and predicts without this package.
 */
import {io, NamedTensorMap, Tensor, tensor} from '@tensorflow/tfjs-core';
import {LayersModel, LayerVariable, loadLayersModel} from '@tensorflow/tfjs-layers';
import {checkBuiltModel, weightNamed} from './batch_norm_layers';
import {FoldPair, FoldPlan, KeptBatchNorm, planFold} from './fold_plan';
import {completeConfig, foldTargetOf} from './fold_targets';
import {foldedWeights} from './fold_weights';

type Json = {[key: string]: unknown};

/** A layer entry of a topology: `name` and `inbound_nodes` only in functional models. */
interface LayerEntry {
  class_name: string;
  config: Json;
  inbound_nodes?: unknown[][][];
}

/** What foldBatchNorm did: every batch-norm layer is in exactly one of the two lists. */
export interface FoldReport {
  /** Folded batch norms and the layer each was merged into ('nested/name' inside nested models). */
  folded: Array<{layer: string; into: string}>;
  /** Batch norms left in place, and why. */
  kept: KeptBatchNorm[];
}

/** foldBatchNorm's options. */
export interface FoldOptions {
  /** Also return a report of what was folded and why every other batch-norm layer was not. */
  report?: boolean;
}

/** Rewrites one container's JSON (in place): folded batch norms out, their readers wired to the layer before them. */
function rewriteContainer(json: {class_name: string; config: Json}, container: LayersModel, pairs: FoldPair[]): void {
  const mine = pairs.filter(p => p.container === container);
  const replaced = new Map(mine.map(p => [p.batchNorm.name, p]));
  const into = new Map(mine.map(p => [p.into.name, foldTargetOf(p.into)]));
  const entries = (json.config.layers as LayerEntry[]).filter(e => !replaced.has(e.config.name as string));
  json.config.layers = entries;
  // [layer name, node index, tensor index(, kwargs)]: the layer before a folded batch norm is called once in
  // this container, so its only node has index 0 in the config (tfjs renumbers the nodes a config keeps).
  const rewire = (ref: unknown[]): void => {
    const pair = replaced.get(ref[0] as string);
    if (pair == null) return;
    ref[0] = pair.into.name;
    ref[1] = 0;
    ref[2] = pair.tensorIndex;
  };
  for (const entry of entries) {
    const name = entry.config.name as string;
    if (into.has(name)) {
      entry.config.use_bias = true;
      for (const key of into.get(name)?.constraints ?? []) entry.config[key] = null;
    }
    for (const node of entry.inbound_nodes ?? []) node.forEach(rewire);
    const layer = container.getLayer(name);
    completeConfig(entry, layer);
    if (layer instanceof LayersModel) rewriteContainer(entry, layer, pairs);
  }
  for (const ref of (json.config.output_layers as unknown[][] | undefined) ?? []) rewire(ref);
}

/** The model's named weights with the folds applied (new tensors are added to `created`). */
function foldedNamedWeights(model: LayersModel, pairs: FoldPair[], created: Tensor[]): NamedTensorMap {
  const dropped = new Set<LayerVariable>(pairs.flatMap(p => p.batchNorm.weights));
  const replacements = new Map<LayerVariable, Array<[string, Tensor]>>();
  for (const {batchNorm, into} of pairs) {
    const folded = foldedWeights(batchNorm, into);
    const kernel = weightNamed(into, folded.kernelName) as LayerVariable;
    const bias = weightNamed(into, 'bias');
    const kernelTensor = tensor(folded.kernel, folded.kernelShape);
    const biasTensor = tensor(folded.bias, [folded.bias.length]);
    created.push(kernelTensor, biasTensor);
    const biasName = kernel.originalName.replace(/[^/]*$/, 'bias');
    if (bias == null) {
      replacements.set(kernel, [[kernel.originalName, kernelTensor], [biasName, biasTensor]]);
    } else {
      replacements.set(kernel, [[kernel.originalName, kernelTensor]]);
      replacements.set(bias, [[bias.originalName, biasTensor]]);
    }
  }
  const named: NamedTensorMap = {};
  for (const w of model.weights) {
    if (dropped.has(w)) continue;
    for (const [name, value] of replacements.get(w) ?? [[w.originalName, w.read()]]) named[name] = value;
  }
  return named;
}

function reportOf(plan: FoldPlan): FoldReport {
  return {folded: plan.pairs.map(p => ({layer: `${p.path}${p.batchNorm.name}`, into: `${p.path}${p.into.name}`})), kept: plan.kept};
}

/**
 * A new model computing what `model` computes in inference, with every batch-norm layer (BatchNorm
 * or the stock BatchNormalization) that directly follows a Conv1D/2D/3D, Conv2D/3DTranspose,
 * DepthwiseConv2D, SeparableConv2D or Dense layer with a linear activation and no other reader
 * merged into that layer's kernel and bias (a bias is added where it had none). Everything else is
 * copied unchanged; layer names are kept. `model` is not modified. Asynchronous because the copy is
 * loaded the way tf.loadLayersModel loads.
 *
 * With `{report: true}`, also says which layers were folded and why each other one was not.
 */
export async function foldBatchNorm(model: LayersModel): Promise<LayersModel>;
export async function foldBatchNorm(model: LayersModel, options: FoldOptions & {report: true}): Promise<{model: LayersModel; report: FoldReport}>;
export async function foldBatchNorm(model: LayersModel, options?: FoldOptions): Promise<LayersModel | {model: LayersModel; report: FoldReport}>;
export async function foldBatchNorm(model: LayersModel, options: FoldOptions = {}): Promise<LayersModel | {model: LayersModel; report: FoldReport}> {
  checkBuiltModel('foldBatchNorm', model);
  const plan = planFold(model);
  const topology = model.toJSON(null, false) as {class_name: string; config: Json};
  rewriteContainer(topology, model, plan.pairs);
  const created: Tensor[] = [];
  let weights: {data: ArrayBuffer; specs: io.WeightsManifestEntry[]};
  try {
    weights = await io.encodeWeights(foldedNamedWeights(model, plan.pairs, created));
  } finally {
    created.forEach(t => t.dispose());
  }
  const folded = await loadLayersModel(io.fromMemory({modelTopology: topology, weightSpecs: weights.specs, weightData: weights.data}));
  return options.report === true ? {model: folded, report: reportOf(plan)} : folded;
}

export type {KeptBatchNorm};
