/**
 * `file://` save and load for Node without @tensorflow/tfjs-node, in the layout every tfjs file://
 * loader reads: a directory with model.json, whose weights manifest names the weights file next to
 * it; load from the model.json path (or the directory). Saves are crash-consistent and serialized
 * per directory (model_directory.ts). Loads check everything before tfjs allocates anything: the
 * JSON and its manifest, that the weight files lie in the model's directory, their sizes (before
 * reading them), content hashes of content-named weights, then the topology against the weights
 * (model_checks.ts).
 */
import {io} from '@tensorflow/tfjs-core';
import {errorCode, fileSystemError} from './fs_errors';
import {parseModelJson, weightSizeProblem} from './manifest_checks';
import {checkModelArtifacts} from './model_checks';
import {MODEL_JSON, publishModel, weightsFileDamage} from './model_directory';
import {isNode, nodeBuiltins} from './node_builtins';

const SCHEME = 'file://';
/** Reads of model.json (a save may replace it, and remove the weights it named, while a load reads). */
const LOAD_ATTEMPTS = 3;
/** How many weight names an error lists for a weights file. */
const MAX_NAMED = 10;

/** What a weights file holds, for error messages: its weights' names (the first few). */
function describeWeightsFile(group: io.WeightsManifestConfig[number]): string {
  const names = group.weights.map(w => w.name);
  const more = names.length > MAX_NAMED ? `, and ${names.length - MAX_NAMED} more` : '';
  return `weights file (for ${names.slice(0, MAX_NAMED).join(', ')}${more})`;
}

/** A tf.io handler that saves to a directory and loads from its model.json, in the layout every tfjs file:// loader reads. */
export class FileHandler implements io.IOHandler {
  private readonly target: string;

  /** `target`: for save, a directory (created if missing); for load, the model.json path (or its directory). */
  constructor(target: string) {
    if (!isNode()) throw new Error(`fileHandler: file:// is only available in Node (got '${target}')`);
    this.target = nodeBuiltins().path.resolve(target);
  }

  /** Writes model.json and its weights into the target directory, replacing an earlier save in one atomic step. */
  async save(artifacts: io.ModelArtifacts): Promise<io.SaveResult> {
    if (artifacts.modelTopology instanceof ArrayBuffer) {
      throw new Error(`file:// save to ${this.target}: binary (graph-model) topologies cannot be saved by this handler`);
    }
    const weights = artifacts.weightData == null ? new Uint8Array(0) : new Uint8Array(io.CompositeArrayBuffer.join(artifacts.weightData));
    // model.json is the artifacts minus the weight values, plus a manifest pointing at the weights file.
    const {weightData: _data, weightSpecs = [], ...described} = artifacts;
    await publishModel(this.target, {
      weights,
      modelJson: weightsFile => JSON.stringify({...described, modelTopology: artifacts.modelTopology ?? {},
                                                weightsManifest: [{paths: [weightsFile], weights: weightSpecs}]}),
    });
    return {modelArtifactsInfo: io.getModelArtifactsInfoForJSON(artifacts)};
  }

  /** Reads model.json and the weight files it names, checking them before tfjs builds anything. */
  async load(): Promise<io.ModelArtifacts> {
    const jsonPath = await this.modelJsonPath();
    for (let attempt = 1; ; attempt++) {
      const text = await this.readModelJson(jsonPath);
      try {
        return await this.loadFrom(jsonPath, text);
      } catch (e) {
        // A weights file that vanished after model.json was read: a save replaced both meanwhile.
        const replaced = errorCode(e) === 'ENOENT' && attempt < LOAD_ATTEMPTS &&
            (await this.readModelJson(jsonPath).catch(() => text)) !== text;
        if (!replaced) throw e;
      }
    }
  }

  private async loadFrom(jsonPath: string, text: string): Promise<io.ModelArtifacts> {
    const source = `file:// load: ${jsonPath}`;
    const modelJson = parseModelJson(text, source);
    const manifest = modelJson.weightsManifest;
    const [specs, data] = manifest == null ? [undefined, undefined] : await this.readWeights(manifest, jsonPath, source);
    const artifacts = io.getModelArtifactsForJSONSync(modelJson, specs, data);
    await checkModelArtifacts(artifacts, source);
    return artifacts;
  }

  private async modelJsonPath(): Promise<string> {
    const stat = await nodeBuiltins().fs.stat(this.target).catch(() => null);
    return stat != null && stat.isDirectory() ? nodeBuiltins().path.join(this.target, MODEL_JSON) : this.target;
  }

  private async readModelJson(jsonPath: string): Promise<string> {
    return nodeBuiltins().fs.readFile(jsonPath, 'utf8').catch((e: unknown) => {
      throw this.readError('model.json', jsonPath, e);
    });
  }

  /** A weights file of the manifest, which must lie in the model's directory (a hostile '../' path would read any file). */
  private weightsPath(path: string, groupIndex: number, jsonPath: string, source: string): string {
    const {path: p} = nodeBuiltins();
    const dir = p.dirname(jsonPath);
    const file = p.join(dir, path);
    const relative = p.relative(dir, file);
    if (relative === '' || relative.split(p.sep)[0] === '..' || p.isAbsolute(relative)) {
      throw new Error(`${source}: weights manifest group ${groupIndex}: path '${path}' is outside the model's directory ${dir}`);
    }
    return file;
  }

  /** Checks every group's file sizes against its weights before reading any, then reads and checks the bytes. */
  private async readWeights(manifest: io.WeightsManifestConfig, jsonPath: string, source: string):
      Promise<[io.WeightsManifestEntry[], ArrayBuffer]> {
    const {fs} = nodeBuiltins();
    const groups = manifest.map((group, i) => ({group, files: group.paths.map(path => this.weightsPath(path, i, jsonPath, source))}));
    for (const {group, files} of groups) {
      let bytes = 0;
      for (const file of files) {
        const stat = await fs.stat(file).catch((e: unknown) => {
          throw this.readError(describeWeightsFile(group), file, e);
        });
        if (!stat.isFile()) throw new Error(`file:// load: ${describeWeightsFile(group)} ${file} is not a file`);
        bytes += stat.size;
      }
      const problem = weightSizeProblem(`file:// load: ${files.join(' + ')}`, group.weights, bytes);
      if (problem != null) throw new Error(problem);
    }
    const buffers: Uint8Array[] = [];
    for (const {group, files} of groups) {
      const read: Uint8Array[] = [];
      for (const file of files) {
        const bytes = await fs.readFile(file).catch((e: unknown) => {
          throw this.readError(describeWeightsFile(group), file, e);
        });
        const damage = weightsFileDamage(file, bytes);
        if (damage != null) throw new Error(`file:// load: ${damage}`);
        read.push(bytes);
      }
      // Again with the bytes read: a file may have changed since its size was taken.
      const problem = weightSizeProblem(`file:// load: ${files.join(' + ')}`, group.weights, read.reduce((n, b) => n + b.byteLength, 0));
      if (problem != null) throw new Error(problem);
      buffers.push(...read);
    }
    const joined = new Uint8Array(buffers.reduce((n, b) => n + b.byteLength, 0));
    buffers.reduce((offset, b) => (joined.set(b, offset), offset + b.byteLength), 0);
    return [manifest.flatMap(group => group.weights), joined.buffer];
  }

  /** A read error naming the file; a missing file says so plainly (and keeps code ENOENT, which load() retries on). */
  private readError(what: string, file: string, e: unknown): Error {
    if (errorCode(e) !== 'ENOENT') return fileSystemError('file:// load', `read ${what}`, file, e);
    return Object.assign(new Error(`file:// load: ${what} ${file} does not exist`), {code: 'ENOENT', path: file, cause: e});
  }
}

/** A file:// IOHandler for a directory (save) or model.json path (load), as tfjs-node's tf.io.fileSystem. */
export function fileHandler(path: string): io.IOHandler {
  return new FileHandler(path);
}

type Router = Parameters<typeof io.registerSaveRouter>[0];

/** The router body shared by save and load: claims file:// URLs unless another handler already does. */
function fileRouter(find: (url: string) => io.IOHandler[]): Router {
  let consulting = false;
  return ((url: string | string[]): io.IOHandler | null => {
    if (consulting || typeof url !== 'string' || !url.startsWith(SCHEME)) return null;
    // Defer to any other file:// handler (tfjs-node's), whatever order the packages were imported in:
    // two handlers for one URL make model.save and tf.loadLayersModel throw.
    consulting = true;
    try {
      if (find(url).length > 0) return null;
    } finally {
      consulting = false;
    }
    return new FileHandler(url.slice(SCHEME.length));
  // tfjs routers decline a URL by returning null (tfjs-node's do too); IORouter's type omits that.
  }) as Router;
}

/**
 * Registers file:// save and load routers in Node when no file:// handler exists yet (tfjs-node
 * registers its own); ours also step aside if one is registered later. Returns whether it registered.
 */
export function registerFileRouter(): boolean {
  if (!isNode()) return false;
  const probe = `${SCHEME}/tfjs-batchnorm-probe`;
  if (io.getSaveHandlers(probe).length > 0 || io.getLoadHandlers(probe).length > 0) return false;
  io.registerSaveRouter(fileRouter(url => io.getSaveHandlers(url)));
  io.registerLoadRouter(fileRouter(url => io.getLoadHandlers(url)));
  return true;
}

