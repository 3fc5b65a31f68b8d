/**
 * Structural checks of a model.json and its weights manifest (or of a handler's weight specs),
 * run on the parsed JSON before anything reads it: tfjs itself indexes into these objects
 * unchecked, so a missing `paths` or a null `shape` surfaces as "Cannot read properties of
 * undefined" and a string shape as "needs NaN bytes". Every error names the source (file or URL),
 * the weight group or weight, the value found and what was expected.
 */
import {io, util} from '@tensorflow/tfjs-core';

type JsonObject = {[key: string]: unknown};

/** Whether a JSON value is an object (not null, not a list). */
export function isObject(value: unknown): value is JsonObject {
  return value != null && typeof value === 'object' && !Array.isArray(value);
}

const MAX_DESCRIBED_LENGTH = 80;

/** A JSON value as it appears in the file, shortened: for error messages. */
export function describeJson(value: unknown): string {
  const text = value === undefined ? 'missing' : JSON.stringify(value) ?? String(value);
  return text.length > MAX_DESCRIBED_LENGTH ? `${text.slice(0, MAX_DESCRIBED_LENGTH)}…` : text;
}

/** The dtypes tfjs' weight decoder reads, with their stored size in bytes (string: variable). */
const DTYPE_BYTES: {[dtype: string]: number | null} = {float32: 4, int32: 4, bool: 1, complex64: 8, string: null};
/** Stored bytes per element of quantized weights (tfjs-converter's --quantize options). */
const QUANTIZED_BYTES: {[dtype: string]: number} = {uint8: 1, uint16: 2, float16: 2};

/** Bytes a (checked) weight spec occupies in the weight data, or null for strings (variable length). */
function storedBytes(spec: io.WeightsManifestEntry): number | null {
  const perElement = spec.quantization != null ? QUANTIZED_BYTES[spec.quantization.dtype] : DTYPE_BYTES[spec.dtype];
  return perElement == null ? null : util.sizeFromShape(spec.shape) * perElement;
}

function checkQuantization(spec: JsonObject, where: string): void {
  const q = spec.quantization;
  const fail = (problem: string) => new Error(`${where}: 'quantization' ${problem}`);
  if (!isObject(q) || typeof q.dtype !== 'string' || !(q.dtype in QUANTIZED_BYTES)) {
    throw fail(`is ${describeJson(q)}, expected {dtype: 'uint8' | 'uint16' | 'float16', …}`);
  }
  if (q.dtype === 'float16') {
    if (spec.dtype !== 'float32') throw fail(`is float16, which only float32 weights can have (dtype is ${describeJson(spec.dtype)})`);
    return;
  }
  if (spec.dtype !== 'float32' && spec.dtype !== 'int32') {
    throw fail(`is ${q.dtype}, which only float32 and int32 weights can have (dtype is ${describeJson(spec.dtype)})`);
  }
  for (const key of ['min', 'scale']) {
    if (typeof q[key] !== 'number' || !Number.isFinite(q[key])) {
      throw fail(`has ${key} ${describeJson(q[key])}, expected a finite number (${q.dtype} quantization needs min and scale)`);
    }
  }
}

/** Checks one weight entry ({name, shape, dtype, quantization?}); `where` names it in errors. */
function checkWeightSpec(spec: unknown, where: string): asserts spec is io.WeightsManifestEntry {
  if (!isObject(spec)) throw new Error(`${where} is ${describeJson(spec)}, expected an object with 'name', 'shape' and 'dtype'`);
  if (typeof spec.name !== 'string' || spec.name === '') {
    throw new Error(`${where}: 'name' is ${describeJson(spec.name)}, expected a non-empty string`);
  }
  const at = `${where} ('${spec.name}')`;
  const shape = spec.shape;
  if (!Array.isArray(shape) || !shape.every(d => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${at}: 'shape' is ${describeJson(shape)}, expected a list of non-negative integers`);
  }
  const size = shape.reduce((n: number, d: number) => n * d, 1);
  if (!Number.isSafeInteger(size)) throw new Error(`${at}: 'shape' [${shape}] has ${size} elements, more than can be addressed`);
  if (typeof spec.dtype !== 'string' || !(spec.dtype in DTYPE_BYTES)) {
    throw new Error(`${at}: 'dtype' is ${describeJson(spec.dtype)}, expected one of ${Object.keys(DTYPE_BYTES).join(', ')}`);
  }
  // tfjs tests `'quantization' in spec`: a key present with any value, null included, means quantized.
  if ('quantization' in spec) checkQuantization(spec, at);
  if (spec.group != null && typeof spec.group !== 'string') {
    throw new Error(`${at}: 'group' is ${describeJson(spec.group)}, expected a string such as 'optimizer'`);
  }
}

/** Checks a list of weight entries (a manifest group's `weights`, or a handler's `weightSpecs`). */
export function checkWeightSpecs(specs: unknown, where: string): asserts specs is io.WeightsManifestEntry[] {
  if (!Array.isArray(specs)) throw new Error(`${where}: 'weights' is ${describeJson(specs)}, expected a list of weight entries`);
  specs.forEach((spec, i) => checkWeightSpec(spec, `${where}: weight ${i}`));
}

/** Throws when two entries share a name: tfjs would decode both and keep (and leak) only one. */
export function checkUniqueWeightNames(specs: io.WeightsManifestEntry[], source: string): void {
  const seen = new Map<string, number>();
  specs.forEach((spec, i) => {
    const first = seen.get(spec.name);
    if (first !== undefined) throw new Error(`${source}: the weights manifest lists weight '${spec.name}' twice (entries ${first} and ${i})`);
    seen.set(spec.name, i);
  });
}

/** Checks a model.json `weightsManifest`: a list of groups, each {paths: non-empty list of file names, weights}. */
export function checkWeightsManifest(manifest: unknown, source: string): asserts manifest is io.WeightsManifestConfig {
  if (!Array.isArray(manifest)) {
    throw new Error(`${source}: 'weightsManifest' is ${describeJson(manifest)}, expected a list of weight groups ({paths, weights})`);
  }
  manifest.forEach((group: unknown, i) => {
    const where = `${source}: weights manifest group ${i}`;
    if (!isObject(group)) throw new Error(`${where} is ${describeJson(group)}, expected an object with 'paths' and 'weights'`);
    const paths = group.paths;
    if (!Array.isArray(paths) || paths.length === 0 || !paths.every(p => typeof p === 'string' && p !== '')) {
      throw new Error(`${where}: 'paths' is ${describeJson(paths)}, expected a non-empty list of file names`);
    }
    checkWeightSpecs(group.weights, `${where} (${paths.join(', ')})`);
  });
  checkUniqueWeightNames(manifest.flatMap(group => group.weights), source);
}

/**
 * Parses and checks a model.json text: an object with a modelTopology and, when present, a well
 * formed weights manifest and training config. `source` names it (e.g. 'file:// load: /m/model.json').
 */
export function parseModelJson(text: string, source: string): io.ModelJSON {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source} is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(json) || json.modelTopology == null) {
    throw new Error(`${source} has no 'modelTopology': it is not a tfjs model.json`);
  }
  if (json.weightsManifest != null) checkWeightsManifest(json.weightsManifest, source);
  if (json.trainingConfig != null && !isObject(json.trainingConfig)) {
    throw new Error(`${source}: 'trainingConfig' is ${describeJson(json.trainingConfig)}, expected an object`);
  }
  return json as unknown as io.ModelJSON;
}

/**
 * The error for weight data whose size does not match its (checked) specs: names where the data
 * came from, both byte counts and the weights that the data does not (fully) hold.
 */
export function weightSizeProblem(where: string, specs: io.WeightsManifestEntry[], actualBytes: number): string | null {
  let expected = 0;
  const ends: {name: string, end: number}[] = [];
  for (const spec of specs) {
    const bytes = storedBytes(spec);
    if (bytes == null) return null; // string weights: sizes are stored inside the data
    expected += bytes;
    ends.push({name: spec.name, end: expected});
  }
  if (expected === actualBytes) return null;
  if (actualBytes > expected) {
    return `${where} holds ${actualBytes} bytes but the weights manifest describes ${expected} bytes ` +
        `(${specs.length} weights): the weights file does not belong to this model.json`;
  }
  const affected = ends.filter(r => r.end > actualBytes).map(r => r.name);
  return `${where} holds ${actualBytes} bytes but the weights manifest needs ${expected} bytes; ` +
      `missing or truncated weights: ${affected.join(', ')}`;
}
