/**
 * Property tests of checked loads (fast-check, fixed seeds): random edits of a valid model's
 * files — its weights manifest (drop, duplicate or retype any field, change shapes, dtypes and
 * names), its weight data (truncated, extended; on disk also flipped bytes), its model.json text
 * (truncated, flipped bytes) and its topology. For each edited model:
 *   - the load fails with an error that starts with the model's source and names no tfjs internal
 *     ("Cannot read properties of …", "NaN bytes", …), or it succeeds;
 *   - a successful load of edited weights, manifest or text predicts bit for bit what the original
 *     model did (no edit of these may load as a different model: such edits must be refused);
 *   - no tensor is left behind, and the backend still computes.
 * Topology edits can declare a different valid model (another activation, a larger ReLU cap), so
 * for them a successful load must carry the original weights bit for bit, and a failure must name
 * the source (and the layer, when tfjs rejected a layer's config: its own message follows).
 * The in-memory runs go through checkedLoader(tf.io.fromMemory(…)) for speed (in memory nothing
 * can tell flipped weight bytes from real ones, so they are not flipped there); a smaller sample
 * goes through file:// (this package's handler), where the weights file's content hash must
 * refuse every flipped bit.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {createHash} from 'crypto';
import fc from 'fast-check';
import * as fs from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import {checkedLoader} from '../src';
import {FileHandler} from '../src/io/file_handler';
import {applyJsonEdit, JsonEdit, jsonEdit} from './support/json_mutations';
import {convBatchNormModel, saveToMemory, syntheticData, train} from './support/round_trip';

const MEMORY_RUNS = 1000;
const TOPOLOGY_RUNS = 300;
const FILE_RUNS = 150;
const WASM_RUNS = 200;
const FLIP_RUNS = 100;

/** tfjs internals that must never be the whole story of an error. */
const INTERNAL_ERROR = /Cannot read propert|undefined \(reading|is not a function|is not iterable|NaN bytes|Cannot convert undefined/;

let original: tf.io.ModelArtifacts;
let originalBytes: Uint8Array;
/** The original model's predictions on the synthetic inputs, per backend, as bytes. */
const reference = new Map<string, string>();

function predictionBytes(model: tf.LayersModel): string {
  const {x, y} = syntheticData();
  const p = model.predict(x) as tf.Tensor;
  const bytes = Buffer.from((p.dataSync() as Float32Array).buffer).toString('hex');
  tf.dispose([x, y, p]);
  return bytes;
}

/** Every weight's bytes by name, in name order (edits such as `trainable: false` reorder model.weights). */
function weightBytes(model: tf.LayersModel): string {
  return model.weights.map(w => `${w.originalName}=${Buffer.from((w.read().dataSync() as Float32Array).buffer).toString('hex')}`).sort().join('/');
}

let originalWeights: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
  const model = convBatchNormModel();
  await train(model, 1); // moving statistics and weights off their initial values
  original = await saveToMemory(model);
  originalBytes = new Uint8Array(original.weightData as ArrayBuffer);
  originalWeights = weightBytes(model);
  model.dispose();
  for (const backend of ['cpu', 'wasm']) {
    await tf.setBackend(backend);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(original));
    reference.set(backend, predictionBytes(loaded));
    loaded.dispose();
  }
  await tf.setBackend('cpu');
});

/** Edits of the weight data: truncated or extended by `amount` bytes. */
interface DataEdit {
  op: 'none' | 'truncate' | 'extend';
  amount: number;
}

const dataEdit: fc.Arbitrary<DataEdit> = fc.record({op: fc.constantFrom('none', 'truncate', 'extend'), amount: fc.integer({min: 1, max: 64})});

function editData(bytes: Uint8Array, edit: DataEdit): Uint8Array {
  if (edit.op === 'truncate') return bytes.slice(0, Math.max(0, bytes.length - edit.amount));
  if (edit.op === 'extend') return new Uint8Array([...bytes, ...new Uint8Array(edit.amount).fill(7)]);
  return bytes;
}

type Outcome = {loaded: tf.LayersModel} | {error: Error};

/**
 * Loads through `load`, then checks what every case must satisfy: an error names `source` and no
 * tfjs internal (when `strictMessages`); nothing is leaked; the backend computes. Returns the outcome.
 */
async function loadAndCheck(load: () => Promise<tf.LayersModel>, source: string, strictMessages: boolean): Promise<Outcome> {
  const before = tf.memory().numTensors;
  let outcome: Outcome;
  try {
    outcome = {loaded: await load()};
  } catch (e) {
    outcome = {error: e as Error};
  }
  if ('error' in outcome) {
    const message = String(outcome.error?.message);
    expect(message.startsWith(source)).toBe(true);
    if (strictMessages) expect(message).not.toMatch(INTERNAL_ERROR);
    expect(tf.memory().numTensors).toBe(before);
  } else {
    expect(tf.memory().numTensors - before).toBe(outcome.loaded.weights.length);
  }
  expect(tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0])).toBe(3);
  return outcome;
}

/** A successful load must predict exactly what the original did; then it is disposed. */
function expectOriginalPredictions(outcome: Outcome, backend: string): void {
  if (!('loaded' in outcome)) return;
  expect(predictionBytes(outcome.loaded)).toBe(reference.get(backend));
  outcome.loaded.dispose();
}

/** The edited artifacts: an edit of the fields other than the topology (weightSpecs, format, …) and of the data. */
function editedArtifacts(edit: JsonEdit, data: DataEdit): tf.io.ModelArtifacts {
  const {modelTopology, weightData: _data, ...rest} = original;
  const {result} = applyJsonEdit(rest, edit);
  return {...result, modelTopology, weightData: editData(originalBytes, data).buffer as ArrayBuffer};
}

describe.each([['cpu', MEMORY_RUNS], ['wasm', WASM_RUNS]])('in memory, weights manifest and data edited [%s]', (backend, runs) => {
  beforeAll(async () => {
    expect(await tf.setBackend(backend as string)).toBe(true);
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it(`${runs} edits: a clear error, or the original model; nothing leaked`, async () => {
    await fc.assert(fc.asyncProperty(jsonEdit, dataEdit, async (edit, data) => {
      const artifacts = editedArtifacts(edit, data);
      const outcome = await loadAndCheck(() => tf.loadLayersModel(checkedLoader(tf.io.fromMemory(artifacts))), 'the loaded model', true);
      expectOriginalPredictions(outcome, backend as string);
    }), {seed: 1011, numRuns: runs as number});
  });
});

describe('in memory, topology edited [cpu]', () => {
  it(`${TOPOLOGY_RUNS} edits: an error naming the source, or a model carrying the original weights; nothing leaked`, async () => {
    await fc.assert(fc.asyncProperty(jsonEdit, async edit => {
      const {result: modelTopology} = applyJsonEdit(original.modelTopology, edit);
      const artifacts = {...original, modelTopology};
      const outcome = await loadAndCheck(() => tf.loadLayersModel(checkedLoader(tf.io.fromMemory(artifacts))), 'the loaded model', false);
      if ('error' in outcome) {
        // Where tfjs' own message follows, the layer (or the topology as a whole) is named before it.
        if (INTERNAL_ERROR.test(outcome.error.message)) {
          expect(outcome.error.message).toMatch(/^the loaded model: (layer '.*' \(.*\)|the model topology) cannot be built from its config: /);
        }
      } else {
        expect(weightBytes(outcome.loaded)).toBe(originalWeights);
        outcome.loaded.dispose();
      }
    }), {seed: 1012, numRuns: TOPOLOGY_RUNS});
  });
});

describe('file://, model.json and weights file edited [cpu]', () => {
  let root: string;
  let weightsName: string;
  let modelJson: tf.io.ModelJSON;

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'tfjs-batchnorm-fuzz-'));
    await new FileHandler(path.join(root, 'saved')).save(original);
    modelJson = JSON.parse(await fs.readFile(path.join(root, 'saved', 'model.json'), 'utf8'));
    weightsName = modelJson.weightsManifest[0].paths[0];
  });
  afterAll(async () => {
    await fs.rm(root, {recursive: true, force: true});
  });

  /** Text edits of model.json: none, truncation, or one flipped byte inside the weights manifest. */
  const textEdit = fc.record({op: fc.constantFrom('none', 'none', 'truncate', 'flip'), at: fc.nat(), bit: fc.integer({min: 0, max: 7})});
  /** Byte edits of the weights file: also a flipped bit (which a content-named file's hash catches). */
  const binaryEdit = fc.record({data: dataEdit, flip: fc.option(fc.record({at: fc.nat(), bit: fc.integer({min: 0, max: 7})}), {nil: undefined})});

  let run = 0;
  it(`${FILE_RUNS} edits: a clear error, or the original model; nothing leaked`, async () => {
    await fc.assert(fc.asyncProperty(jsonEdit, textEdit, binaryEdit, async (edit, text, binary) => {
      const {modelTopology, ...rest} = modelJson;
      const {result} = applyJsonEdit(rest, edit);
      let json = Buffer.from(JSON.stringify({modelTopology, ...result}));
      const manifestStart = json.indexOf('"weightsManifest"');
      if (text.op === 'truncate') json = json.subarray(0, text.at % json.length);
      if (text.op === 'flip' && manifestStart >= 0) {
        const at = manifestStart + (text.at % (json.length - manifestStart));
        json[at] ^= 1 << text.bit;
      }
      const weights = Buffer.from(editData(originalBytes, binary.data));
      if (binary.flip != null && weights.length > 0) weights[binary.flip.at % weights.length] ^= 1 << binary.flip.bit;
      const dir = path.join(root, `case${run++}`);
      await fs.mkdir(dir);
      await fs.writeFile(path.join(dir, 'model.json'), json);
      await fs.writeFile(path.join(dir, weightsName), weights);
      const outcome = await loadAndCheck(() => tf.loadLayersModel(new FileHandler(dir)), 'file:// load: ', true);
      expectOriginalPredictions(outcome, 'cpu');
      await fs.rm(dir, {recursive: true});
    }), {seed: 1013, numRuns: FILE_RUNS});
  });

  it(`${FLIP_RUNS} single flipped bits of the weights file: each refused by the content hash`, async () => {
    const saved = path.join(root, 'saved');
    const weightsPath = path.join(saved, weightsName);
    await fc.assert(fc.asyncProperty(fc.nat(originalBytes.length - 1), fc.integer({min: 0, max: 7}), async (at, bit) => {
      const weights = Buffer.from(originalBytes);
      weights[at] ^= 1 << bit;
      await fs.writeFile(weightsPath, weights);
      const outcome = await loadAndCheck(() => tf.loadLayersModel(new FileHandler(saved)), 'file:// load: ', true);
      expect('error' in outcome && outcome.error.message).toBe(
          `file:// load: ${weightsPath} is damaged: its content hashes to ${contentHash(weights)}, but it was saved with content hash ` +
          `${weightsName.slice(8, 24)} (the hash in its name); it was changed after it was written`);
    }), {seed: 1014, numRuns: FLIP_RUNS});
    await fs.writeFile(weightsPath, originalBytes);
  });
});

function contentHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}
