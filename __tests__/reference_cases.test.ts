/**
 * The float64 reference cases themselves (__tests__/fixtures/batchnorm_cases.json): reproducible from
 * their generator, and agreeing with independent computations — NumPy (where python3 and NumPy exist;
 * skipped, saying so, elsewhere) and, where ../shared/golden is present, the PyTorch-checked cases.
 */
import {execFileSync, spawnSync} from 'child_process';
import {readFileSync} from 'fs';
import {join} from 'path';
import {CASES_PATH, makeReferenceCasesText} from '../scripts/make_reference_cases';
import {GoldenCase, loadSharedGoldenCases, maxRelativeError, SHARED_GOLDEN_PATH} from './support/golden';
import {refInfer, refMovingUpdate, refTrain, refTrainGrad} from './support/reference';

/** Float64 vs float64 on values stored with 17 digits: measured ≤ 1.6e-15; 1e-12 still fails on any formula error. */
const SHARED_TOLERANCE = 1e-12;

test('the committed cases are exactly what scripts/make_reference_cases.ts makes', () => {
  expect(readFileSync(CASES_PATH, 'utf8') === makeReferenceCasesText()).toBe(true);
});

const numpy = spawnSync('python3', ['-c', 'import numpy'], {encoding: 'utf8'});
const numpyMissing = numpy.error != null || numpy.status !== 0;
(numpyMissing ? describe.skip : describe)(
    `NumPy cross-check${numpyMissing ? ' [skipped: python3 with NumPy is not available here]' : ''}`, () => {
      test('scripts/crosscheck_cases.py recomputes every field within 1e-10 (12 stored digits)', () => {
        const out = execFileSync('python3', [join(__dirname, '..', 'scripts', 'crosscheck_cases.py'), CASES_PATH], {encoding: 'utf8'});
        const worst = Number(/worst over all cases and fields: (\S+)/.exec(out)?.[1]);
        expect(worst).toBeLessThanOrEqual(1e-10);
      });
    });

const shared = loadSharedGoldenCases();
(shared.length === 0 ? describe.skip : describe)(
    `the reference against the shared golden cases${shared.length === 0 ? ` [skipped: ${SHARED_GOLDEN_PATH} is absent]` : ''}`, () => {
      test.each(shared.map(c => [c.name, c] as [string, GoldenCase]))('%s: every field', (_, c) => {
        const axes = (Array.isArray(c.axis) ? c.axis : [c.axis]).map(a => (a < 0 ? a + c.shape.length : a)).sort((a, b) => a - b);
        const problem = {shape: c.shape, axes, x: c.x, gamma: c.gamma, beta: c.beta, epsilon: c.epsilon};
        const train = refTrain(problem);
        const grads = refTrainGrad(problem, c.dy);
        const perChannel = c.x.length / c.mean.length;
        const got: Record<string, ArrayLike<number>> = {...train, ...grads,
          moving_mean_keras: refMovingUpdate(c.moving_mean0, train.mean, c.momentum),
          moving_variance_keras: refMovingUpdate(c.moving_variance0, train.variance, c.momentum),
          running_var_torch: refMovingUpdate(c.moving_variance0, train.variance.map(v => v * perChannel / (perChannel - 1)), c.momentum),
          inference_y: refInfer(problem, c.moving_mean0, c.moving_variance0)};
        for (const [field, values] of Object.entries(got)) {
          expect({field, error: maxRelativeError(values, c[field as keyof GoldenCase] as number[]) <= SHARED_TOLERANCE})
              .toEqual({field, error: true});
        }
      });
    });
