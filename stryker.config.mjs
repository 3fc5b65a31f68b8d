// Mutation testing (`npm run test:mutation`, not part of `npm test`): Stryker mutates the numeric
// core (ops, kernels, gradients; not the generated simd_binary.ts) and runs the focused jest suites
// of jest.stryker.config.js against each mutant. perTest coverage runs only the tests that reach a
// mutant, and the fail-fast environment there stops at its first failing test; concurrency 2
// because the machines have 2 cores. About an hour in all (ops 25 min, kernels 24, gradients 9).
import {resolve} from 'path';

// The golden cases live beside the checkout; Stryker runs jest in a sandbox copy, so tell the
// tests where they are (support/golden.ts reads GOLDEN_CASES).
process.env.GOLDEN_CASES ??= resolve('..', 'shared', 'golden', 'batchnorm_cases.json');
// Fewer random problems per property (op_properties.test.ts), and no 2^20-value case
// (op_precision.test.ts): both cost seconds per mutant, and Stryker's mutants (operators,
// literals, conditions) are caught by the smaller cases too.
process.env.FC_RUNS ??= '25';
process.env.MUTATION_RUN ??= '1';

export default {
  $schema: './node_modules/@stryker-mutator/core/schema/stryker-schema.json',
  testRunner: 'jest',
  jest: {projectType: 'custom', configFile: 'jest.stryker.config.js', enableFindRelatedTests: false},
  coverageAnalysis: 'perTest',
  // The GPU programs (webgl/, webgpu/, gpu_kernels.ts) run only inside Chromium, where jest's
  // browser suites check them against float64; Stryker's Node runs cannot reach them, so they are
  // not mutated here (their lane arithmetic, gpu_plan.ts, is).
  mutate: ['src/ops/**/*.ts', 'src/gradients/**/*.ts', 'src/kernels/**/*.ts', '!src/kernels/simd_binary.ts',
    '!src/kernels/webgl/**', '!src/kernels/webgpu/**', '!src/kernels/gpu_kernels.ts'],
  ignorePatterns: ['dist', 'models', 'bench/results.*', 'examples/browser/dist', 'reports', '__tests__/artifacts', 'scratch'],
  // tfjs's wasm backend times profiled kernels in an async function: a mutant that throws inside a
  // kernel under tf.profile fails its test *and* leaves a rejected promise, which by Node's default
  // kills the worker; every such kill then cost a worker restart (tfjs and wasm loaded again).
  testRunnerNodeArgs: ['--unhandled-rejections=warn'],
  concurrency: 2,
  timeoutMS: 15000,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: {fileName: 'reports/mutation/mutation.json'},
  thresholds: {high: 90, low: 85, break: 85},
  tempDirName: '.stryker-tmp',
};
