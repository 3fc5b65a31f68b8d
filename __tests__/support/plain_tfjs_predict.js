/**
 * Run by fold_plain_tfjs.test.ts in a separate Node process: plain @tensorflow/tfjs, without
 * tfjs-batchnorm (and without tfjs-node, whose file:// loader is not installable here). Loads the
 * model in `dir` (model.json + weights.bin, the file:// layout) with tf.io.fromMemory, predicts on the
 * input in `dir/input.json`, and writes `dir/output.json`: the predictions and the modules loaded.
 *   node plain_tfjs_predict.js DIR
 */
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

async function main() {
  const dir = process.argv[2];
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weightSpecs = modelJson.weightsManifest.flatMap(group => group.weights);
  const bytes = fs.readFileSync(path.join(dir, modelJson.weightsManifest[0].paths[0]));
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  await tf.setBackend('cpu');
  const model = await tf.loadLayersModel(tf.io.fromMemory({modelTopology: modelJson.modelTopology, weightSpecs, weightData}));
  const input = JSON.parse(fs.readFileSync(path.join(dir, 'input.json'), 'utf8'));
  const output = model.predict(tf.tensor(input.values, input.shape));
  const loaded = Object.keys(require.cache).filter(p => !p.includes(`${path.sep}node_modules${path.sep}`) && p !== __filename);
  fs.writeFileSync(path.join(dir, 'output.json'), JSON.stringify({values: Array.from(output.dataSync()), loaded}));
}

main().catch(e => {
  console.error(e.stack);
  process.exitCode = 1;
});
