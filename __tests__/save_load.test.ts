/**
 * model.save → tf.loadLayersModel round-trips of a model with BatchNorm: in memory, file:// (this
 * package's handler, as tfjs-node is not installable here) and http:// against a local server.
 * Each gives the same topology, bit-identical weights, identical predictions, and a model that
 * keeps training. Also: the file:// layout, atomic saves, and the handler registration rules.
 * IO is backend-independent, so everything runs on cpu.
 */
import * as tf from '@tensorflow/tfjs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import {BatchNorm, checkedLoader, fileHandler} from '../src/node'; // the Node entry: it registers file://
import {convBatchNormModel, expectKeepsTraining, expectSameModel, expectSamePredictions, saveToMemory, train} from './support/round_trip';

// The fs/promises module object itself (not an import namespace copy), so that jest.spyOn can
// replace its functions for the handler too, which loads the same object.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fsp = require('fs/promises') as typeof import('fs/promises');

beforeAll(async () => {
  await tf.setBackend('cpu');
});

let tmp: string;
beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'tfjs-batchnorm-'));
});
afterEach(async () => {
  jest.restoreAllMocks();
  await fsp.rm(tmp, {recursive: true, force: true});
});

describe('a conv2d → BatchNorm → relu → flatten → dense model', () => {
  it('trains with fit (loss falls), then saves to file:// and reloads identical and still training', async () => {
    const model = convBatchNormModel();
    const losses = await train(model, 15);
    // Tolerance-free claim: the last epoch's loss is below half the first one's.
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
    await model.save(`file://${tmp}/trained`);
    const loaded = await tf.loadLayersModel(`file://${tmp}/trained/model.json`);
    expect(loaded.getLayer('bn')).toBeInstanceOf(BatchNorm);
    expectSameModel(loaded, model);
    await expectKeepsTraining(loaded);
  });
});

describe('round-trips', () => {
  it('tf.io.withSaveHandler + tf.io.fromMemory', async () => {
    const model = convBatchNormModel();
    await train(model, 1); // moves the moving statistics off their initial values
    const artifacts = await saveToMemory(model);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    expect(loaded.getLayer('bn')).toBeInstanceOf(BatchNorm);
    expectSameModel(loaded, model);
    await expectKeepsTraining(loaded);
  });

  it('file:// writes the tfjs-node layout and loads from model.json or its directory', async () => {
    const model = convBatchNormModel();
    await train(model, 1);
    const artifacts = await saveToMemory(model);
    const result = await model.save(`file://${tmp}/m`);
    expect(result.modelArtifactsInfo.weightDataBytes).toBe((artifacts.weightData as ArrayBuffer).byteLength);

    expect((await fsp.readdir(`${tmp}/m`)).sort()).toEqual(['model.json', 'weights.bin']);
    const json = JSON.parse(await fsp.readFile(`${tmp}/m/model.json`, 'utf8'));
    expect(json).toEqual({
      modelTopology: artifacts.modelTopology,
      format: 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: null,
      trainingConfig: artifacts.trainingConfig,
      weightsManifest: [{paths: ['weights.bin'], weights: artifacts.weightSpecs}],
    });
    const bin = await fsp.readFile(`${tmp}/m/weights.bin`);
    expect(bin.equals(Buffer.from(artifacts.weightData as ArrayBuffer))).toBe(true);

    for (const url of [`file://${tmp}/m/model.json`, `file://${tmp}/m`]) {
      const loaded = await tf.loadLayersModel(url);
      expectSameModel(loaded, model);
      await expectKeepsTraining(loaded);
    }
  });

  it('file:// with includeOptimizer: the optimizer state comes back bit-identical', async () => {
    const model = convBatchNormModel();
    await train(model, 1);
    await model.save(`file://${tmp}/m`, {includeOptimizer: true});
    const loaded = await tf.loadLayersModel(`file://${tmp}/m/model.json`);
    expectSameModel(loaded, model);
    const bytes = async (m: tf.LayersModel) => (await m.optimizer.getWeights()).map(w => {
      const values = w.tensor.dataSync();
      return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('hex');
    });
    expect(loaded.optimizer.getClassName()).toBe('Adam');
    expect(await bytes(loaded)).toEqual(await bytes(model));
  });

  it('http:// (tf.io.http with Node fetch) against a local server', async () => {
    const server = await startModelServer();
    try {
      const model = convBatchNormModel();
      await train(model, 1);
      await model.save(tf.io.http(`${server.url}/upload`, {fetchFunc: fetchForJest}));
      expect([...server.files.keys()].sort()).toEqual(['/model.json', '/model.weights.bin']);
      const loaded = await tf.loadLayersModel(tf.io.http(`${server.url}/model.json`, {fetchFunc: fetchForJest}));
      expect(loaded.getLayer('bn')).toBeInstanceOf(BatchNorm);
      expectSameModel(loaded, model);
      await expectKeepsTraining(loaded);
      // The same files through checkedLoader (the checks file:// loads get, for any source).
      expectSameModel(await tf.loadLayersModel(checkedLoader(tf.io.http(`${server.url}/model.json`, {fetchFunc: fetchForJest}))), model);
    } finally {
      await server.close();
    }
  });

  it('loads leave no tensors behind beyond the model they return', async () => {
    const model = convBatchNormModel();
    await model.save(`file://${tmp}/m`);
    const before = tf.memory().numTensors;
    const loaded = await tf.loadLayersModel(`file://${tmp}/m/model.json`);
    // The model's weights plus, compiled from the saved training config, nothing else until it trains.
    expect(tf.memory().numTensors - before).toBe(loaded.weights.length);
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('file:// saves are atomic', () => {
  /** Saves `old` to dir and returns its files' bytes; then makes a different model to save over it. */
  async function savedOldModel(dir: string): Promise<{old: tf.LayersModel, files: Map<string, Buffer>, next: tf.LayersModel}> {
    const old = convBatchNormModel();
    await old.save(`file://${dir}`);
    const files = new Map<string, Buffer>();
    for (const name of ['model.json', 'weights.bin']) files.set(name, await fsp.readFile(path.join(dir, name)));
    const next = convBatchNormModel();
    await train(next, 2);
    return {old, files, next};
  }

  async function expectOldModelIntact(dir: string, old: tf.LayersModel, files: Map<string, Buffer>): Promise<void> {
    expect((await fsp.readdir(dir)).sort()).toEqual(['model.json', 'weights.bin']); // no temporaries left
    for (const [name, bytes] of files) expect((await fsp.readFile(path.join(dir, name))).equals(bytes)).toBe(true);
    const reloaded = await tf.loadLayersModel(`file://${dir}/model.json`);
    expectSamePredictions(reloaded, old);
  }

  it('a write that fails midway (model.json, after weights.bin was written) leaves the old model untouched', async () => {
    const dir = `${tmp}/m`;
    const {old, files, next} = await savedOldModel(dir);
    const realOpen = fsp.open;
    jest.spyOn(fsp, 'open').mockImplementation(async (file, flags) => {
      const handle = await realOpen(file, flags);
      if (String(file).includes('model.json')) {
        jest.spyOn(handle, 'writeFile').mockRejectedValue(Object.assign(new Error('ENOSPC: no space left on device (simulated)'), {code: 'ENOSPC'}));
      }
      return handle;
    });
    await expect(next.save(`file://${dir}`)).rejects.toThrow('ENOSPC');
    jest.restoreAllMocks();
    await expectOldModelIntact(dir, old, files);
  });

  it.each([
    ['with hard links', false],
    ['on a file system without hard links (backup by copy)', true],
  ])('a rename that fails after weights.bin was replaced puts the old weights.bin back (%s)', async (_, noLinks) => {
    const dir = `${tmp}/m`;
    const {old, files, next} = await savedOldModel(dir);
    if (noLinks) jest.spyOn(fsp, 'link').mockRejectedValue(Object.assign(new Error('EPERM: operation not permitted (simulated)'), {code: 'EPERM'}));
    const realRename = fsp.rename;
    const renamed: string[] = [];
    jest.spyOn(fsp, 'rename').mockImplementation(async (from, to) => {
      if (String(to).endsWith('model.json')) throw Object.assign(new Error('EIO: i/o error (simulated)'), {code: 'EIO'});
      renamed.push(path.basename(String(to)));
      return realRename(from, to);
    });
    await expect(next.save(`file://${dir}`)).rejects.toThrow('EIO');
    jest.restoreAllMocks();
    // weights.bin was replaced by the new one, then restored from the backup.
    expect(renamed).toEqual(['weights.bin', 'weights.bin']);
    await expectOldModelIntact(dir, old, files);
  });

  it('saving to a path that is a file fails with a clear error and leaves the file alone', async () => {
    await fsp.writeFile(`${tmp}/file`, 'x');
    await expect(convBatchNormModel().save(`file://${tmp}/file`)).rejects.toThrow(/is not a directory|cannot create directory/);
    expect(await fsp.readFile(`${tmp}/file`, 'utf8')).toBe('x');
  });
});

describe('file:// handler registration', () => {
  it('this package provides the only file:// save and load handler when tfjs-node is absent', () => {
    expect(tf.io.getSaveHandlers('file:///tmp/x')).toHaveLength(1);
    expect(tf.io.getLoadHandlers('file:///tmp/x/model.json')).toHaveLength(1);
    expect(fileHandler('/tmp/x')).toBeInstanceOf(tf.io.getSaveHandlers('file:///tmp/x')[0].constructor);
  });

  it('steps aside for a file:// handler registered after it (tfjs-node imported later)', () => {
    const other: tf.io.IOHandler = {save: async () => ({modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}})};
    let active = true; // routers cannot be unregistered: this one declines once the test is over
    const router = ((url: string) => (active && url.startsWith('file://') ? other : null)) as unknown as Parameters<typeof tf.io.registerSaveRouter>[0];
    tf.io.registerSaveRouter(router);
    tf.io.registerLoadRouter(router);
    try {
      expect(tf.io.getSaveHandlers('file:///tmp/x')).toEqual([other]);
      expect(tf.io.getLoadHandlers('file:///tmp/x/model.json')).toEqual([other]);
    } finally {
      active = false;
    }
  });

  it('does not register when a file:// handler exists at import (tfjs-node imported first)', () => {
    jest.isolateModules(() => {
      // A fresh tfjs-core has a fresh router registry; the fake stands in for tfjs-node's.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const core = require('@tensorflow/tfjs-core') as typeof tf;
      const other: tf.io.IOHandler = {load: async () => ({})};
      const router = ((url: string) => (url.startsWith('file://') ? other : null)) as unknown as Parameters<typeof tf.io.registerLoadRouter>[0];
      core.io.registerSaveRouter(router);
      core.io.registerLoadRouter(router);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const pkg = require('../src/node') as typeof import('../src/node');
      expect(core.io.getSaveHandlers('file:///tmp/x')).toEqual([other]);
      expect(core.io.getLoadHandlers('file:///tmp/x')).toEqual([other]);
      expect(pkg.registerFileRouter()).toBe(false);
    });
  });
});

/**
 * Node's fetch. Inside jest's sandbox its Response.json() builds arrays of Node's realm, which fail
 * tfjs' `instanceof Array` checks (the topology then deserializes wrongly); parsing the text in
 * this realm avoids that. Outside jest, plain `fetch` works as is.
 */
const fetchForJest: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  const text = response.clone();
  return Object.assign(response, {json: async () => JSON.parse(await text.text()) as unknown});
};

interface ModelServer {
  url: string;
  files: Map<string, Buffer>;
  close: () => Promise<void>;
}

const MAX_UPLOAD_BYTES = 1 << 20;

/**
 * A local server for tf.io.http: POST /upload takes tf.io.http's multipart form (model.json and
 * model.weights.bin) and keeps each part under /<field name>; GET serves them back. Bound to
 * 127.0.0.1 on a random port, with a body size limit and request timeout.
 */
async function startModelServer(): Promise<ModelServer> {
  const files = new Map<string, Buffer>();
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: Buffer | string = '', type = 'text/plain') =>
      res.writeHead(status, {'content-type': type}).end(body);
    if (req.method === 'GET') {
      const file = files.get(req.url ?? '');
      if (file == null) return reply(404, 'not found');
      return reply(200, file, req.url?.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    }
    if (req.method !== 'POST' || req.url !== '/upload') return reply(405, 'method not allowed');
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_UPLOAD_BYTES) {
        reply(413, 'too large');
        req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      // Node's own multipart parser (the fetch API's Request.formData) reads tf.io.http's form.
      const body = Buffer.concat(chunks);
      new Request('http://127.0.0.1/upload', {method: 'POST', headers: {'content-type': req.headers['content-type'] ?? ''}, body})
          .formData()
          .then(async form => {
            const parts: Promise<void>[] = [];
            form.forEach((value, name) => {
              if (typeof value !== 'string') parts.push(value.arrayBuffer().then(b => void files.set(`/${name}`, Buffer.from(b))));
            });
            await Promise.all(parts);
            reply(200, 'saved');
          })
          .catch((e: Error) => reply(400, e.message));
    });
  });
  server.requestTimeout = 10_000;
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as {port: number};
  return {
    url: `http://127.0.0.1:${port}`,
    files,
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close(e => (e ? reject(e) : resolve()));
    }),
  };
}
