/**
 * An ES-module program using the installed package (copied into a scratch project by
 * __tests__/consumer.test.ts): static imports of every entry through Node's ESM loader (which
 * needs the .js extensions the build adds), then the shared checks.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as bn from 'tfjs-batchnorm';
import {batchNormTrain} from 'tfjs-batchnorm/op';
import * as nodeEntry from 'tfjs-batchnorm/node';
import {runChecks} from './node_checks.mjs';

const resolved = import.meta.resolve('tfjs-batchnorm');
if (!resolved.endsWith('/tfjs-batchnorm/dist/esm/node.js')) throw new Error(`import 'tfjs-batchnorm' resolved to ${resolved}`);
await runChecks(tf, tfl, bn, {batchNormTrain}, nodeEntry);
console.log('esm: ok');
