/**
 * A CommonJS program using the installed package (copied into a scratch project by
 * __tests__/consumer.test.ts): require() of every entry, then the shared checks. Also checks that
 * require() got the CommonJS build and that exactly one tfjs-core was loaded.
 */
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tfl = require('@tensorflow/tfjs-layers');
const bn = require('tfjs-batchnorm');
const op = require('tfjs-batchnorm/op');
const nodeEntry = require('tfjs-batchnorm/node');

(async () => {
  const resolved = require.resolve('tfjs-batchnorm');
  if (!resolved.endsWith('/tfjs-batchnorm/dist/cjs/node.js')) throw new Error(`require('tfjs-batchnorm') resolved to ${resolved}`);
  const {runChecks} = await import('./node_checks.mjs');
  await runChecks(tf, tfl, bn, op, nodeEntry);
  const cores = new Set(Object.keys(require.cache).filter(f => f.includes('/@tensorflow/tfjs-core/'))
      .map(f => f.slice(0, f.indexOf('/@tensorflow/tfjs-core/'))));
  if (cores.size !== 1) throw new Error(`expected one tfjs-core, loaded: ${[...cores].join(', ')}`);
  console.log('cjs: ok');
})().catch(e => {
  console.error(e.stack);
  process.exit(1);
});
