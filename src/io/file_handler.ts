/**
 * `file://` save and load for Node without @tensorflow/tfjs-node. Same layout as tfjs-node
 * (a directory with model.json + weights.bin; load from the model.json path), so either package
 * reads what the other wrote. Saving is atomic per file: everything is written to temporary names
 * in the target directory and renamed into place only once complete, so a failed save leaves the
 * model already on disk untouched. Loading checks the files (JSON, sizes, classes, weight shapes)
 * before tfjs creates a tensor.
 */
import {io} from '@tensorflow/tfjs-core';
import {checkModelArtifacts, weightSizeProblem} from './model_checks';

type Fs = typeof import('fs/promises');
type Path = typeof import('path');

const SCHEME = 'file://';
const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';

/** Whether this is Node (the only place a file system exists). */
function isNode(): boolean {
  return typeof process !== 'undefined' && process.versions?.node != null;
}

/**
 * Node's fs and path, loaded on first use through a require that bundlers do not follow, so that
 * a browser bundle of the package neither includes nor fails on them.
 */
function nodeModules(): {fs: Fs, path: Path} {
  const load = (name: string): unknown => {
    const builtin = (process as {getBuiltinModule?: (id: string) => unknown}).getBuiltinModule;
    return builtin != null ? builtin(name) : module.require(name);
  };
  return {fs: load('fs/promises') as Fs, path: load('path') as Path};
}

function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

/** A tf.io handler that saves to a directory and loads from a model.json file in the tfjs-node layout. */
export class FileHandler implements io.IOHandler {
  private readonly fs: Fs;
  private readonly path: Path;
  private readonly target: string;

  /** `target`: for save, a directory (created if missing); for load, the model.json path (or its directory). */
  constructor(target: string) {
    if (!isNode()) throw new Error(`fileHandler: file:// is only available in Node (got '${target}')`);
    ({fs: this.fs, path: this.path} = nodeModules());
    this.target = this.path.resolve(target);
  }

  /** Writes model.json and weights.bin into the target directory, replacing an earlier save only when complete. */
  async save(artifacts: io.ModelArtifacts): Promise<io.SaveResult> {
    if (artifacts.modelTopology instanceof ArrayBuffer) {
      throw new Error(`file:// save to ${this.target}: binary (graph-model) topologies cannot be saved by this handler`);
    }
    const dir = this.target;
    await this.makeDirectory(dir);
    const weights = artifacts.weightData == null ? new ArrayBuffer(0) : io.CompositeArrayBuffer.join(artifacts.weightData);
    // model.json is the artifacts minus the weight values, plus a manifest pointing at weights.bin.
    const {weightData: _data, weightSpecs = [], ...described} = artifacts;
    const modelJson: io.ModelJSON = {...described, modelTopology: artifacts.modelTopology ?? {},
                                     weightsManifest: [{paths: [WEIGHTS_BIN], weights: weightSpecs}]};
    // A unique suffix keeps concurrent saves into the same directory from writing over each other's temporaries.
    const suffix = `.tmp-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const files = [
      {final: this.path.join(dir, WEIGHTS_BIN), data: new Uint8Array(weights)},
      {final: this.path.join(dir, MODEL_JSON), data: JSON.stringify(modelJson)},
    ].map(f => ({...f, temp: f.final + suffix, backup: f.final + suffix + '.old'}));
    try {
      for (const f of files) await this.writeDurably(f.temp, f.data);
      await this.replaceAll(files);
    } finally {
      await Promise.all(files.map(f => this.fs.rm(f.temp, {force: true})));
    }
    return {modelArtifactsInfo: io.getModelArtifactsInfoForJSON(artifacts)};
  }

  /** Reads model.json and the weight files it names, checking them before tfjs builds anything. */
  async load(): Promise<io.ModelArtifacts> {
    const jsonPath = await this.modelJsonPath();
    const text = await this.readOrExplain(jsonPath, 'model.json', 'utf8');
    let modelJson: io.ModelJSON;
    try {
      modelJson = JSON.parse(text) as io.ModelJSON;
    } catch (e) {
      throw new Error(`file:// load: ${jsonPath} is not valid JSON (${(e as Error).message})`);
    }
    if (modelJson == null || typeof modelJson !== 'object' || modelJson.modelTopology == null) {
      throw new Error(`file:// load: ${jsonPath} has no 'modelTopology': it is not a tfjs model.json`);
    }
    const manifest = modelJson.weightsManifest ?? [];
    if (!Array.isArray(manifest)) throw new Error(`file:// load: ${jsonPath} has a 'weightsManifest' that is not a list`);
    const artifacts = await io.getModelArtifactsForJSON(modelJson, m => this.readWeights(m, jsonPath));
    await checkModelArtifacts(artifacts, jsonPath);
    return artifacts;
  }

  private async modelJsonPath(): Promise<string> {
    const stat = await this.fs.stat(this.target).catch(() => null);
    return stat != null && stat.isDirectory() ? this.path.join(this.target, MODEL_JSON) : this.target;
  }

  private async readWeights(manifest: io.WeightsManifestConfig, jsonPath: string):
      Promise<[io.WeightsManifestEntry[], ArrayBuffer]> {
    const dir = this.path.dirname(jsonPath);
    const buffers: Uint8Array[] = [];
    for (const group of manifest) {
      const paths = group.paths.map(p => this.path.join(dir, p));
      const groupBuffers: Uint8Array[] = [];
      for (const file of paths) {
        groupBuffers.push(await this.readOrExplain(file, `weights file (for ${group.weights.map(w => w.name).join(', ')})`));
      }
      const bytes = groupBuffers.reduce((n, b) => n + b.byteLength, 0);
      const problem = weightSizeProblem(`file:// load: ${paths.join(' + ')}`, group.weights, bytes);
      if (problem != null) throw new Error(problem);
      buffers.push(...groupBuffers);
    }
    const specs = manifest.flatMap(group => group.weights);
    const joined = new Uint8Array(buffers.reduce((n, b) => n + b.byteLength, 0));
    buffers.reduce((offset, b) => (joined.set(b, offset), offset + b.byteLength), 0);
    return [specs, joined.buffer];
  }

  private readOrExplain(file: string, what: string): Promise<Uint8Array>;
  private readOrExplain(file: string, what: string, encoding: 'utf8'): Promise<string>;
  private async readOrExplain(file: string, what: string, encoding?: 'utf8'): Promise<Uint8Array | string> {
    try {
      return encoding == null ? await this.fs.readFile(file) : await this.fs.readFile(file, encoding);
    } catch (e) {
      if (errorCode(e) === 'ENOENT') throw new Error(`file:// load: ${what} ${file} does not exist`);
      throw new Error(`file:// load: cannot read ${what} ${file} (${(e as Error).message})`);
    }
  }

  private async makeDirectory(dir: string): Promise<void> {
    await this.fs.mkdir(dir, {recursive: true}).catch((e: unknown) => {
      throw new Error(`file:// save: cannot create directory ${dir} (${(e as Error).message})`);
    });
    if (!(await this.fs.stat(dir)).isDirectory()) {
      throw new Error(`file:// save: ${dir} exists and is not a directory (save takes a directory path)`);
    }
  }

  /** Writes a file and flushes it to disk, so the rename that follows never exposes a partial file. */
  private async writeDurably(file: string, data: Uint8Array | string): Promise<void> {
    const handle = await this.fs.open(file, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /**
   * Renames the temporaries over the final names. The earlier files are first kept under backup
   * names (hard links), so that if a later rename fails the ones already replaced are put back and
   * the directory keeps a consistent earlier model.
   */
  private async replaceAll(files: {final: string, temp: string, backup: string}[]): Promise<void> {
    const backedUp: typeof files = [];
    const replaced: typeof files = [];
    try {
      for (const f of files) {
        if (await this.backUp(f.final, f.backup)) backedUp.push(f);
      }
      for (const f of files) {
        await this.fs.rename(f.temp, f.final);
        replaced.push(f);
      }
    } catch (e) {
      for (const f of replaced) {
        if (backedUp.includes(f)) await this.fs.rename(f.backup, f.final);
        else await this.fs.rm(f.final, {force: true});
      }
      throw e;
    } finally {
      await Promise.all(backedUp.map(f => this.fs.rm(f.backup, {force: true})));
    }
  }

  /** Keeps the current `file` under `backup`; false when there is none (a first save). */
  private async backUp(file: string, backup: string): Promise<boolean> {
    try {
      await this.fs.link(file, backup); // a hard link: no copy of possibly large weights
      return true;
    } catch (e) {
      if (errorCode(e) === 'ENOENT') return false;
      // File systems without hard links (FAT, some network shares): copy instead.
      await this.fs.copyFile(file, backup);
      return true;
    }
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

