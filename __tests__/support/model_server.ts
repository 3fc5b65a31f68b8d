/**
 * A local HTTP server for tf.io.http round trips in tests (save by multipart upload, load by GET),
 * and the fetch to use with it inside jest.
 */
import * as http from 'http';

/**
 * Node's fetch. Inside jest's sandbox its Response.json() builds arrays of Node's realm, which fail
 * tfjs' `instanceof Array` checks (the topology then deserializes wrongly); parsing the text in
 * this realm avoids that. Outside jest, plain `fetch` works as is.
 */
export const fetchForJest: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  const text = response.clone();
  return Object.assign(response, {json: async () => JSON.parse(await text.text()) as unknown});
};

export interface ModelServer {
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
export async function startModelServer(): Promise<ModelServer> {
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
