/**
 * The process crash.test.ts stops and kills: saves the models given on the command line into one
 * directory with this package's file:// handler, round-robin, forever, writing one '.' to stdout
 * after each completed save. Usage: node crash_child.js DIR MODEL... (each MODEL: MODEL.json with
 * the artifacts' JSON fields, MODEL.bin with their weight data).
 */
import * as fs from 'fs';
import type {io} from '@tensorflow/tfjs-core';
import {FileHandler} from '../../src/io/file_handler';

const [dir, ...models] = process.argv.slice(2);
const artifacts: io.ModelArtifacts[] = models.map(model => {
  const bin = fs.readFileSync(`${model}.bin`);
  return {...JSON.parse(fs.readFileSync(`${model}.json`, 'utf8')), weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength)};
});

async function main(): Promise<void> {
  for (let i = 0; ; i++) {
    await new FileHandler(dir).save(artifacts[i % artifacts.length]);
    process.stdout.write('.');
  }
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
