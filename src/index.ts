/**
 * tfjs-batchnorm: a fused, registered batch-normalization op for TensorFlow.js and a drop-in
 * replacement for tf.layers.batchNormalization. Safe in browsers and in Node.
 *
 * Importing it registers, once: the op's kernels (cpu, wasm) and gradients (see ./op), and the
 * layer class `TfjsBatchNorm>BatchNorm` with tf.serialization, so models that use it load.
 * It registers no tf.io handler; in Node, the `tfjs-batchnorm` import resolves to ./node, which
 * adds the file:// handler.
 */
export * from './op';
export {BatchNorm, batchNormalization} from './layers/batch_norm';
export type {BatchNormArgs} from './layers/batch_norm';
export type {ClipBound, RenormClipping, RenormRamp} from './layers/renorm_clipping';
export {checkedLoader, checkModelArtifacts} from './io/model_checks';
export {replaceBuiltinBatchNormalization, stockFormat, toStockArtifacts} from './io/stock_format';
export {foldBatchNorm, recalibrate} from './deploy';
export type {FoldOptions, FoldReport, KeptBatchNorm, InferenceStatistics, RecalibrateOptions, RecalibratedLayer, RecalibrationBatch, RecalibrationData, RecalibrationProgress} from './deploy';
