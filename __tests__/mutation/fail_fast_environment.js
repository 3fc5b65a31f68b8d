/**
 * Jest's node environment, stopping at the first failure of the file: the tests after it are
 * skipped. Stryker (stryker.config.mjs) runs all covering tests of a mutant in one file
 * (mutation/suite.ts), and jest's own `bail` counts failed files, not tests, so without this a
 * killed mutant still ran every test that covers it; one failure is all a kill needs.
 */
const {TestEnvironment} = require('jest-environment-node');

class FailFastEnvironment extends TestEnvironment {
  failed = false;

  async handleTestEvent(event, state) {
    if (event.name === 'test_fn_failure' || event.name === 'hook_failure') this.failed = true;
    // jest-circus reads the modes right after these events: a block started after the failure is
    // skipped with its beforeAll/afterAll hooks (which may undo what its skipped tests never did).
    else if (event.name === 'run_describe_start' && this.failed) event.describeBlock.mode = 'skip';
    else if (event.name === 'test_start' && this.failed) event.test.mode = 'skip';
    if (super.handleTestEvent) await super.handleTestEvent(event, state);
  }
}

module.exports = FailFastEnvironment;
