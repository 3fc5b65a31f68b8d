/**
 * Which batch-norm layers of a model can be folded into the layer before them, and why each other
 * one cannot. Read from the live model's graph (nodes, not names), nested models included.
 *
 * A batch norm folds when, in inference, it is exactly a per-channel affine map of the output of a
 * layer whose weights can absorb that map without changing anything else: its only input is the
 * output of a Dense/Conv layer with a linear activation, that output goes nowhere else, neither
 * layer is shared, and the batch norm's channel axis is that layer's channel axis.
 */
import {LayersModel, layers} from '@tensorflow/tfjs-layers';
import type {Node} from '@tensorflow/tfjs-layers/dist/engine/topology';
import {channelAxesOf, describeLayer, isBatchNormLayer, isNestedModel, usesBatchStatisticsAtInference} from './batch_norm_layers';
import {FOLD_TARGET_CLASSES, foldTargetOf, outputChannelAxis, tfjsLimitation} from './fold_targets';

type Layer = layers.Layer;

/** A batch norm that folds into `into`, inside the container `container`. */
export interface FoldPair {
  batchNorm: Layer;
  into: Layer;
  container: LayersModel;
  /** Names of the nested models leading to the container, '/'-joined and ending in '/' ('' at the top). */
  path: string;
  /** Which output of `into` the batch norm reads (0 for every layer this folds into). */
  tensorIndex: number;
}

/** A batch norm left in place, and why. */
export interface KeptBatchNorm {
  layer: string;
  reason: string;
}

/** The whole plan for a model. */
export interface FoldPlan {
  pairs: FoldPair[];
  kept: KeptBatchNorm[];
}

/** The container's own nodes (a layer shared with other models has nodes outside it too). */
function containerNodes(container: LayersModel): Node[] {
  return Object.values(container.nodesByDepth).flat();
}

/** Nodes of the container that call `layer`. */
function callsOf(nodes: Node[], layer: Layer): Node[] {
  return nodes.filter(n => n.outboundLayer === layer);
}

/** Names of the layers (in the container) that read output (layer, nodeIndex, tensorIndex), plus '(model output)'. */
function readersOf(container: LayersModel, nodes: Node[], layer: Layer, nodeIndex: number, tensorIndex: number): string[] {
  const readers = nodes.filter(n => n.inboundLayers.some((l, i) =>
    l === layer && n.nodeIndices[i] === nodeIndex && n.tensorIndices[i] === tensorIndex)).map(n => `'${n.outboundLayer.name}'`);
  const isOutput = container.outputLayers.some((l, i) =>
    l === layer && container.outputLayersNodeIndices[i] === nodeIndex && container.outputLayersTensorIndices[i] === tensorIndex);
  return isOutput ? [...readers, 'the model output'] : readers;
}

/** Why `batchNorm` cannot fold into the layer before it, or the pair when it can. */
function planOne(batchNorm: Layer, container: LayersModel, nodes: Node[], path: string): FoldPair | string {
  const calls = callsOf(nodes, batchNorm);
  if (calls.length !== 1) return `it is shared: called at ${calls.length} places in the model`;
  if (usesBatchStatisticsAtInference(batchNorm)) {
    return 'it normalizes with batch statistics at inference (inferenceStatistics \'batch\' or a call-site training: true), ' +
        'which is not a fixed affine map';
  }
  const node = calls[0];
  const into = node.inboundLayers[0];
  const nodeIndex = node.nodeIndices[0];
  const tensorIndex = node.tensorIndices[0];
  const from = `its input comes from ${describeLayer(into, path)}`;
  if (into.getClassName() === 'InputLayer') return 'its input is a model input, not the output of a layer';
  const target = foldTargetOf(into);
  if (target == null) {
    return `${from}, ${isNestedModel(into) ? 'a nested model' : 'which is not one of ' + FOLD_TARGET_CLASSES.join(', ')}`;
  }
  const activation = into.getConfig().activation;
  if (activation !== 'linear') return `${from}, whose activation is '${String(activation)}', not linear`;
  const intoCalls = callsOf(nodes, into);
  if (intoCalls.length !== 1) return `${from}, which is shared: called at ${intoCalls.length} places in the model`;
  const readers = readersOf(container, nodes, into, nodeIndex, tensorIndex);
  if (readers.length !== 1) return `${from}, whose output also goes to ${readers.filter(r => r !== `'${batchNorm.name}'`).join(', ')}`;
  const limitation = tfjsLimitation(into);
  if (limitation != null) return `${from}: ${limitation}`;
  const rank = node.inputTensors[0].shape.length;
  const axes = channelAxesOf(batchNorm, rank);
  const channelAxis = outputChannelAxis(into, target, rank);
  if (axes.length !== 1 || axes[0] !== channelAxis) {
    return `its channel ${axes.length === 1 ? 'axis' : 'axes'} (${axes.join(', ')} of rank ${rank}) ` +
        `${axes.length === 1 ? 'is' : 'are'} not the output-channel axis (${channelAxis}) of ${describeLayer(into, path)}`;
  }
  return {batchNorm, into, container, path, tensorIndex};
}

/** Plans every batch norm of `model`, nested models included; never changes the model. */
export function planFold(model: LayersModel): FoldPlan {
  const plan: FoldPlan = {pairs: [], kept: []};
  const walk = (container: LayersModel, path: string): void => {
    const nodes = containerNodes(container);
    for (const layer of container.layers) {
      if (isNestedModel(layer)) walk(layer, `${path}${layer.name}/`);
      if (!isBatchNormLayer(layer)) continue;
      const result = planOne(layer, container, nodes, path);
      if (typeof result === 'string') plan.kept.push({layer: `${path}${layer.name}`, reason: result});
      else plan.pairs.push(result);
    }
  };
  walk(model, '');
  return plan;
}
