/**
 * Jest for Stryker (stryker.config.mjs): the single entry __tests__/mutation/suite.ts, which imports
 * the op, kernel and gradient suites, in an environment that stops at the first failing test.
 */
const base = require('./jest.config.js');

module.exports = {...base, testMatch: ['**/__tests__/mutation/suite.ts'],
  testEnvironment: '<rootDir>/__tests__/mutation/fail_fast_environment.js'};
