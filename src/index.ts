/**
 * tfjs-batchnorm: a fused, registered batch-normalization op for TensorFlow.js and a drop-in
 * replacement for tf.layers.batchNormalization. Importing this module registers the kernels.
 */
import {registerBatchNorm} from './register';

registerBatchNorm();

export {batchNormTrain} from './ops/batch_norm_train';
export type {BatchNormOptions, BatchNormTrainResult} from './ops/batch_norm_train';
export {batchNormInfer} from './ops/batch_norm_infer';
export type {AxisArg} from './ops/validate';
export {BatchNormTrain as BATCH_NORM_TRAIN_KERNEL, BatchNormTrainGrad as BATCH_NORM_TRAIN_GRAD_KERNEL, BatchNormInfer as BATCH_NORM_INFER_KERNEL} from './kernel_names';
export {registerBatchNorm} from './register';
export {BatchNorm, batchNormalization} from './layers/batch_norm';
export type {BatchNormArgs} from './layers/batch_norm';
export {fileHandler, registerFileRouter} from './io/file_handler';
export {checkedLoader, checkModelArtifacts} from './io/model_checks';
export {replaceBuiltinBatchNormalization, stockFormat, toStockArtifacts} from './io/stock_format';
export {foldBatchNorm, recalibrate} from './deploy';
export type {FoldOptions, FoldReport, KeptBatchNorm, InferenceStatistics, RecalibrateOptions, RecalibratedLayer, RecalibrationBatch, RecalibrationData, RecalibrationProgress} from './deploy';
