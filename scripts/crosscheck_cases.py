#!/usr/bin/env python3
"""Recomputes every case of a batch-norm cases file with NumPy (float64) and compares.

    python3 scripts/crosscheck_cases.py [CASES.json ...]   # default: __tests__/fixtures/batchnorm_cases.json

Independent of the TypeScript reference that wrote the file: vectorized NumPy, channel axes moved
last, and the textbook closed-form gradient
    dx = gamma * r / N * (N * dy - sum(dy) - xhat * sum(dy * xhat)),  r = 1 / sqrt(var + eps)
instead of the reference's term-by-term chain rule. Prints the worst |ours - numpy| / (1 + |numpy|)
per field and exits 1 when any exceeds 1e-10 (the file stores 12 significant digits: 5e-13).
Not needed by CI; __tests__/reference_cases.test.ts runs it where python3 and NumPy exist.
"""
import json
import sys
from pathlib import Path

import numpy as np

TOLERANCE = 1e-10
FIELDS = ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta', 'moving_mean_keras', 'moving_variance_keras',
          'running_var_torch', 'inference_y']


def channels_last(a, axes):
    """a with the channel axes moved to the end and flattened: [N, C] (C row-major over the axes)."""
    rest = [d for d in range(a.ndim) if d not in axes]
    moved = np.transpose(a, rest + axes)
    return moved.reshape(-1, int(np.prod([a.shape[d] for d in axes])))


def back(flat, shape, axes):
    """Inverse of channels_last, flattened row-major in the original layout."""
    rest = [d for d in range(len(shape)) if d not in axes]
    order = rest + axes
    moved = flat.reshape([shape[d] for d in order])
    return np.transpose(moved, np.argsort(order)).reshape(-1)


def expected(case):
    shape = case['shape']
    axis = case['axis'] if isinstance(case['axis'], list) else [case['axis']]
    axes = sorted(a % len(shape) for a in axis)
    eps, m = case['epsilon'], case['momentum']
    x = channels_last(np.array(case['x'], dtype=np.float64).reshape(shape), axes)
    dy = channels_last(np.array(case['dy'], dtype=np.float64).reshape(shape), axes)
    gamma, beta = np.array(case['gamma'], dtype=np.float64), np.array(case['beta'], dtype=np.float64)
    mm0, mv0 = np.array(case['moving_mean0'], dtype=np.float64), np.array(case['moving_variance0'], dtype=np.float64)
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    r = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * r
    y = xhat * gamma + beta
    dx = gamma * r / n * (n * dy - dy.sum(axis=0) - xhat * (dy * xhat).sum(axis=0))
    return {
        'y': back(y, shape, axes), 'mean': mean, 'variance': var, 'dx': back(dx, shape, axes),
        'dgamma': (dy * xhat).sum(axis=0), 'dbeta': dy.sum(axis=0),
        'moving_mean_keras': mm0 * m + mean * (1 - m), 'moving_variance_keras': mv0 * m + var * (1 - m),
        'running_var_torch': (1 - (1 - m)) * mv0 + (1 - m) * var * n / (n - 1),
        'inference_y': back((x - mm0) / np.sqrt(mv0 + eps) * gamma + beta, shape, axes),
    }


def main(paths):
    worst_overall = 0.0
    for path in paths:
        cases = json.loads(Path(path).read_text())['cases']
        print(f'{path}: {len(cases)} cases, NumPy {np.__version__}')
        for case in cases:
            want = expected(case)
            errors = {}
            for field in FIELDS:
                got = np.array(case[field], dtype=np.float64)
                errors[field] = float(np.max(np.abs(got - want[field]) / (1 + np.abs(want[field]))))
            worst = max(errors.values())
            worst_overall = max(worst_overall, worst)
            field = max(errors, key=errors.get)
            print(f'  {case["name"]:<14} worst {worst:.1e} ({field})')
    print(f'worst over all cases and fields: {worst_overall:.1e} (tolerance {TOLERANCE:.0e})')
    return 0 if worst_overall <= TOLERANCE else 1


if __name__ == '__main__':
    default = Path(__file__).resolve().parent.parent / '__tests__' / 'fixtures' / 'batchnorm_cases.json'
    sys.exit(main(sys.argv[1:] or [str(default)]))
