/**
 * Jest for Stryker (stryker.config.mjs): the single entry __tests__/mutation/suite.ts, which imports
 * the op, kernel and gradient suites.
 */
const base = require('./jest.config.js');

module.exports = {...base, testMatch: ['**/__tests__/mutation/suite.ts']};
