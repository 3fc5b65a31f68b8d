/**
 * The data recalibrate reads, as batches of model inputs checked against the model: from a
 * tf.data.Dataset, an array, or a function returning a (sync or async) iterator such as a generator.
 * recalibrate reads the data once per batch-norm layer, so a one-shot iterator is refused: a
 * generator is passed as the function that makes it.
 *
 * Ownership follows tfjs: tensors from a Dataset or a generator belong to the reader (model.fitDataset
 * disposes them too), so they are disposed after use; tensors in an array stay the caller's.
 */
import {NamedTensorMap, Tensor, TensorContainer} from '@tensorflow/tfjs-core';
import type {LayersModel} from '@tensorflow/tfjs-layers';

/** One batch: a tensor (one-input model), one tensor per model input, a map by input name, or {xs: …} as fitDataset reads. */
export type RecalibrationBatch = Tensor | Tensor[] | NamedTensorMap | {xs: Tensor | Tensor[] | NamedTensorMap};

/** The part of tf.data.Dataset recalibrate uses (so this package needs no tfjs-data import). */
export interface DatasetLike<T> {
  iterator(): Promise<{next(): Promise<IteratorResult<T>>}>;
}

/** Where recalibrate reads batches from. */
export type RecalibrationData =
  | DatasetLike<TensorContainer>
  | RecalibrationBatch[]
  | (() => Iterator<RecalibrationBatch> | AsyncIterator<RecalibrationBatch>);

/** One batch of a pass: one tensor per model input, and `release`, to call once they are used. */
export interface PassBatch {
  inputs: Tensor[];
  /** Disposes the whole batch (labels included) where the reader owns it; nothing for an array's batches. */
  release(): void;
}

/** One pass over the data; null after the last batch (or after `batches` of them). */
export interface Pass {
  next(): Promise<PassBatch | null>;
}

function isDataset(data: unknown): data is DatasetLike<TensorContainer> {
  return data != null && typeof (data as DatasetLike<unknown>).iterator === 'function';
}

function describeValue(value: unknown): string {
  if (value instanceof Tensor) return `a tensor of shape [${value.shape}]`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return value === null ? 'null' : typeof value === 'object' ? `an object with keys [${Object.keys(value as object).join(', ')}]` : String(value);
}

/** The batch as one tensor per model input, in model.inputs order; throws naming the batch and input. */
function modelInputs(fn: string, model: LayersModel, batch: unknown, index: number): Tensor[] {
  const where = `${fn}: batch ${index}`;
  const value = batch != null && typeof batch === 'object' && !(batch instanceof Tensor) && !Array.isArray(batch) && 'xs' in batch ?
      (batch as {xs: unknown}).xs : batch;
  let list: unknown[];
  if (value instanceof Tensor) list = [value];
  else if (Array.isArray(value)) list = value;
  else if (value != null && typeof value === 'object') list = model.inputNames.map(name => (value as NamedTensorMap)[name]);
  else throw new Error(`${where} is ${describeValue(batch)}, expected a tensor, an array of tensors, a map by input name, or {xs: …}`);
  if (list.length !== model.inputs.length) {
    throw new Error(`${where} has ${list.length} tensors, but model '${model.name}' has ${model.inputs.length} inputs ` +
        `(${model.inputNames.join(', ')})`);
  }
  return list.map((t, i) => {
    const input = model.inputs[i];
    const expected = `[${input.shape.map(d => d ?? 'null')}]`;
    if (!(t instanceof Tensor)) throw new Error(`${where}, input '${model.inputNames[i]}': is ${describeValue(t)}, expected a tensor of shape ${expected}`);
    const fits = t.rank === input.shape.length && input.shape.every((d, a) => d == null || d === t.shape[a]);
    if (!fits || t.shape[0] === 0) {
      throw new Error(`${where}, input '${model.inputNames[i]}': shape [${t.shape}] does not fit the model's input shape ` +
          `${expected}${t.shape[0] === 0 ? ' (the batch is empty)' : ''}`);
    }
    return t;
  });
}

/** Checks the data argument and returns a function that starts a fresh pass over it. */
export function passes(fn: string, model: LayersModel, data: RecalibrationData, maxBatches: number): () => Promise<Pass> {
  const start = async (): Promise<{next(): Promise<IteratorResult<unknown>> | IteratorResult<unknown>}> => {
    if (Array.isArray(data)) return data[Symbol.iterator]();
    if (isDataset(data)) return data.iterator();
    const iterator = data();
    if (iterator == null || typeof (iterator as Iterator<unknown>).next !== 'function') {
      throw new Error(`${fn}: argument 'data' is a function that returned ${describeValue(iterator)}, expected an iterator (e.g. a generator)`);
    }
    return iterator;
  };
  if (!Array.isArray(data) && !isDataset(data) && typeof data !== 'function') {
    const oneShot = data != null && typeof data === 'object' && 'next' in (data as object);
    throw new Error(`${fn}: argument 'data' is ${describeValue(data)}, expected a tf.data.Dataset, an array of batches, ` +
        `or a function returning an iterator${oneShot ? ' (a generator object can be read only once, but the data is read once ' +
        'per batch-norm layer: pass the generator function instead)' : ''}`);
  }
  const owned = !Array.isArray(data);
  return async () => {
    const iterator = await start();
    let index = 0;
    return {
      async next() {
        if (index >= maxBatches) return null;
        const result = await iterator.next();
        if (result.done) return null;
        const release = () => { if (owned) disposeBatch(result.value); };
        try {
          return {inputs: modelInputs(fn, model, result.value, index++), release};
        } catch (e) {
          release();
          throw e;
        }
      },
    };
  };
}

/** Disposes every tensor of a batch the reader owns. */
function disposeBatch(batch: unknown): void {
  if (batch instanceof Tensor) batch.dispose();
  else if (Array.isArray(batch)) batch.forEach(disposeBatch);
  else if (batch != null && typeof batch === 'object') Object.values(batch).forEach(disposeBatch);
}
