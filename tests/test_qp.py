"""The bounded QP solver (core/qp.py) against scipy, and its globally convergent fallback against its fast path.

scipy is used here only to cross-check the numpy solver; core/qp.py itself must stay numpy-only.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import lsq_linear

from core.qp import ShotQP, bounded_lsq, solve_box_qp


def test_bounded_lsq_matches_scipy():
    rng = np.random.default_rng(2)
    for trial in range(40):
        m, n = int(rng.integers(5, 80)), int(rng.integers(2, 40))
        A = rng.normal(size=(m, n)) * rng.uniform(0.01, 3, n)   # badly scaled columns
        if trial % 4 == 0:
            A[:, 0] = A[:, 1] * 1.0001                           # nearly collinear
        b = rng.normal(size=m) * 3
        lower = np.where(rng.random(n) < 0.2, -np.inf, -rng.random(n))
        upper = np.where(rng.random(n) < 0.2, np.inf, rng.random(n))
        x = bounded_lsq(A, b, lower, upper)
        reference = lsq_linear(A, b, bounds=(lower, upper), method="bvls", tol=1e-14).x
        cost = lambda v: float(np.sum((A @ v - b) ** 2))
        assert np.all(x >= lower) and np.all(x <= upper)
        assert cost(x) <= cost(reference) + 1e-4 * max(1.0, cost(reference)), (trial, m, n)


def test_projected_newton_alone_matches_active_set_path():
    """The globally convergent fallback (projected Newton) reaches the same optimum without the fast path."""
    rng = np.random.default_rng(4)
    F, K, G = 12, 9, 3
    B = rng.normal(size=(K, 20))
    block = B @ B.T / 20 + 1e-3 * np.eye(K)
    qp = ShotQP(block=block, block_diag=np.full((F, K), 0.2), coupling=np.full(F - 1, -0.1),
                linear=rng.normal(size=(F, K)), cross=0.1 * rng.normal(size=(K, G)),
                shared=np.eye(G) * F, linear_shared=rng.normal(size=G))
    W1, a1, info1 = solve_box_qp(qp, 0.0, 1.0)
    W2, a2, info2 = solve_box_qp(qp, 0.0, 1.0, max_active_set_steps=0)
    assert info1.converged and info2.converged
    assert abs(info1.objective - info2.objective) < 1e-9 * max(1.0, abs(info1.objective))
    np.testing.assert_allclose(W1, W2, atol=1e-6)
    np.testing.assert_allclose(a1, a2, atol=1e-6)
