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


def test_a_block_per_frame():
    """Per-frame blocks (F, K, K): equal ones give the shared block's solution; uncoupled ones, each frame's own
    bounded least squares."""
    rng = np.random.default_rng(5)
    F, K = 6, 7
    B = rng.normal(size=(K, 20))
    block = B @ B.T / 20 + 1e-3 * np.eye(K)
    linear = rng.normal(size=(F, K))
    chain = dict(block_diag=np.full((F, K), 0.2), coupling=np.full(F - 1, -0.1), linear=linear,
                 cross=np.zeros((K, 0)), shared=np.zeros((0, 0)), linear_shared=np.zeros(0))
    W_shared, _, _ = solve_box_qp(ShotQP(block=block, **chain), 0.0, 1.0)
    W_per_frame, _, info = solve_box_qp(ShotQP(block=np.repeat(block[None], F, axis=0), **chain), 0.0, 1.0)
    assert info.converged
    np.testing.assert_allclose(W_per_frame, W_shared, atol=1e-8)

    A = rng.normal(size=(F, 15, K))
    b = rng.normal(size=(F, 15))
    qp = ShotQP.frames_only(2 * np.einsum("tmi,tmj->tij", A, A), -2 * np.einsum("tmi,tm->ti", A, b))
    W, _, _ = solve_box_qp(qp, 0.0, 1.0)
    for f in range(F):
        np.testing.assert_allclose(W[f], bounded_lsq(A[f], b[f]), atol=1e-6)
