/**
 * How file:// saves change a model directory so that, at every instant — a crash or SIGKILL
 * included — the directory holds either the complete earlier model or the complete new one.
 *
 * The directory has the layout every tfjs file:// loader reads: `model.json`, whose weights
 * manifest names a weights file relative to it. The weights file is content-named
 * (`weights.<sha256 prefix>.bin`), so a name never holds two different contents and a new save
 * never overwrites the file the current model.json points to. A save:
 *   1. writes model.json's new text to a temporary name that carries the new weights file's hash
 *      (the marker that protects the new weights from a concurrent clean-up), and fsyncs it;
 *   2. writes the weights to a temporary, fsyncs it and renames it to its content name;
 *      fsyncs the directory, so the weights are durable before anything points to them;
 *   3. renames the model.json temporary over model.json — the one atomic step that publishes the
 *      new model — and fsyncs the directory;
 *   4. removes what no model.json points to any more: stale temporaries of dead processes and of
 *      this one, the earlier weights file (and `weights.bin` of the older layout).
 * A reader sees the old model.json (whose weights file is still there until step 4) or the new one
 * (whose weights file was complete before step 3). Between a reader's read of model.json and its
 * read of the weights, step 4 of a later save may remove the old weights file; this package's
 * loader then reads model.json again (other loaders report the file as missing).
 *
 * Saves to one directory from one process run one after another (in call order). Saves from
 * several processes on one machine stay consistent (the last model.json rename wins whole);
 * several machines saving into one network directory are not supported (process ids decide
 * which temporaries are abandoned).
 */
import {errorCode, fileSystemError} from './fs_errors';
import {nodeBuiltins} from './node_builtins';

/** The file every tfjs file:// loader opens in a model directory. */
export const MODEL_JSON = 'model.json';
/** The weights file of tfjs-node's layout and of this package before content-named weights. */
const LEGACY_WEIGHTS = 'weights.bin';
const HASH_HEX_DIGITS = 16;
const WEIGHTS_FILE = /^weights\.([0-9a-f]{16})\.bin$/;
/** Any temporary a save of this package writes (current and earlier versions): `<name>.tmp-<pid>-…`. */
const TEMPORARY = /\.tmp-(\d+)-/;
/** A model.json temporary, which names the hash of the weights file it will point to. */
const MODEL_JSON_TEMPORARY = /^model\.json\.tmp-\d+-[0-9a-z]+-([0-9a-f]{16})$/;
/** A temporary of a live process older than this is abandoned all the same (its pid was reused). */
const ABANDONED_AFTER_MS = 24 * 60 * 60 * 1000;
/** Errors of fsync on a directory that mean "not supported here" (Windows, some file systems), not data loss. */
const DIRECTORY_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EACCES', 'EINVAL', 'ENOTSUP', 'EBADF']);

/** What a save publishes: the weights bytes and model.json's text, given the weights file's name. */
export interface ModelFiles {
  weights: Uint8Array;
  modelJson: (weightsFile: string) => string;
}

/** Temporaries (by name: their random tags make names unique) of saves of this process still running. */
const inFlight = new Set<string>();
/** Per directory, the last save queued; the next one starts when it has settled. */
const queues = new Map<string, Promise<unknown>>();

function contentHash(bytes: Uint8Array): string {
  return nodeBuiltins().crypto.createHash('sha256').update(bytes).digest('hex').slice(0, HASH_HEX_DIGITS);
}

function weightsFileName(hash: string): string {
  return `weights.${hash}.bin`;
}

/**
 * Null when `bytes` may be the content of the weights file `file`; otherwise why not: a content-named
 * file whose content no longer has the hash in its name was damaged after it was written.
 */
export function weightsFileDamage(file: string, bytes: Uint8Array): string | null {
  const match = WEIGHTS_FILE.exec(nodeBuiltins().path.basename(file));
  if (match == null) return null;
  const actual = contentHash(bytes);
  return actual === match[1] ? null : `${file} is damaged: its content hashes to ${actual}, but it was saved with ` +
      `content hash ${match[1]} (the hash in its name); it was changed after it was written`;
}

/**
 * Writes model.json and its weights into `dir` (created if missing) by the protocol above, after
 * any earlier save to the same directory from this process has finished.
 */
export function publishModel(dir: string, files: ModelFiles): Promise<void> {
  const resolved = nodeBuiltins().path.resolve(dir);
  const previous = queues.get(resolved) ?? Promise.resolve();
  const run = previous.then(() => publish(resolved, files));
  const settled = run.catch(() => undefined);
  queues.set(resolved, settled);
  void settled.then(() => {
    if (queues.get(resolved) === settled) queues.delete(resolved);
  });
  return run;
}

async function publish(dir: string, {weights, modelJson}: ModelFiles): Promise<void> {
  const {path} = nodeBuiltins();
  const context = `file:// save to ${dir}`;
  await makeDirectory(dir, context);
  // Leftovers of a crashed save may be what fills the disk: clear them before writing.
  await removeLeftovers(dir);
  const hash = contentHash(weights);
  const weightsFile = weightsFileName(hash);
  const tag = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const jsonTemp = `${MODEL_JSON}.tmp-${tag}-${hash}`;
  const weightsTemp = `${weightsFile}.tmp-${tag}`;
  const at = (name: string) => path.join(dir, name);
  inFlight.add(jsonTemp).add(weightsTemp);
  try {
    await writeDurably(at(jsonTemp), modelJson(weightsFile), context);
    await writeDurably(at(weightsTemp), weights, context);
    await move(at(weightsTemp), at(weightsFile), context);
    await syncDirectory(dir, context);
    await move(at(jsonTemp), at(MODEL_JSON), context);
    await syncDirectory(dir, context);
  } catch (e) {
    await Promise.all([jsonTemp, weightsTemp].map(name => remove(at(name))));
    throw e;
  } finally {
    inFlight.delete(jsonTemp);
    inFlight.delete(weightsTemp);
    // After a failure too: a weights file renamed into place but never published goes again.
    await removeLeftovers(dir);
  }
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir reports ENOENT where the real cause is
 * EROFS or EACCES (a read-only file system, a directory without write permission).
 */
async function makeDirectory(dir: string, context: string): Promise<void> {
  const {fs, path} = nodeBuiltins();
  const missing: string[] = [];
  for (let current = dir; ; current = path.dirname(current)) {
    const stat = await fs.stat(current).catch((e: unknown) => {
      if (errorCode(e) === 'ENOENT') return null;
      throw fileSystemError(context, 'inspect', current, e);
    });
    if (stat != null) {
      if (!stat.isDirectory()) {
        throw Object.assign(new Error(`${context}: ${current} exists and is not a directory (save takes a directory path)`),
                            {code: 'ENOTDIR', path: current});
      }
      break;
    }
    missing.unshift(current);
    if (path.dirname(current) === current) break;
  }
  for (const level of missing) {
    await fs.mkdir(level).catch((e: unknown) => {
      if (errorCode(e) !== 'EEXIST') throw fileSystemError(context, 'create directory', level, e);
    });
  }
}

/** Creates `file` (never an existing one: names are unique), writes it whole and flushes it to disk. */
async function writeDurably(file: string, data: Uint8Array | string, context: string): Promise<void> {
  const {fs} = nodeBuiltins();
  let handle: Awaited<ReturnType<typeof fs.open>> | undefined;
  try {
    handle = await fs.open(file, 'wx');
    await handle.writeFile(data);
    await handle.sync();
    const closing = handle;
    handle = undefined;
    await closing.close();
  } catch (e) {
    await handle?.close().catch(() => undefined);
    throw fileSystemError(context, 'write', file, e);
  }
}

async function move(from: string, to: string, context: string): Promise<void> {
  await nodeBuiltins().fs.rename(from, to).catch((e: unknown) => {
    throw fileSystemError(context, `rename ${from} to`, to, e);
  });
}

/** fsync on the directory makes its renames durable; skipped where the platform cannot do it. */
async function syncDirectory(dir: string, context: string): Promise<void> {
  const {fs} = nodeBuiltins();
  let handle: Awaited<ReturnType<typeof fs.open>> | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch (e) {
    if (!DIRECTORY_SYNC_UNSUPPORTED.has(errorCode(e) ?? '')) throw fileSystemError(context, 'flush directory', dir, e);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Best-effort removal: what a clean-up cannot remove now, a later save retries. */
async function remove(file: string): Promise<void> {
  await nodeBuiltins().fs.rm(file, {force: true}).catch(() => undefined);
}

function processIsAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errorCode(e) === 'EPERM'; // alive, owned by another user
  }
}

/** Whether `name` is a temporary that no running save will use any more. */
async function isAbandonedTemporary(dir: string, name: string): Promise<boolean> {
  const match = TEMPORARY.exec(name);
  if (match == null) return false;
  const pid = Number(match[1]);
  if (pid === process.pid) return !inFlight.has(name);
  if (pid <= 0 || !processIsAlive(pid)) return true;
  const stat = await nodeBuiltins().fs.stat(nodeBuiltins().path.join(dir, name)).catch(() => null);
  return stat != null && Date.now() - stat.mtimeMs > ABANDONED_AFTER_MS;
}

/** The files of `dir` the current model.json points to; null when model.json cannot be read or understood. */
async function referencedFiles(dir: string): Promise<Set<string> | null> {
  const {fs, path} = nodeBuiltins();
  let manifest: unknown;
  try {
    manifest = (JSON.parse(await fs.readFile(path.join(dir, MODEL_JSON), 'utf8')) as {weightsManifest?: unknown}).weightsManifest;
  } catch (e) {
    return errorCode(e) === 'ENOENT' ? new Set() : null;
  }
  if (manifest == null) return new Set();
  if (!Array.isArray(manifest)) return null;
  const paths = manifest.flatMap((group: {paths?: unknown}) => (Array.isArray(group?.paths) ? group.paths : []));
  return new Set(paths.filter((p): p is string => typeof p === 'string').map(p => path.relative(dir, path.join(dir, p))));
}

/**
 * Removes abandoned temporaries, then weights files that neither model.json nor a running save
 * points to. The second listing comes after the first: a save that had renamed its weights file
 * into place before the first listing had created its model.json temporary before that too, so
 * the second listing shows that temporary — or it was renamed already, and model.json, read after
 * the second listing, points to the weights.
 */
async function removeLeftovers(dir: string): Promise<void> {
  const {fs, path} = nodeBuiltins();
  try {
    const listed = await fs.readdir(dir);
    for (const name of listed) {
      if (await isAbandonedTemporary(dir, name)) await remove(path.join(dir, name));
    }
    const weightsFiles = listed.filter(name => WEIGHTS_FILE.test(name) || name === LEGACY_WEIGHTS);
    if (weightsFiles.length === 0) return;
    const pending = new Set<string>();
    for (const name of await fs.readdir(dir)) {
      const match = MODEL_JSON_TEMPORARY.exec(name);
      if (match != null && !(await isAbandonedTemporary(dir, name))) pending.add(weightsFileName(match[1]));
    }
    const referenced = await referencedFiles(dir);
    if (referenced == null) return; // an unreadable model.json: keep every weights file
    for (const name of weightsFiles) {
      if (!referenced.has(name) && !pending.has(name)) await remove(path.join(dir, name));
    }
  } catch {
    // Clean-up never fails a save: the model is published (or the failure is already reported).
  }
}
