/**
 * The lane split of the GPU kernels (src/kernels/gpu_plan.ts), which the GLSL and WGSL programs
 * implement with the same integer arithmetic: every value of every channel belongs to exactly one
 * lane, lane counts add up, and the limits hold.
 */
import {laneCount, lanePlan, valueIndex} from '../src/kernels/gpu_plan';

const LIMITS = {threads: 64, maxLanes: 8, minSteps: 4};

describe('GPU lane plan', () => {
  test.each([
    [[7, 3], [1]], [[2, 5, 3, 3], [1]], [[4, 3, 8], [2]], [[2, 3, 2, 4], [1, 2]], [[1, 5], [1]], [[130, 2], [1]],
  ])('shape %j, channel axes %j: each value in exactly one lane, within the limits', (shape, axes) => {
    const plan = lanePlan(shape, axes, LIMITS);
    const size = shape.reduce((a, b) => a * b, 1);
    expect(plan.channels * plan.count).toBe(size);
    expect(plan.lanes).toBeGreaterThanOrEqual(1);
    expect(plan.lanes).toBeLessThanOrEqual(Math.min(LIMITS.maxLanes, plan.count));
    expect(plan.lanes === 1 || plan.count / plan.lanes >= LIMITS.minSteps).toBe(true);
    expect(plan.steps).toBe(Math.ceil(plan.count / plan.lanes));
    const seen = new Int32Array(size);
    for (let c = 0; c < plan.channels; c++) {
      let total = 0;
      for (let q = 0; q < plan.lanes; q++) {
        let visited = 0;
        for (let j = q; j < plan.count; j += plan.lanes) {
          seen[valueIndex(plan, c, j)]++;
          visited++;
        }
        expect(laneCount(plan, q)).toBe(visited);
        total += visited;
      }
      expect(total).toBe(plan.count);
    }
    expect(Array.from(seen).every(n => n === 1)).toBe(true);
  });

  test('channels-last problems walk neighbouring channels in neighbouring threads; channels-first, neighbouring values', () => {
    expect(lanePlan([32, 32, 32, 64], [3], {threads: 16384, maxLanes: 256, minSteps: 16}).channelFastest).toBe(true);
    expect(lanePlan([32, 64, 32, 32], [1], {threads: 16384, maxLanes: 256, minSteps: 16}).channelFastest).toBe(false);
  });
});
