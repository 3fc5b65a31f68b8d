/**
 * Jest for Stryker (stryker.config.mjs): the single entry __tests__/mutation/suite.ts, which imports
 * the op, kernel and gradient suites, in an environment that stops at the first failing test.
 */
const path = require('path');
const base = require('./jest.config.js');

module.exports = {...base, testMatch: ['**/__tests__/mutation/suite.ts'],
  // An absolute path: Stryker resolves the environment itself, without jest's <rootDir>.
  testEnvironment: path.join(__dirname, '__tests__', 'mutation', 'fail_fast_environment.js')};
