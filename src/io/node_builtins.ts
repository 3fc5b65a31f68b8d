/**
 * Node's built-in modules for the file:// handler, loaded on first use through a require that
 * bundlers do not follow, so that a browser bundle of the package neither includes nor fails on them.
 */
type Fs = typeof import('fs/promises');
type Path = typeof import('path');
type Crypto = typeof import('crypto');

/** Whether this is Node (the only place a file system exists). */
export function isNode(): boolean {
  return typeof process !== 'undefined' && process.versions?.node != null;
}

/** fs/promises, path and crypto: the module objects themselves, so that test spies on them apply here too. */
export function nodeBuiltins(): {fs: Fs, path: Path, crypto: Crypto} {
  const load = (name: string): unknown => {
    const builtin = (process as {getBuiltinModule?: (id: string) => unknown}).getBuiltinModule;
    return builtin != null ? builtin(name) : module.require(name);
  };
  return {fs: load('fs/promises') as Fs, path: load('path') as Path, crypto: load('crypto') as Crypto};
}
