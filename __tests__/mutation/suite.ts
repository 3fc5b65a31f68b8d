/**
 * The suites Stryker runs against each mutant (npm run test:mutation), imported into one file so
 * that jest loads tfjs and the wasm backend once per mutant instead of once per suite: that load,
 * not the tests, dominated the time per mutant. The normal `jest` run does not match this file.
 */
import '../op_dispatch.test';
import '../op_errors.test';
import '../op_golden.test';
import '../op_gradients.test';
import '../op_properties.test';
import '../op_precision.test';
import '../op_second_order.test';
import '../op_special_values.test';
import '../kernels_simd.test';
import '../gpu_plan.test';
import '../simd_shared.test';
import '../train_step.test';
import '../variants.test';
