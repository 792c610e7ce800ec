"""A box-constrained convex QP over per-frame weights chained frame to frame, plus shared unbounded variables,
solved exactly with numpy only (`ShotQP`, `solve_box_qp`; `bounded_lsq` is plain bounded least squares on it).

This is the shape of the shot solve (core/solve.py): per-frame expression weights bounded to 0..1, coupled to
their neighbours by a temporal term and to an identity shared by every frame. The Hessian is block tridiagonal over
frames plus a dense border, so each Newton step is a block Thomas sweep over the frames (one inverse of the frame's
free weights each) and a small Schur complement for the shared variables. The active set (which weights sit on a
bound) is found by primal-dual active-set steps, with projected Newton as the globally convergent safeguard.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

def spd_inverse(S: np.ndarray) -> np.ndarray:
    """Inverse of a small symmetric positive definite matrix using only Cholesky and a matrix product.

    Why not np.linalg.inv: OpenBLAS runs its LU routines multi-threaded even for tiny matrices, which costs
    milliseconds per call on a busy machine (Blender's, or a shared one), while its Cholesky stays fast.
    The Cholesky factor of [[S, I], [I, c I]] is [[L, 0], [L^-T, L22]] with L L' = S, so S^-1 = L^-T L^-1 is read
    off its lower-left block. c only has to keep the whole matrix positive definite (c > |S^-1|); L22 is unused,
    so a huge c costs no accuracy.
    """
    n = len(S)
    big = np.zeros((2 * n, 2 * n))
    big[:n, :n] = S
    i = np.arange(n)
    big[i, n + i] = big[n + i, i] = 1.0
    big[n + i, n + i] = 1e100
    lower_left = np.linalg.cholesky(big)[n:, :n]        # L^-T (raises LinAlgError if S is not positive definite)
    return lower_left @ lower_left.T


@dataclass(frozen=True)
class ShotQP:
    """minimise 0.5 x.H x + g.x over x = (W (F, K), a (G,)), lower <= W <= upper, a unbounded, where

        H[W_t, W_t] = block (or block[t]) + diag(block_diag[t])      H[W_t, W_t+1] = coupling[t] * I
        H[W_t, a]   = cross (K, G) for every frame      H[a, a]       = shared (G, G)
        g           = (linear (F, K), linear_shared (G,))

    The shape of the shot problem: per-frame expressions coupled to their neighbours by the temporal term and to
    the identity (shared by all frames). G = 0 and F = 1 is a plain bounded least-squares problem.
    """

    block: np.ndarray            # (K, K) symmetric, shared by every frame; or (F, K, K), one per frame
    block_diag: np.ndarray       # (F, K)
    coupling: np.ndarray         # (F-1,)
    linear: np.ndarray           # (F, K)
    cross: np.ndarray            # (K, G)
    shared: np.ndarray           # (G, G) symmetric
    linear_shared: np.ndarray    # (G,)

    @staticmethod
    def frames_only(block: np.ndarray, linear: np.ndarray, block_diag: np.ndarray | None = None,
                    coupling: np.ndarray | None = None) -> "ShotQP":
        F, K = linear.shape
        return ShotQP(block=block, linear=linear,
                      block_diag=np.zeros((F, K)) if block_diag is None else block_diag,
                      coupling=np.zeros(max(F - 1, 0)) if coupling is None else coupling,
                      cross=np.zeros((K, 0)), shared=np.zeros((0, 0)), linear_shared=np.zeros(0))

    def hess_mul(self, W: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frames = np.einsum("tk,tkj->tj", W, self.block) if self.block.ndim == 3 else W @ self.block
        hw = frames + self.block_diag * W + (self.cross @ a)[None]
        if len(W) > 1:
            hw[:-1] += self.coupling[:, None] * W[1:]
            hw[1:] += self.coupling[:, None] * W[:-1]
        ha = self.cross.T @ W.sum(0) + self.shared @ a
        return hw, ha

    def objective(self, W: np.ndarray, a: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Objective value and gradient (for W and a)."""
        hw, ha = self.hess_mul(W, a)
        value = 0.5 * (np.sum(W * hw) + a @ ha) + np.sum(self.linear * W) + self.linear_shared @ a
        return float(value), hw + self.linear, ha + self.linear_shared

    def newton_step(self, free: np.ndarray, rhs_w: np.ndarray, rhs_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve H_FF d = rhs over the free weights (mask (F, K); d = 0 on the others) and all of a.

        Block elimination: the frames form a chain (block Thomas algorithm, one small inverse per frame, of its
        free weights only), carried out for the right-hand side and the G columns of `cross` at once; then the
        shared variables' Schur complement (G x G) and back substitution.
        """
        F, K = free.shape
        G = len(rhs_a)
        jitter = 1e-12 * max(float(np.abs(self.block).max(initial=0)), 1e-300)
        position = np.cumsum(free, axis=1) - 1           # index of each free weight within its frame's free list
        common = free[:-1] & free[1:]                    # weights free in frames t and t+1: the coupled ones
        # Right-hand sides of every frame, stacked over its free weights: [rhs_w | cross] (one row per weight).
        rows_t, rows_k = np.nonzero(free)
        starts = np.r_[0, np.cumsum(free.sum(1))]
        z_all = np.empty((len(rows_k), 1 + G))
        z_all[:, 0] = rhs_w[rows_t, rows_k]
        z_all[:, 1:] = self.cross[rows_k]
        inverses, links = [], []
        prev_inv = prev_z = None
        for t in range(F):
            idx = rows_k[starts[t]:starts[t + 1]]
            z = z_all[starts[t]:starts[t + 1]]           # a view: eliminated in place
            S = (self.block[t] if self.block.ndim == 3 else self.block)[idx[:, None], idx]  # a copy
            # (+ a relative jitter, so a merely semidefinite H, e.g. a rank-deficient least squares, still solves)
            S.flat[::len(idx) + 1] += self.block_diag[t, idx] + jitter
            link = None
            if t > 0 and self.coupling[t - 1] != 0 and common[t - 1].any():
                # Eliminate frame t-1: S_t -= C' S_{t-1}^-1 C, z_t -= C' S_{t-1}^-1 z_{t-1}, C = c * selection.
                c = self.coupling[t - 1]
                ip, ic = position[t - 1, common[t - 1]], position[t, common[t - 1]]
                S[ic[:, None], ic] -= c * c * prev_inv[ip[:, None], ip]
                z[ic] -= c * (prev_inv[ip] @ prev_z)
                link = (c, ip, ic)
            prev_inv, prev_z = spd_inverse(S), z
            inverses.append(prev_inv)
            links.append(link)
        # Back substitution: x_t = S_t^-1 (z_t - C_t x_{t+1}), for the right-hand side and the cross columns.
        solved = np.empty_like(z_all)
        for t in range(F - 1, -1, -1):
            z = z_all[starts[t]:starts[t + 1]]
            if t + 1 < F and links[t + 1] is not None:
                c, ip, ic = links[t + 1]
                z = z.copy()
                z[ip] -= c * solved[starts[t + 1]:starts[t + 2]][ic]
            solved[starts[t]:starts[t + 1]] = inverses[t] @ z
        d_a = np.zeros(0)
        if G:
            # a: (shared - cross' T^-1 cross) d_a = rhs_a - cross' T^-1 rhs_w, then d_w = T^-1 rhs_w - T^-1 cross d_a.
            crossed = self.cross[rows_k].T @ solved                       # (G, 1 + G)
            schur = self.shared - crossed[:, 1:]
            d_a = spd_inverse(0.5 * (schur + schur.T)) @ (rhs_a - crossed[:, 0])
        d_w = np.zeros((F, K))
        d_w[rows_t, rows_k] = solved[:, 0] - solved[:, 1:] @ d_a
        return d_w, d_a


@dataclass
class QPInfo:
    iterations: int
    converged: bool
    objective: float


def solve_box_qp(qp: ShotQP, lower: np.ndarray | float, upper: np.ndarray | float,
                 W0: np.ndarray | None = None, tol: float = 1e-10, max_iterations: int = 100,
                 max_active_set_steps: int = 25) -> tuple[np.ndarray, np.ndarray, QPInfo]:
    """Minimise a `ShotQP` (H positive definite) subject to lower <= W <= upper: returns W, a and an info record.

    Two exact-Newton phases, both built on `ShotQP.newton_step` (a solve over the weights not held on a bound):

    1. Primal-dual active set (Hintermueller, Ito & Kunisch 2003, a semismooth Newton method): guess which
       weights sit on which bound from the last iterate and its gradient, hold them there, solve exactly for the
       rest, repeat until the guess no longer changes; then the KKT conditions hold exactly. Usually a handful of
       steps, but it can cycle on a QP whose Hessian is not an M-matrix, so it is only the fast path.
    2. Projected Newton (Bertsekas 1982, "Projected Newton methods for optimization problems with simple
       constraints") from there: weights at (or within eps of) a bound whose gradient pushes outwards are held,
       the others take a Newton step, and an Armijo search along the projection arc makes the decrease monotone:
       globally convergent, and it ends as soon as the active set is right. It returns at once after phase 1
       succeeded. `tol` bounds the projected gradient relative to the problem's scale.
    """
    F, K = qp.linear.shape
    lower = np.broadcast_to(np.asarray(lower, np.float64), (F, K))
    upper = np.broadcast_to(np.asarray(upper, np.float64), (F, K))
    if np.any(lower > upper):
        raise ValueError("solve_box_qp: a lower bound exceeds its upper bound")
    diag = np.diagonal(qp.block, axis1=-2, axis2=-1) + qp.block_diag
    diag = np.maximum(diag, 1e-12 * max(float(diag.max()), 1e-300))
    scale = max(float(np.abs(qp.linear).max(initial=0)), float(np.abs(qp.linear_shared).max(initial=0)),
                float(diag.max()), 1e-300)
    W = np.clip(np.zeros((F, K)) if W0 is None else np.asarray(W0, np.float64), lower, upper)
    a = np.zeros(len(qp.linear_shared))
    steps = 0

    # Phase 1: primal-dual active set. The gradient at a held weight is its bound's multiplier.
    held = None
    for _ in range(max_active_set_steps):
        _, grad_w, _ = qp.objective(W, a)
        at_lower = grad_w + diag * (lower - W) > 0
        at_upper = (grad_w + diag * (upper - W) < 0) & ~at_lower
        if held is not None and np.array_equal(at_lower, held[0]) and np.array_equal(at_upper, held[1]):
            break  # the guess reproduced itself: KKT holds (up to round-off)
        held = (at_lower, at_upper)
        W = np.where(at_lower, lower, np.where(at_upper, upper, W))
        _, grad_w, grad_a = qp.objective(W, a)
        step_w, step_a = qp.newton_step(~(at_lower | at_upper), -grad_w, -grad_a)
        W, a = W + step_w, a + step_a
        steps += 1
    W = np.clip(W, lower, upper)

    # Phase 2: projected Newton (a no-op after a successful phase 1, beyond checking the optimality conditions).
    width = upper - lower
    eps0 = 1e-3 * (float(width[np.isfinite(width)].max()) if np.isfinite(width).any() else 1.0)
    f, grad_w, grad_a = qp.objective(W, a)
    converged = False
    for _ in range(max_iterations):
        projected = W - np.clip(W - grad_w, lower, upper)
        if max(np.abs(projected).max(initial=0), np.abs(grad_a).max(initial=0)) <= tol * scale:
            converged = True
            break
        eps = min(eps0, float(np.sqrt(np.sum(projected ** 2) + np.sum(grad_a ** 2))))
        binding = ((W <= lower + eps) & (grad_w > 0)) | ((W >= upper - eps) & (grad_w < 0))
        free = ~binding
        step_w, step_a = qp.newton_step(free, -grad_w, -grad_a)
        # Held weights move by a diagonally scaled gradient step (the projection then puts them on their bound).
        step_w = np.where(binding, -grad_w / diag, step_w)
        newton_decrease = -float(np.sum((grad_w * step_w)[free]) + grad_a @ step_a)
        steps += 1
        alpha = 1.0
        while True:
            W_new = np.clip(W + alpha * step_w, lower, upper)
            a_new = a + alpha * step_a
            f_new, gw_new, ga_new = qp.objective(W_new, a_new)
            required = 1e-4 * (alpha * newton_decrease + float(np.sum((grad_w * (W - W_new))[binding])))
            if f - f_new >= required:
                break
            alpha *= 0.5
            if alpha < 1e-10:  # no decrease left but round-off: this is the optimum
                converged = True
                break
        if converged:
            break
        W, a, f, grad_w, grad_a = W_new, a_new, f_new, gw_new, ga_new
    return W, a, QPInfo(iterations=steps, converged=converged, objective=f)


def bounded_lsq(A: np.ndarray, b: np.ndarray, lower: np.ndarray | float = 0.0, upper: np.ndarray | float = 1.0,
                ridge: float = 0.0, tol: float = 1e-12) -> np.ndarray:
    """argmin |A x - b|^2 + ridge |x|^2 subject to lower <= x <= upper (numpy twin of scipy's lsq_linear).

    A must have full column rank unless ridge > 0 (the Newton steps need a positive definite normal matrix).
    """
    A = np.asarray(A, np.float64)
    b = np.asarray(b, np.float64)
    n = A.shape[1]
    qp = ShotQP.frames_only(2 * (A.T @ A + ridge * np.eye(n)), (-2 * A.T @ b)[None])
    W, _, _ = solve_box_qp(qp, np.broadcast_to(lower, (n,))[None], np.broadcast_to(upper, (n,))[None], tol=tol)
    return W[0]
