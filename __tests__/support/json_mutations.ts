/**
 * Random edits of a JSON document for the loader fuzz test: pick any node and drop it, duplicate
 * it (in a list), give it a value of another JSON type, or change a number or string (shapes,
 * dtypes, names). Each edit is a plain record, so fast-check can generate, shrink and print it.
 */
import fc from 'fast-check';

export type JsonPath = (string | number)[];

/** One edit: `target` selects the node (modulo the number of nodes), `op` what happens to it, `pick` which replacement. */
export interface JsonEdit {
  target: number;
  op: 'drop' | 'duplicate' | 'retype' | 'renumber' | 'restring';
  pick: number;
}

/** Replacement values of every JSON type; retype takes the first whose type differs from the node's. */
const JUNK: unknown[] = [null, true, 0, -1, 'x', [], {}, [1], {name: 'x'}, '', false, 1e9];
const NUMBERS = [0, -1, 1.5, 1e9, 3, 64];
const STRINGS = ['', 'int32', 'float32', 'bool', 'complex64', 'string', 'float16', 'uint8', 'optimizer', 'conv/kernel', 'weights.bin', 'x'];

/** Arbitrary edits. */
export const jsonEdit: fc.Arbitrary<JsonEdit> = fc.record({
  target: fc.nat(),
  op: fc.constantFrom('drop', 'duplicate', 'retype', 'renumber', 'restring'),
  pick: fc.nat(),
});

/** Every node's path below `value` (depth first), the root excluded. */
export function jsonPaths(value: unknown, prefix: JsonPath = []): JsonPath[] {
  if (value == null || typeof value !== 'object') return [];
  const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.flatMap(([key, child]) => [[...prefix, key], ...jsonPaths(child, [...prefix, key])]);
}

function typeOf(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/** A value for `op` that differs from `current` (another type for retype). */
function replacement(op: JsonEdit['op'], current: unknown, pick: number): unknown {
  const from = (list: unknown[]) => {
    for (let i = 0; i < list.length; i++) {
      const candidate = list[(pick + i) % list.length];
      if (op === 'retype' ? typeOf(candidate) !== typeOf(current) : candidate !== current) return candidate;
    }
    return list[0];
  };
  if (op === 'renumber' && typeof current === 'number') return from([...NUMBERS, current + 1, current * 2]);
  if (op === 'restring' && typeof current === 'string') return from([...STRINGS, `${current}x`]);
  return from(JUNK);
}

/**
 * Applies `edit` to a deep copy of `root` (plain JSON) and returns the copy with a description of
 * the edit (path, operation, new value).
 */
export function applyJsonEdit<T>(root: T, edit: JsonEdit): {result: T, description: string} {
  const result = JSON.parse(JSON.stringify(root)) as T;
  const paths = jsonPaths(result);
  if (paths.length === 0) return {result, description: 'no node to edit'};
  const path = paths[edit.target % paths.length];
  const key = path[path.length - 1];
  const parent = path.slice(0, -1).reduce((node: {[k: string]: unknown}, k) => node[k] as {[k: string]: unknown}, result as {[k: string]: unknown});
  const where = path.join('.');
  if (edit.op === 'drop') {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
    return {result, description: `drop ${where}`};
  }
  if (edit.op === 'duplicate' && Array.isArray(parent)) {
    parent.splice(key as number, 0, JSON.parse(JSON.stringify(parent[key as number])));
    return {result, description: `duplicate ${where}`};
  }
  const value = replacement(edit.op, parent[key], edit.pick);
  parent[key] = value;
  return {result, description: `${where} = ${JSON.stringify(value)}`};
}
