/**
 * File-system errors of file:// saves and loads name the file:// operation and path and keep the
 * OS code (`error.code`), errno and syscall, so callers can branch on them. Simulated failures
 * cover every call a save and a load make; where this process may mount file systems (root in a
 * container), real ones do too: a read-only tmpfs (EROFS — where Node's own recursive mkdir
 * reports ENOENT) and a full one (ENOSPC). Elsewhere that part is reported as skipped.
 */
import * as tf from '@tensorflow/tfjs';
import {execFileSync} from 'child_process';
import {mkdtempSync, rmdirSync} from 'fs';
import * as os from 'os';
import * as path from 'path';
import {FileHandler} from '../src/io/file_handler';
import {distinctArtifacts} from './support/distinct_models';

// The fs/promises module object itself, so that jest.spyOn replaces its functions for the handler too.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fsp = require('fs/promises') as typeof import('fs/promises');

let artifacts: tf.io.ModelArtifacts[];
let tmp: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
  artifacts = await distinctArtifacts(2);
});
beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'tfjs-batchnorm-fs-'));
});
afterEach(async () => {
  jest.restoreAllMocks();
  await fsp.rm(tmp, {recursive: true, force: true});
});

function osError(code: string, syscall: string, file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated, ${syscall} '${file}'`), {code, errno: -1, syscall, path: file});
}

/** Makes `method` of fs/promises (or of the file handles it opens) fail with `code` for paths matching `file`. */
function failing(method: 'mkdir' | 'rename' | 'readFile' | 'stat' | 'open', code: string, file: RegExp): void {
  const real = fsp[method] as (...args: unknown[]) => Promise<unknown>;
  jest.spyOn(fsp, method).mockImplementation((async (...args: unknown[]) => {
    if (file.test(String(args[method === 'rename' ? 1 : 0]))) throw osError(code, method, String(args[0]));
    return real(...args);
  }) as never);
}

function failingWrite(code: string, file: RegExp): void {
  const realOpen = fsp.open;
  jest.spyOn(fsp, 'open').mockImplementation(async (name, flags) => {
    const handle = await realOpen(name, flags);
    if (file.test(String(name))) jest.spyOn(handle, 'writeFile').mockRejectedValue(osError(code, 'write', String(name)));
    return handle;
  });
}

describe('save errors name the file:// path and keep the OS code', () => {
  it.each([
    ['mkdir on a read-only file system', () => failing('mkdir', 'EROFS', /new$/), 'EROFS', 'cannot create directory DIR'],
    ['mkdir without permission', () => failing('mkdir', 'EACCES', /new$/), 'EACCES', 'cannot create directory DIR'],
    ['creating a file without permission', () => failing('open', 'EACCES', /model\.json\.tmp-/), 'EACCES', 'cannot write DIR/model.json.tmp-'],
    ['a full disk while writing the weights', () => failingWrite('ENOSPC', /\.bin\.tmp-/), 'ENOSPC', 'cannot write DIR/weights.'],
    ['renaming on a file system turned read-only', () => failing('rename', 'EROFS', /model\.json$/), 'EROFS', 'cannot rename DIR/model.json.tmp-'],
  ])('%s', async (_, fail, code, message) => {
    const dir = path.join(tmp, 'new');
    fail();
    const error = await new FileHandler(dir).save(artifacts[0]).then(() => null, (e: NodeJS.ErrnoException) => e);
    expect(error?.message).toContain(`file:// save to ${dir}: ${message.replace('DIR', dir)}`);
    expect(error?.message).toContain(`(${code}: simulated`);
    expect(error).toMatchObject({code, errno: -1});
  });
});

describe('load errors name the file:// path and keep the OS code', () => {
  it.each([
    ['model.json unreadable', 'readFile', /model\.json$/, 'cannot read model.json DIR/model.json'],
    ['the weights file unreadable', 'stat', /\.bin$/, 'cannot read weights file (for hidden/kernel'],
  ] as const)('%s', async (_, method, file, message) => {
    const dir = path.join(tmp, 'm');
    await new FileHandler(dir).save(artifacts[0]);
    failing(method, 'EACCES', file);
    const before = tf.memory().numTensors;
    const error = await tf.loadLayersModel(new FileHandler(dir)).then(() => null, (e: NodeJS.ErrnoException) => e);
    expect(error?.message).toContain(`file:// load: ${message.replace('DIR', dir)}`);
    expect(error).toMatchObject({code: 'EACCES'});
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN, as in a CI container). */
function canMount(): boolean {
  if (process.platform !== 'linux') return false;
  const probe = mkdtempSync(path.join(os.tmpdir(), 'tfjs-batchnorm-mount-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], {stdio: 'ignore'});
    execFileSync('umount', [probe], {stdio: 'ignore'});
    return true;
  } catch {
    return false;
  } finally {
    rmdirSync(probe);
  }
}

const mounts = canMount();
const describeWithMounts = mounts ? describe : describe.skip;
const skipReason = mounts ? '' : ' [skipped: this process cannot mount a tmpfs (needs root with CAP_SYS_ADMIN on Linux)]';

describeWithMounts(`real file systems${skipReason}`, () => {
  let mountPoint: string;
  beforeEach(async () => {
    mountPoint = path.join(tmp, 'mnt');
    await fsp.mkdir(mountPoint);
  });
  afterEach(() => {
    try {
      execFileSync('umount', [mountPoint], {stdio: 'ignore'});
    } catch {
      // not mounted: the test failed before mounting
    }
  });

  it('a read-only file system: EROFS with the directory named (Node\'s recursive mkdir says ENOENT), the model already there untouched', async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]);
    await new FileHandler(path.join(mountPoint, 'old')).save(artifacts[0]);
    const before = (await fsp.readdir(path.join(mountPoint, 'old'))).sort();
    execFileSync('mount', ['-o', 'remount,ro', mountPoint]);
    await expect(fsp.mkdir(path.join(mountPoint, 'new', 'sub'), {recursive: true})).rejects.toMatchObject({code: 'ENOENT'});

    const dir = path.join(mountPoint, 'new', 'sub');
    await expect(new FileHandler(dir).save(artifacts[0])).rejects.toMatchObject({
      code: 'EROFS', message: expect.stringContaining(`file:// save to ${dir}: cannot create directory ${path.join(mountPoint, 'new')} (EROFS`),
    });
    await expect(new FileHandler(path.join(mountPoint, 'old')).save(artifacts[1])).rejects.toMatchObject({
      code: 'EROFS', message: expect.stringContaining(`file:// save to ${path.join(mountPoint, 'old')}: cannot write`),
    });
    expect((await fsp.readdir(path.join(mountPoint, 'old'))).sort()).toEqual(before);
    const loaded = await tf.loadLayersModel(new FileHandler(path.join(mountPoint, 'old')));
    loaded.dispose();
  });

  it('a full file system: ENOSPC with the file named, the model already there untouched and no leftovers', async () => {
    // Room for the small model, not for a second copy of the large one's weights.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', mountPoint]);
    const dir = path.join(mountPoint, 'm');
    await new FileHandler(dir).save(artifacts[0]);
    const before = (await fsp.readdir(dir)).sort();
    const large: tf.io.ModelArtifacts = {...artifacts[0], weightData: new ArrayBuffer(64 * 1024),
      weightSpecs: [{name: 'big', shape: [16 * 1024], dtype: 'float32'}]};
    await expect(new FileHandler(dir).save(large)).rejects.toMatchObject({
      code: 'ENOSPC', message: expect.stringContaining(`file:// save to ${dir}: cannot write ${dir}/weights.`),
    });
    expect((await fsp.readdir(dir)).sort()).toEqual(before);
    const loaded = await tf.loadLayersModel(new FileHandler(dir));
    loaded.dispose();
  });
});
