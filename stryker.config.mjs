// Mutation testing (`npm run test:mutation`, not part of `npm test`): Stryker mutates the numeric
// core (ops, kernels, gradients; not the generated simd_binary.ts) and runs the focused jest suites
// of jest.stryker.config.js against each mutant. perTest coverage runs only the tests that reach a
// mutant, and jest bails at the first failure; concurrency 2 because the machines are shared.
import {resolve} from 'path';

// The golden cases live beside the checkout; Stryker runs jest in a sandbox copy, so tell the
// tests where they are (support/golden.ts reads GOLDEN_CASES).
process.env.GOLDEN_CASES ??= resolve('..', 'shared', 'golden', 'batchnorm_cases.json');

export default {
  $schema: './node_modules/@stryker-mutator/core/schema/stryker-schema.json',
  testRunner: 'jest',
  jest: {projectType: 'custom', configFile: 'jest.stryker.config.js', enableFindRelatedTests: false},
  coverageAnalysis: 'perTest',
  mutate: ['src/ops/**/*.ts', 'src/gradients/**/*.ts', 'src/kernels/**/*.ts', '!src/kernels/simd_binary.ts'],
  ignorePatterns: ['dist', 'models', 'bench/results.*', 'examples/browser/dist', 'reports', '__tests__/artifacts', 'scratch'],
  concurrency: 2,
  timeoutMS: 60000,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: {fileName: 'reports/mutation/mutation.json'},
  thresholds: {high: 90, low: 85, break: 85},
  tempDirName: '.stryker-tmp',
};
