/**
 * file:// saves leave a loadable model at every point. A save that fails midway leaves the earlier
 * model byte for byte and no leftovers; concurrent saves to one directory run one after another
 * (the last one called wins whole) and every resolved save leaves a model that loads whole; a load
 * racing a save gets one model whole; the leftovers of a crashed save are removed by the next save.
 * (crash.test.ts kills real processes mid-save.) IO is backend-independent: cpu.
 */
import * as tf from '@tensorflow/tfjs';
import {spawnSync} from 'child_process';
import * as os from 'os';
import * as path from 'path';
import {FileHandler} from '../src/io/file_handler';
import {distinctArtifacts, fingerprints, identify} from './support/distinct_models';

// The fs/promises module object itself (not an import namespace copy), so that jest.spyOn can
// replace its functions for the handler too, which loads the same object.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fsp = require('fs/promises') as typeof import('fs/promises');

let artifacts: tf.io.ModelArtifacts[];
let known: string[];
let dir: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
  artifacts = await distinctArtifacts(6);
  known = await fingerprints(artifacts);
});

beforeEach(async () => {
  dir = path.join(await fsp.mkdtemp(path.join(os.tmpdir(), 'tfjs-batchnorm-consistency-')), 'model');
});

afterEach(async () => {
  jest.restoreAllMocks();
  await fsp.rm(path.dirname(dir), {recursive: true, force: true});
});

/** Which of the six models the directory loads (-1: another one), through this package's checked loader. */
async function loadedIndex(): Promise<number> {
  return identify(await tf.loadLayersModel(new FileHandler(dir)), known);
}

/** Every file of the directory with its bytes. */
async function snapshot(): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of (await fsp.readdir(dir)).sort()) files.set(name, await fsp.readFile(path.join(dir, name)));
  return files;
}

const simulated = (code: string) => Object.assign(new Error(`${code}: simulated`), {code});

describe('a save that fails midway leaves the earlier model byte for byte, and no leftovers', () => {
  const failures: [string, () => void][] = [
    ['writing model.json (the first file written)', () => failWrite(/model\.json\.tmp-/, 'ENOSPC')],
    ['writing the weights', () => failWrite(/\.bin\.tmp-/, 'ENOSPC')],
    ['flushing the weights to disk', () => failWrite(/\.bin\.tmp-/, 'EIO', 'sync')],
    ['renaming model.json into place (after the new weights were renamed into place)', () => failRename(/model\.json$/, 'EIO')],
  ];

  function failWrite(file: RegExp, code: string, method: 'writeFile' | 'sync' = 'writeFile'): void {
    const realOpen = fsp.open;
    jest.spyOn(fsp, 'open').mockImplementation(async (name, flags) => {
      const handle = await realOpen(name, flags);
      if (file.test(String(name))) jest.spyOn(handle, method).mockRejectedValue(simulated(code));
      return handle;
    });
  }

  function failRename(to: RegExp, code: string): void {
    const realRename = fsp.rename;
    jest.spyOn(fsp, 'rename').mockImplementation(async (from, target) => {
      if (to.test(String(target))) throw simulated(code);
      return realRename(from, target);
    });
  }

  it.each(failures)('failing at %s', async (_, fail) => {
    await new FileHandler(dir).save(artifacts[0]);
    const before = await snapshot();
    fail();
    await expect(new FileHandler(dir).save(artifacts[1])).rejects.toThrow(`file:// save to ${dir}: cannot`);
    jest.restoreAllMocks();
    expect(await snapshot()).toEqual(before);
    expect(await loadedIndex()).toBe(0);
  });
});

describe('the directory', () => {
  it('saving the same model again leaves the same files, byte for byte', async () => {
    await new FileHandler(dir).save(artifacts[2]);
    const first = await snapshot();
    await new FileHandler(dir).save(artifacts[2]);
    expect(await snapshot()).toEqual(first);
  });

  it('a model in the older layout (model.json + weights.bin, as tfjs-node writes) is replaced whole; other files stay', async () => {
    await fsp.mkdir(dir);
    await fsp.writeFile(path.join(dir, 'weights.bin'), Buffer.from(artifacts[0].weightData as ArrayBuffer));
    await fsp.writeFile(path.join(dir, 'model.json'), JSON.stringify({
      modelTopology: artifacts[0].modelTopology, weightsManifest: [{paths: ['weights.bin'], weights: artifacts[0].weightSpecs}],
    }));
    await fsp.writeFile(path.join(dir, 'notes.txt'), 'mine');
    expect(await loadedIndex()).toBe(0);
    await new FileHandler(dir).save(artifacts[1]);
    const names = await fsp.readdir(dir);
    expect(names.sort()).toEqual(['model.json', 'notes.txt', expect.stringMatching(/^weights\.[0-9a-f]{16}\.bin$/)]);
    expect(await loadedIndex()).toBe(1);
  });

  it('leftovers of crashed saves are removed by the next save; a running save of another process keeps its files', async () => {
    await new FileHandler(dir).save(artifacts[0]);
    const dead = spawnSync(process.execPath, ['-e', '']).pid as number; // exited: its pid is free
    const alive = process.ppid;
    const leftovers = [
      `model.json.tmp-${dead}-abc123-00112233aabbccdd`, `weights.00112233aabbccdd.bin.tmp-${dead}-abc123`,
      `weights.00112233aabbccdd.bin`, // renamed into place, never published
      `weights.bin.tmp-${dead}-lk2x-abc`, `model.json.tmp-${dead}-lk2x-abc.old`, // the older handler's temporaries
    ];
    const running = [`model.json.tmp-${alive}-xyz789-99887766aabbccdd`, 'weights.99887766aabbccdd.bin'];
    for (const name of [...leftovers, ...running, 'training-curves.svg']) await fsp.writeFile(path.join(dir, name), 'x');

    await new FileHandler(dir).save(artifacts[1]);
    const names = await fsp.readdir(dir);
    for (const name of leftovers) expect(names).not.toContain(name);
    for (const name of [...running, 'training-curves.svg']) expect(names).toContain(name);
    expect(names).toHaveLength(running.length + 3); // + model.json, its weights, the user's file
    expect(await loadedIndex()).toBe(1);
  });

  it('a weights file changed after it was written is refused by its content hash', async () => {
    await new FileHandler(dir).save(artifacts[0]);
    const weights = (await fsp.readdir(dir)).find(n => n.startsWith('weights.')) as string;
    const bytes = await fsp.readFile(path.join(dir, weights));
    bytes[10] ^= 0x40;
    await fsp.writeFile(path.join(dir, weights), bytes);
    const before = tf.memory().numTensors;
    await expect(tf.loadLayersModel(new FileHandler(dir))).rejects.toThrow(
        new RegExp(`file:// load: ${path.join(dir, weights)} is damaged: its content hashes to [0-9a-f]{16}, but it was saved with content hash`));
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('concurrent saves to one directory', () => {
  it('six at once, ten times: each resolves leaving a model that loads whole; the last one called wins', async () => {
    for (let round = 0; round < 10; round++) {
      const order = [0, 1, 2, 3, 4, 5].map(i => (i + round) % 6);
      const loadedAfterEach = await Promise.all(order.map(i => new FileHandler(dir).save(artifacts[i]).then(loadedIndex)));
      // Saves run in call order, so right after save k resolves the directory holds model k or a later one.
      loadedAfterEach.forEach((index, k) => expect(order.indexOf(index)).toBeGreaterThanOrEqual(k));
      expect(await loadedIndex()).toBe(order[5]);
      expect(await fsp.readdir(dir)).toHaveLength(2);
    }
  });

  it('six model.save calls at once: all resolve and the directory holds one of the models whole', async () => {
    const models = await Promise.all(artifacts.map(a => tf.loadLayersModel(tf.io.fromMemory(a))));
    await Promise.all(models.map(m => m.save(new FileHandler(dir))));
    expect(await loadedIndex()).toBeGreaterThanOrEqual(0);
    expect(await fsp.readdir(dir)).toHaveLength(2);
    models.forEach(m => m.dispose());
  });

  it('two saves 0–4 ms apart: the second wins whole', async () => {
    for (let gap = 0; gap <= 4; gap++) {
      const first = new FileHandler(dir).save(artifacts[gap % 2]);
      await new Promise(resolve => setTimeout(resolve, gap));
      await Promise.all([first, new FileHandler(dir).save(artifacts[(gap + 1) % 2])]);
      expect(await loadedIndex()).toBe((gap + 1) % 2);
    }
  });
});

describe('a load racing a save', () => {
  it('that read model.json just before a save replaced it (and removed its weights) reads model.json again', async () => {
    await new FileHandler(dir).save(artifacts[0]);
    const realReadFile = fsp.readFile;
    let jsonReads = 0;
    jest.spyOn(fsp, 'readFile').mockImplementation((async (file: string, options?: unknown) => {
      const content = await realReadFile(file, options as BufferEncoding);
      // The first read of model.json returns the old text; before the loader goes on, a whole save happens.
      if (String(file).endsWith('model.json') && jsonReads++ === 0) await new FileHandler(dir).save(artifacts[1]);
      return content;
    }) as typeof fsp.readFile);
    expect(await loadedIndex()).toBe(1);
    expect(jsonReads).toBeGreaterThanOrEqual(2);
  });
});
