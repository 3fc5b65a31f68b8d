/**
 * What a kernel call saves for its gradient, decided per call.
 *
 * tfjs reads a registered gradient's `inputsToSave` and `outputsToSave` at every kernel call made
 * while a gradient tape records (engine.getTensorsForGradient), as fixed lists: each named input is
 * cloned and kept for the backward pass — and an input that is absent crashes the engine, which
 * clones `undefined` (tfjs 4.22's own tf.batchNorm fails so under tf.grad without a scale) — and
 * `outputsToSave` picks outputs by position. This package's kernels take optional inputs (gamma,
 * beta, the renorm inputs) and return optional outputs, so fixed lists cannot describe them. Hence:
 *
 * - `runKernelSaving` runs a kernel with the lists of that call: the wanted inputs that are present,
 *   and the wanted outputs at their positions. It names what is saved, in order, in the attribute
 *   `saved`, which tfjs hands to the gradient with the saved tensors.
 * - The GradConfig's lists are getters (`savingConfig`) that answer the lists of the call in
 *   progress (kernels run synchronously).
 * - This package's kernels are registered through `savingDirectCalls`, so that a call made
 *   directly with engine().runKernel answers its own lists too: the kernel, before it runs, puts
 *   them where the getters look and names them in the call's attributes (the object tfjs keeps for
 *   the gradient). Another backend's kernels registered under these names get, called directly,
 *   the defaults (the base interface: every default input present).
 * - The gradient reads the saved tensors by name (`savedByName`).
 */
import {engine, getBackend, GradConfig, GradFunc, KernelConfig, NamedAttrMap, NamedTensorInfoMap, Tensor} from '@tensorflow/tfjs-core';

/** What a gradient wants saved: input names, and output names at their positions. */
export interface SaveLists {
  inputs: string[];
  /** [name, position] of each output to save. */
  outputs: Array<[string, number]>;
}

/** The lists of the call in progress, by kernel name. */
const inProgress = new Map<string, {inputsToSave: string[]; outputsToSave: boolean[]}>();

/**
 * The lists of the latest direct call of a wrapped kernel, by kernel name, with its backend: tfjs
 * reads them right after that kernel ran. A kernel of another backend registered under the same
 * name (not wrapped) must not see them: it gets the defaults.
 */
const directCall = new Map<string, {backend: string; inputsToSave: string[]; outputsToSave: boolean[]}>();

/** The lists tfjs is asking for now: the op's call in progress, else a wrapped kernel's direct call, else `fallback`. */
function listsNow(kernelName: string, fallback: {inputsToSave: string[]; outputsToSave: boolean[]}) {
  const direct = directCall.get(kernelName);
  return inProgress.get(kernelName) ?? (direct?.backend === getBackend() ? direct : fallback);
}

/** The attribute that names the saved tensors, in order. */
// Stryker disable next-line StringLiteral: equivalent — any name serves, it is written and read only here.
const SAVED_ATTR = 'saved';

function listsFor(lists: SaveLists, present: (name: string) => boolean) {
  const inputsToSave = lists.inputs.filter(present);
  // Stryker disable next-line ArrayDeclaration: equivalent — a non-boolean first entry is not `true`, so not saved.
  const outputsToSave: boolean[] = [];
  for (const [, position] of lists.outputs) outputsToSave[position] = true;
  // tfjs saves the inputs first, then the outputs in position order.
  const outputNames = [...lists.outputs].sort((a, b) => a[1] - b[1]).map(([name]) => name);
  return {inputsToSave, outputsToSave: Array.from(outputsToSave, v => v === true), names: [...inputsToSave, ...outputNames]};
}

/**
 * A GradConfig whose save lists are those of the call in progress (see the file comment), and
 * `defaults` for calls not made through runKernelSaving.
 */
export function savingConfig(kernelName: string, defaults: SaveLists, gradFunc: GradFunc): GradConfig {
  const fallback = listsFor(defaults, () => true);
  return {
    kernelName,
    get inputsToSave() { return listsNow(kernelName, fallback).inputsToSave; },
    get outputsToSave() { return listsNow(kernelName, fallback).outputsToSave; },
    gradFunc: (dy, saved, attrs) => gradFunc(dy, saved, {[SAVED_ATTR]: fallback.names, ...attrs}),
  };
}

/** Runs a kernel whose gradient config came from savingConfig, saving `lists` (inputs that are present). */
export function runKernelSaving(kernelName: string, inputs: Record<string, Tensor>, attrs: NamedAttrMap, lists: SaveLists): Tensor[] {
  const {inputsToSave, outputsToSave, names} = listsFor(lists, name => inputs[name] != null);
  // A kernel's call never nests inside another of the same kernel (kernels run synchronously and
  // call no kernels of this package), so there is no outer call's lists to restore.
  inProgress.set(kernelName, {inputsToSave, outputsToSave});
  try {
    const out = engine().runKernel(kernelName, inputs, {...attrs, [SAVED_ATTR]: names});
    return Array.isArray(out) ? out : [out as Tensor];
  } finally {
    inProgress.delete(kernelName);
  }
}

/** What a gradient wants saved from one call, given the call's inputs and attributes. */
export type CallSaves = (inputs: NamedTensorInfoMap, attrs: NamedAttrMap) => SaveLists;

/**
 * `config` whose direct calls (engine().runKernel, not runKernelSaving) save what `saves` answers
 * for that call: the lists go where the getters of savingConfig look, and their names into the
 * call's attributes, which tfjs hands to the gradient.
 */
export function savingDirectCalls(config: KernelConfig, saves: CallSaves): KernelConfig {
  return {
    ...config,
    kernelFunc: params => {
      const attrs = params.attrs as NamedAttrMap | undefined;
      if (attrs != null && attrs[SAVED_ATTR] == null) {
        const {inputsToSave, outputsToSave, names} = listsFor(saves(params.inputs, attrs), name => params.inputs[name] != null);
        directCall.set(config.kernelName, {backend: config.backendName, inputsToSave, outputsToSave});
        attrs[SAVED_ATTR] = names;
      }
      return config.kernelFunc(params);
    },
  };
}

/** The saved tensors by the names runKernelSaving recorded (an absent one is undefined). */
export function savedByName(saved: Tensor[], attrs: NamedAttrMap | undefined): Record<string, Tensor | undefined> {
  const names = (attrs?.[SAVED_ATTR] ?? []) as string[];
  return Object.fromEntries(names.map((name, i) => [name, saved[i]]));
}
