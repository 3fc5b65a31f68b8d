/** The suites Stryker runs against each mutant (stryker.config.mjs): the op, kernel and gradient suites. */
const base = require('./jest.config.js');

module.exports = {
  ...base,
  testMatch: [
    '**/op_golden.test.ts', '**/op_properties.test.ts', '**/op_gradients.test.ts', '**/op_errors.test.ts',
    '**/op_special_values.test.ts', '**/op_second_order.test.ts', '**/op_dispatch.test.ts', '**/op_precision.test.ts',
    '**/kernels_simd.test.ts',
  ],
};
