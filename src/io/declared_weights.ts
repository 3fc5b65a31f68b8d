/**
 * The weights a layers-model topology declares (per layer: weight name, shape, dtype), learned
 * without allocating them. A layer's weight shapes depend on its config and on the shapes flowing
 * into it, so they are only known by building the model; but tfjs allocates every weight while
 * building, and a hostile topology declaring 1e9 channels then takes seconds and gigabytes — on
 * wasm it exhausts the heap and leaves the backend broken for good. Here the topology is
 * deserialized exactly as tfjs does it (tf.models.modelFromJSON), with weight creation
 * intercepted: `Layer.addWeight` records the requested shape and dtype and creates a scalar
 * placeholder instead, so building costs a few bytes per weight whatever the topology says.
 * While building, the layer being deserialized or built is tracked, so that a config tfjs
 * rejects is reported with the layer's name and class.
 *
 * The interception patches two Layer.prototype methods and the layer entries of the
 * serialization registry for the duration of one synchronous call (modelFromJSON deserializes
 * before its first await), and restores them in a finally block; nothing else can run meanwhile.
 */
import {DataType, serialization, tidy} from '@tensorflow/tfjs-core';
import {initializers, layers, LayersModel, LayerVariable, models} from '@tensorflow/tfjs-layers';

/** A weight the topology declares, with the names tfjs matches weights-manifest entries against. */
export interface DeclaredWeight {
  /** The innermost layer that creates the weight. */
  layer: string;
  className: string;
  /** The weight's own name in its layer ('kernel', 'gamma', …). */
  weight: string;
  /** The scoped name ('conv/kernel') manifests use. */
  originalName: string;
  /** The `layer/<index>` name of Keras 3 saves, which tfjs accepts too. */
  kerasV3Name: string;
  /** The shape the layer asked for: from the config, so not necessarily valid. */
  shape: unknown[];
  dtype: DataType;
  trainable: boolean;
}

/** A model built with placeholder weights, and the weights it declared; dispose() frees everything it holds. */
export interface DeclaredModel {
  model: LayersModel;
  weights: DeclaredWeight[];
  dispose: () => void;
}

type LayerInstance = InstanceType<typeof layers.Layer>;
type AddWeight = (this: LayerInstance, name: string, shape: unknown, dtype?: DataType, initializer?: unknown,
                  regularizer?: unknown, trainable?: boolean, constraint?: unknown) => LayerVariable;
type Apply = (this: LayerInstance, ...args: unknown[]) => unknown;
type RegistryEntry = [serialization.SerializableConstructor<serialization.Serializable>,
                      (cls: unknown, config: serialization.ConfigDict, ...rest: unknown[]) => serialization.Serializable];

interface Recorded {
  layer: LayerInstance;
  weight: string;
  shape: unknown[];
  dtype: DataType;
  trainable: boolean;
  variable: LayerVariable;
}

interface LayerRef {
  name: string;
  className: string;
}

const MAX_MESSAGE_LENGTH = 300;

/** State of one interception: what was recorded, and which layer each error came from. */
class Interception {
  readonly recorded: Recorded[] = [];
  readonly blamed = new WeakMap<object, LayerRef>();
  private readonly frames: LayerRef[] = [];
  private started = false;

  get deserialized(): boolean {
    return this.started;
  }

  /** Runs `body` with `ref` as the current layer; an error escaping it is blamed on the innermost layer. */
  within<T>(ref: LayerRef, body: () => T): T {
    this.started = true;
    this.frames.push(ref);
    try {
      return body();
    } catch (e) {
      if (e != null && typeof e === 'object' && !this.blamed.has(e)) this.blamed.set(e, ref);
      throw e;
    } finally {
      this.frames.pop();
    }
  }

  /** Runs `body` (synchronous) with Layer.addWeight/apply and the layer registry entries intercepted. */
  run<T>(body: () => T): T {
    const proto = layers.Layer.prototype as unknown as {addWeight: AddWeight, apply: Apply};
    const {addWeight, apply} = proto;
    const registry = serialization.SerializationMap.getMap().classNameMap as unknown as {[name: string]: RegistryEntry};
    const wrapped = Object.entries(registry).filter(([, [cls]]) => cls.prototype instanceof layers.Layer);
    const zeros = initializers.zeros();
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    proto.addWeight = function(name, shape, dtype, _initializer, _regularizer, trainable) {
      // A scalar stands in for the weight; regularizers and constraints are left out (never evaluated here).
      const variable = addWeight.call(this, name, [], dtype, zeros, undefined, trainable);
      self.recorded.push({layer: this, weight: name, shape: Array.isArray(shape) ? [...shape] : [shape],
                          dtype: dtype ?? 'float32', trainable: trainable ?? true, variable});
      return variable;
    };
    proto.apply = function(...args) {
      return self.within({name: this.name, className: this.getClassName()}, () => apply.apply(this, args));
    };
    for (const [className, [cls, fromConfig]] of wrapped) {
      registry[className] = [cls, (c, config, ...rest) =>
        self.within({name: String(config?.name ?? '(unnamed)'), className}, () => fromConfig(c, config, ...rest))];
    }
    try {
      return body();
    } finally {
      proto.addWeight = addWeight;
      proto.apply = apply;
      for (const [className, entry] of wrapped) registry[className] = entry;
    }
  }

  disposeAll(model?: LayersModel): void {
    for (const r of this.recorded) {
      try {
        r.variable.dispose();
      } catch {
        // disposed already
      }
    }
    // compile (a training config) creates an optimizer with variables of its own.
    model?.optimizer?.dispose();
  }
}

/** The error for a topology tfjs cannot build, naming the layer it failed in when known. */
function buildError(e: unknown, culprit: LayerRef | undefined, source: string): Error {
  const text = e instanceof Error ? e.message : String(e);
  const message = text.length > MAX_MESSAGE_LENGTH ? `${text.slice(0, MAX_MESSAGE_LENGTH)}…` : text;
  const what = culprit != null ? `layer '${culprit.name}' (${culprit.className})` : 'the model topology';
  return new Error(`${source}: ${what} cannot be built from its config: ${message}`);
}

/** The declared weights in the order and with the names tfjs' LayersModel.loadWeights uses. */
function declaredWeights(model: LayersModel, recorded: Recorded[]): DeclaredWeight[] {
  const byVariable = new Map(recorded.map(r => [r.variable, r]));
  const declared: DeclaredWeight[] = [];
  for (const layer of model.layers) {
    layer.weights.forEach((variable, index) => {
      const r = byVariable.get(variable);
      if (r == null) return; // created outside addWeight: not checkable here
      declared.push({
        layer: r.layer.name, className: r.layer.getClassName(), weight: r.weight, originalName: variable.originalName,
        kerasV3Name: `${variable.name.split('/').slice(0, -1).join('/')}/${index}`,
        shape: r.shape, dtype: r.dtype, trainable: r.trainable,
      });
    });
  }
  return declared;
}

/**
 * Builds `topology` (a layers-model topology, snake_case as in model.json) with placeholder
 * weights and returns the weights it declares. Throws, naming `source` and the layer, when tfjs
 * cannot build it; leaves no tensor behind either way once dispose() is called.
 */
export async function buildDeclaredModel(topology: {[key: string]: unknown}, source: string): Promise<DeclaredModel> {
  const interception = new Interception();
  let building: Promise<LayersModel> | undefined;
  // tidy: tensors a layer creates while building (other than its weights) go with the scope.
  tidy(() => {
    building = interception.run(() => models.modelFromJSON({modelTopology: topology} as Parameters<typeof models.modelFromJSON>[0]));
  });
  let model: LayersModel;
  try {
    model = await (building as Promise<LayersModel>);
  } catch (e) {
    interception.disposeAll();
    throw buildError(e, e != null && typeof e === 'object' ? interception.blamed.get(e) : undefined, source);
  }
  if (!interception.deserialized) {
    interception.disposeAll(model);
    throw new Error('checkModelArtifacts: this version of @tensorflow/tfjs-layers no longer deserializes models ' +
        'synchronously, so weight creation cannot be intercepted; refusing to check (it would allocate the weights)');
  }
  return {model, weights: declaredWeights(model, interception.recorded), dispose: () => interception.disposeAll(model)};
}
