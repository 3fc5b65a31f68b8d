/**
 * A layer's training step in one call: normalization with the batch statistics, and optionally the
 * moving-statistics update, Batch Renormalization (renorm_ops.ts) and ghost batches (ghost_view.ts).
 * Internal: the BatchNorm layer calls it; the public op batchNormTrain is the step without them.
 *
 * Where the backend's training kernel declares every feature the step uses (dispatch.ts, feature
 * modes), the whole step is that one kernel: statistics per (ghost batch, channel), r and d, the
 * output and every updated statistic, with per-channel tensors passed as they are. Otherwise the
 * same step is composed around the base training op (fused or tf ops): ghost batches through a
 * view, renorm through corrected γ and β, the updates in tf ops — all off the gradient tape except
 * the normalization itself.
 *
 * The updated statistics are assignments (as TensorFlow's assign and PyTorch's in-place running
 * statistics): the gradient treats them as constants. They are only reachable through this
 * internal function, whose caller writes them into the layer's non-trainable variables.
 */
import {NamedAttrMap, ones, reshape, scalar, Tensor, Tensor1D, TensorContainerObject, tidy, zeros} from '@tensorflow/tfjs-core';
import {trainSaves} from '../gradients/batch_norm_train_grad';
import {runKernelSaving} from '../gradients/saved';
import {BatchNormTrain, BatchNormTrainAttrs, batchNormTrainOutputs} from '../kernel_names';
import {batchNormTrainComposite} from './batch_norm_composite';
import {FeatureMode, implementationFor, situationOf} from './dispatch';
import {fromView, ghostView, meanOverGhosts, perGhost, StatisticsView} from './ghost_view';
import {maskWeights} from './mask';
import {Bound, composeCorrection, MovingInputs, renormCorrection, RenormInputs, UpdatedStatistics, updatedStatistics} from './renorm_ops';
import {argumentError, CheckedArgs} from './validate';

/** What a training step does besides normalizing. */
export interface TrainStepOptions {
  /** A Keras mask (checked): positions left out of the statistics. */
  mask?: Tensor | null;
  /** The moving statistics to update (null: no update). */
  moving?: MovingInputs | null;
  /** Batch Renormalization (null: off). */
  renorm?: RenormInputs | null;
  /** Ghost batches of this many samples (null: off); must divide the batch size. */
  virtualBatchSize?: number | null;
  /** Names the caller in errors. */
  fn?: string;
}

/** The step's results: y, the batch mean and variance ([channels]), and the updated statistics (with `moving`). */
export interface TrainStepResult {
  y: Tensor;
  mean: Tensor1D;
  variance: Tensor1D;
  updated: UpdatedStatistics | null;
}

/** Ghost batches per batch, after checking that virtualBatchSize divides the batch size (Keras 2 fails there too). */
function ghostCount(fn: string, batch: number, virtualBatchSize: number | null | undefined): number {
  if (virtualBatchSize == null) return 1;
  if (batch % virtualBatchSize !== 0) {
    throw argumentError(fn, 'virtualBatchSize', `is ${virtualBatchSize}, which does not divide the batch size ${batch}: ` +
        `in training each batch is split into ghost batches of ${virtualBatchSize} samples`);
  }
  return batch / virtualBatchSize;
}

/** The features of kernel_names.ts a step uses. */
function featuresUsed(options: TrainStepOptions, ghosts: number): FeatureMode[] {
  return [...(options.moving != null ? ['movingUpdate' as const] : []), ...(options.renorm != null ? ['renorm' as const] : []),
    ...(ghosts > 1 ? ['ghosts' as const] : [])];
}

/** Normalizes x with its batch statistics and does what `options` asks (see the file comment). Validated arguments. */
export function trainStep(args: CheckedArgs, gamma: Tensor | null, beta: Tensor | null, options: TrainStepOptions = {}): TrainStepResult {
  const ghosts = ghostCount(options.fn ?? 'batchNormTrain', args.x.shape[0], options.virtualBatchSize);
  const uses = featuresUsed(options, ghosts);
  const masked = options.mask != null;
  // tidy keeps what the step returns (nested objects and nulls included) and frees the rest.
  return tidy(() => {
    const inKernel = uses.length > 0 && uses.every(f => implementationFor(f, args.x.rank, args.axes, {uses, masked}) === 'fused');
    if (inKernel) return fusedStep(args, gamma, beta, options, ghosts) as unknown as TensorContainerObject;
    const view = ghostView(args.x, options.mask ?? null, args.axes, ghosts, !masked && implementationFor('train', args.x.rank, args.axes) === 'fused');
    return composedStep(args, view, gamma, beta, options) as unknown as TensorContainerObject;
  }) as unknown as TrainStepResult;
}

/** gamma and beta as the fused training kernel takes them: as given where it declares flexibleParams, else [channels] with fills. */
function paramInputs(args: CheckedArgs, gamma: Tensor | null, beta: Tensor | null, flexible: boolean):
    {inputs: Record<string, Tensor>; paramShape?: number[]} {
  if (!flexible) {
    const perChannel = [args.channels];
    // No Reshape kernel where they already are [channels] (a layer's variables, mostly).
    const asChannels = (t: Tensor) => (t.shape.length === 1 && t.shape[0] === args.channels ? t : reshape(t, perChannel));
    return {inputs: {gamma: gamma == null ? ones(perChannel) : asChannels(gamma), beta: beta == null ? zeros(perChannel) : asChannels(beta)}};
  }
  // dgamma and dbeta take one shape (paramShape): a beta shaped unlike gamma is reshaped to it.
  const paramShape = gamma?.shape ?? beta?.shape ?? [args.channels];
  const b = beta == null || gamma == null || beta.shape.join() === gamma.shape.join() ? beta : reshape(beta, paramShape);
  return {inputs: {...(gamma == null ? {} : {gamma}), ...(b == null ? {} : {beta: b})}, paramShape};
}

/** A bound as the kernel takes it: a scalar tensor input, or absent. */
function boundInput(name: string, bound: Bound): Record<string, Tensor> {
  return bound == null ? {} : {[name]: typeof bound === 'number' ? scalar(bound) : bound};
}

/** The whole step in one call of the training kernel (it declares every feature the step uses), or the base forward. */
function fusedStep(args: CheckedArgs, gamma: Tensor | null, beta: Tensor | null, options: TrainStepOptions, ghosts: number): TrainStepResult {
  const {moving, renorm} = options;
  const flexible = situationOf('train', args.x.rank, args.axes).features.includes('flexibleParams');
  const params = paramInputs(args, gamma, beta, flexible);
  const inputs: Record<string, Tensor> = {x: args.x, ...params.inputs};
  if (moving != null) {
    inputs.movingMean = moving.mean;
    if (renorm != null) inputs.movingStddev = moving.stddev as Tensor;
    else inputs.movingVariance = moving.variance;
  }
  if (renorm != null) {
    Object.assign(inputs, {renormMean: renorm.renormMean, renormStddev: renorm.renormStddev},
        boundInput('rmin', renorm.rmin), boundInput('rmax', renorm.rmax), boundInput('dmax', renorm.dmax));
  }
  // Absent optional attributes pass as undefined, which the kernels read as their defaults (ghosts 1).
  const attrs: BatchNormTrainAttrs = {axis: args.axes, epsilon: args.epsilon, paramShape: params.paramShape, ghosts,
    momentum: moving?.momentum, renormMomentum: renorm?.renormMomentum};
  const names = batchNormTrainOutputs({moving: moving != null, renorm: renorm != null, ghosts: ghosts > 1});
  const outputs = runKernelSaving(BatchNormTrain, inputs, attrs as unknown as NamedAttrMap, trainSaves(names));
  const out = Object.fromEntries(names.map((name, i) => [name, outputs[i]]));
  const updated = moving == null ? null : {movingMean: out.movingMean, movingVariance: out.movingVariance,
    ...(renorm == null ? {} : {movingStddev: out.movingStddev, renormMean: out.renormMean, renormStddev: out.renormStddev})};
  return {y: out.y, mean: out.mean as Tensor1D, variance: out.variance as Tensor1D, updated};
}

/**
 * The step composed around the base training op on the view (one ghost batch: x itself): renorm's
 * r and d from the view's statistics (a statistics-only run of the op, off the tape), the
 * normalization with γ' = r·γ and β' = d·γ + β repeated per ghost batch, and the updates in tf ops.
 */
function composedStep(args: CheckedArgs, view: StatisticsView, gamma: Tensor | null, beta: Tensor | null,
                      options: TrainStepOptions): TrainStepResult {
  const {moving, renorm} = options;
  const viewArgs = {...args, x: view.x, axes: view.axes, channels: args.channels * view.ghosts};
  let [g, b] = [gamma, beta];
  if (renorm != null) {
    const correction = renormCorrection(() => statistics(baseTrain(viewArgs, null, null, view.mask), view.ghosts), renorm, args.epsilon);
    ({gamma: g, beta: b} = composeCorrection(correction, gamma, beta));
  }
  const perGhostParam = (t: Tensor | null) => (t == null ? null : perGhost(t, view.ghosts));
  const {y, mean, variance} = statistics(baseTrain(viewArgs, perGhostParam(g), perGhostParam(b), view.mask), view.ghosts);
  const updated = moving == null ? null : updatedStatistics(mean, variance, moving, renorm ?? null, args.epsilon);
  return {y: view.x === args.x ? y : fromView(view, y, args.x.shape), mean: mean as Tensor1D, variance: variance as Tensor1D, updated};
}

/** A training forward's per-(ghost, channel) mean and variance averaged over ghost batches. */
function statistics<T extends {mean: Tensor; variance: Tensor}>(result: T, ghosts: number): T {
  return {...result, mean: meanOverGhosts(result.mean, ghosts), variance: meanOverGhosts(result.variance, ghosts)};
}

/**
 * The base training forward (no moving update, renorm or ghost batches): the fused kernel where the
 * table says so, else tf ops (masked: mask weights, Keras 3's rule).
 */
export function baseTrain(args: CheckedArgs, gamma: Tensor | null, beta: Tensor | null, mask: Tensor | null):
    {y: Tensor; mean: Tensor1D; variance: Tensor1D} {
  const implementation = implementationFor(mask == null ? 'train' : 'masked', args.x.rank, args.axes);
  if (implementation === 'fused') {
    const {y, mean, variance} = fusedStep(args, gamma, beta, {}, 1);
    return {y, mean, variance};
  }
  return batchNormTrainComposite(args.x, gamma, beta, args, mask == null ? null : maskWeights(mask, args.x));
}
