/**
 * Jest setup: drops the hint tfjs prints in Node the first time the cpu backend runs ("install our
 * node backend"). Where @tensorflow/tfjs-node cannot install it repeats in every test file and
 * buries real warnings; every other warning still gets through.
 */
const warn = console.warn.bind(console);
console.warn = (...args: unknown[]): void => {
  if (args.some(a => typeof a === 'string' && a.includes('install our node backend'))) return;
  warn(...args);
};
