/**
 * `tfjs-batchnorm/op`: the fused BatchNorm op alone, for programs that do not use the layer.
 * Needs only @tensorflow/tfjs-core. Importing it registers the op's kernels (cpu, wasm) and its
 * gradients with tfjs (idempotently); nothing else. The main entry re-exports everything here.
 */
import {checkSingleTfjsCore} from './tfjs_copies';
import {registerBatchNorm} from './register';

checkSingleTfjsCore();
registerBatchNorm();

export {batchNormTrain} from './ops/batch_norm_train';
export type {BatchNormOptions, BatchNormTrainResult} from './ops/batch_norm_train';
export {batchNormInfer} from './ops/batch_norm_infer';
export type {AxisArg} from './ops/validate';
export {BatchNormTrain as BATCH_NORM_TRAIN_KERNEL, BatchNormTrainGrad as BATCH_NORM_TRAIN_GRAD_KERNEL, BatchNormInfer as BATCH_NORM_INFER_KERNEL} from './kernel_names';
export {registerBatchNorm} from './register';
