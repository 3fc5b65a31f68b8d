/**
 * Deploying models with batch norm: fold it into the layer before it (foldBatchNorm), recalibrate
 * its statistics (recalibrate); the call-site `training` handling lives in the layer
 * (call_site_training.ts).
 */
export {foldBatchNorm} from './fold';
export type {FoldOptions, FoldReport, KeptBatchNorm} from './fold';
export {recalibrate} from './recalibrate';
export type {RecalibrateOptions, RecalibratedLayer, RecalibrationProgress} from './recalibrate';
export type {RecalibrationBatch, RecalibrationData} from './data_source';
export type {InferenceStatistics} from './call_site_training';
