/** Jest runs the TypeScript tests through ts-jest; `npm test` type-checks the whole tree first, so
 * ts-jest only transpiles (isolatedModules in tsconfig.json), which keeps the suite fast on a 2-core machine. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  setupFiles: ['<rootDir>/__tests__/support/quiet.ts', '<rootDir>/__tests__/support/deterministic.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', {diagnostics: false}],
  },
  testTimeout: 120000,
  maxWorkers: 2,
};
