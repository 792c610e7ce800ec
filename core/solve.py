"""Identity and ARKit expression weights from predicted canonical 3D landmarks (numpy only: runs inside Blender).

The detector predicts, per frame, the canonical 3D positions (ICT face space, cm) of a layout's query points.
A layout point is a fixed barycentric combination of mesh vertices, so its position is linear in the ICT
identity weights a (~N(0, 1)) and expression weights w (0..1):

    x_t = mu + A a + E w_t            mu (3N,), A (3N, K) identity modes, E (3N, 57) expression shapes

`LayoutBasis` holds mu, A, E for one layout. A shot is solved by minimising one convex objective

    J(a, W) = sum_t [ |x_t - mu - A a - E w_t|^2 / N  +  ridge |w_t|^2  +  sparsity sum(w_t) ]
              + smoothing sum_t |w_t - w_{t-1}|^2  +  regularisation |a|^2,        lower <= w_t <= upper

summed over the valid frames. The data term is the mean squared point error (cm^2), so the prior weights mean
the same for 68 or 3000 points; `sparsity` is an L1 prior (= sum(w) as w >= 0); `regularisation` is the
identity's N(0, 1) prior (for i.i.d. Gaussian point noise of s cm per coordinate, the MAP value is s^2 / N).

J is one box-constrained QP over the identity (shared, unbounded) and all frames' expressions at once, solved
exactly by `core.qp.solve_box_qp`: its Hessian is block tridiagonal over frames (the temporal term) plus a dense
border (the identity), the shape that solver is built for. Solving the identity and the expressions jointly,
rather than alternating between them, matters: the two are correlated (an identity can mimic a constant
expression), and alternation needed far more than 20 rounds to settle.
`solve_identity` with known expressions and `solve_expressions` with a known identity are the two half-steps.

Expression shapes that a layout cannot observe (their points do not move, e.g. PupilDilate_L/R for every
built-in layout) are pinned to 0 instead of left to wander; `ShotSolve.pinned` says which. Shapes that move the
points but almost exactly like a combination of other shapes (for ibug68, eyeWide/eyeLook*/eyeSquint: see
`LayoutBasis.expression_distinct_cm`) are observable only through the priors: expect the priors to decide them.

The detector's canonical points drift rigidly from frame to frame: learned mostly from 2D, a shift or turn of the
points trades against the head pose. `solve_shot` therefore first moves each frame rigidly onto the model, fitted
on the points that expressions barely move (`LayoutBasis.stable_points`): onto the mean shape, then ALIGN_ROUNDS
times onto the last solve's fitted shape. Otherwise the identity absorbs the drift and the rig is distorted
(docs/measurements.md).
The aligned solve is kept only when it fits the points better than the plain one (so exact model points are
solved exactly); `ShotSolve.model_pose` then moves the head pose by the same per-frame motion, so the rig still
lands on the landmarks. `align=False` solves the points as they are.

Given the tracked 2D points too (`solve_tracked`, as the rig does), the shot is solved again on them, with the
head pose fitted per frame (section "The expressions again, on the image points"): they are the more precise.

Invalid frames (flagged in `valid`, or containing any non-finite coordinate) are skipped; their rows of the
expression output and of the residual are NaN (never 0, which would read as a neutral face), and the temporal
term does not couple across them.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import geometry
from .arkit import ARKIT52_NAMES, to_arkit52
from .facemodel import FaceModel, load_facemodel
from .layouts import Layout, load_layout
from .qp import QPInfo, ShotQP, solve_box_qp, spd_inverse

# A shape whose layout points move less than this (RMS over the points, cm, at weight 1) cannot be observed:
# 0.005 cm is far below any detector's accuracy and above the float16 rounding of the packed bases (0.001 cm).
PIN_THRESHOLD_CM = 0.005

# Defaults of the objective J (module docstring). Data term: mean squared point error, cm^2 per frame.
DEFAULT_IDENTITY_MODES = 40
# Tuned on synthetic shots (ibug68 and dense, 0.05 cm noise; tests/test_solve.py): stronger sparsity or
# smoothing flattens short expressions, weaker lets noise through into the weakly observed shapes.
DEFAULT_REGULARISATION = 1e-4   # identity prior: weight of |a|^2 (about s^2 / N for s = 0.08 cm, N = 68)
DEFAULT_RIDGE = 1e-5            # expression L2 prior: weight of |w_t|^2 (keeps the QP strictly convex)
DEFAULT_SPARSITY = 2e-4         # expression L1 prior: weight of sum(w_t)
DEFAULT_SMOOTHING = 5e-3        # temporal prior: weight of |w_t - w_{t-1}|^2
ALIGN_ROUNDS = 3                # re-alignments onto the fitted shape (module docstring)


# --------------------------------------------------------------------------------------------------------------
# The linear model of a layout's points


@dataclass(frozen=True)
class LayoutBasis:
    """The linear model of a layout's points: points = neutral + identity . a + expression . w (cm)."""

    name: str
    neutral: np.ndarray             # (N, 3) float64
    identity: np.ndarray            # (100, N, 3) float64, +1 sigma modes
    expression: np.ndarray          # (57, N, 3) float64, weight 0..1
    expression_names: tuple[str, ...]

    @classmethod
    def from_layout(cls, layout: Layout, model: FaceModel | None = None) -> "LayoutBasis":
        """Apply the layout's barycentric weights to the model's bases (only the 3N corner vertices are read)."""
        model = model or load_facemodel()
        corners = model.triangles[layout.triangles]                  # (N, 3) vertex ids
        bary = layout.barycentric.astype(np.float64)

        def interpolate(vertex_data: np.ndarray) -> np.ndarray:     # (..., V, 3) -> (..., N, 3)
            return np.einsum("nk,...nkd->...nd", bary, vertex_data[..., corners, :].astype(np.float64))

        return cls(name=layout.name, neutral=interpolate(model.neutral), identity=interpolate(model.identity_basis),
                   expression=interpolate(model.expression_basis), expression_names=model.expression_names)

    @property
    def num_points(self) -> int:
        return int(self.neutral.shape[0])

    @functools.cached_property
    def identity_matrix(self) -> np.ndarray:
        """(3N, 100): column k is identity mode k, flattened like `points.reshape(-1)`."""
        return self.identity.reshape(len(self.identity), -1).T

    @functools.cached_property
    def expression_matrix(self) -> np.ndarray:
        """(3N, 57): column j is expression shape j, flattened like `points.reshape(-1)`."""
        return self.expression.reshape(len(self.expression), -1).T

    def points(self, identity: np.ndarray | None = None, expression: np.ndarray | None = None) -> np.ndarray:
        """Layout points (N, 3) for one expression (57,), or (F, N, 3) for a sequence of expressions (F, 57)."""
        out = self.neutral.copy()
        if identity is not None:
            identity = np.asarray(identity, np.float64)
            out = out + np.tensordot(identity, self.identity[: len(identity)], axes=1)
        if expression is not None:
            expression = np.asarray(expression, np.float64)
            out = out + np.tensordot(expression, self.expression[: expression.shape[-1]], axes=1)
        return out

    def stable_points(self) -> np.ndarray:
        """(N,) mask of the half of the points that the expression shapes move least (largest displacement)."""
        motion = np.linalg.norm(self.expression, axis=-1).max(0)
        return motion <= np.median(motion)

    def expression_rms_cm(self) -> np.ndarray:
        """(57,) RMS displacement of the layout's points at weight 1 of each shape: how observable it is."""
        return np.sqrt((self.expression ** 2).sum(2).mean(1))

    def expression_distinct_cm(self, pin_threshold_cm: float = PIN_THRESHOLD_CM) -> np.ndarray:
        """(57,) RMS (cm) of the part of each shape's point motion that no mix of the other shapes reproduces.

        1 / sqrt(diag((E'E / N)^-1)) over the observable shapes (pinned ones: 0). Below ~ the detector's noise
        divided by sqrt(N x frames averaged), a shape's weight is decided by the priors rather than the data.
        """
        observable = ~self.unobservable(pin_threshold_cm)
        E = self.expression_matrix[:, observable]
        out = np.zeros(len(observable))
        out[observable] = 1.0 / np.sqrt(np.diag(np.linalg.inv(E.T @ E / self.num_points)))
        return out

    def unobservable(self, threshold_cm: float = PIN_THRESHOLD_CM) -> np.ndarray:
        """(57,) bool: shapes that barely move this layout's points (they get pinned to 0)."""
        return self.expression_rms_cm() < threshold_cm


@functools.lru_cache(maxsize=8)
def _cached_basis(name: str) -> LayoutBasis:
    return LayoutBasis.from_layout(load_layout(name))


def layout_basis(layout: str | Path | Layout | LayoutBasis, model: FaceModel | None = None) -> LayoutBasis:
    """A `LayoutBasis` for a layout name, layout file, `Layout`, or an existing basis (returned as is)."""
    if isinstance(layout, LayoutBasis):
        return layout
    if isinstance(layout, Layout):
        return LayoutBasis.from_layout(layout, model)
    if model is not None:
        return LayoutBasis.from_layout(load_layout(layout), model)
    return _cached_basis(str(layout))  # built-ins are cached: building the dense basis reads 3000 x 157 shapes


# --------------------------------------------------------------------------------------------------------------
# The shot solve


def _frame_validity(points: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    ok = np.isfinite(points).reshape(len(points), -1).all(1)
    if valid is not None:
        valid = np.asarray(valid, bool).reshape(-1)
        if valid.shape != ok.shape:
            raise ValueError(f"valid has {valid.size} entries for {len(points)} frames")
        ok &= valid
    return ok


def _check_points(points: np.ndarray, basis: LayoutBasis) -> np.ndarray:
    points = np.asarray(points, np.float64)
    if points.ndim == 2:
        points = points[None]
    if points.ndim != 3 or points.shape[1:] != (basis.num_points, 3):
        raise ValueError(f"points must be (F, {basis.num_points}, 3) for layout '{basis.name}', got {points.shape}")
    return points


def _bounds(bounds: tuple, num_shapes: int) -> tuple[np.ndarray, np.ndarray]:
    lower, upper = (np.broadcast_to(np.asarray(b, np.float64), (num_shapes,)) for b in bounds)
    if np.any(lower > upper):
        raise ValueError("bounds: a lower bound exceeds its upper bound")
    return lower, upper


@dataclass(frozen=True)
class Priors:
    """Weights of the priors in J (module docstring); the data term is the mean squared point error (cm^2)."""

    regularisation: float = DEFAULT_REGULARISATION   # identity: |a|^2
    ridge: float = DEFAULT_RIDGE                     # expressions: |w_t|^2
    sparsity: float = DEFAULT_SPARSITY               # expressions: sum(w_t) (L1, as w >= 0)
    smoothing: float = DEFAULT_SMOOTHING             # expressions: |w_t - w_{t-1}|^2 for consecutive valid frames


class _ShotProblem:
    """J(a, W) of the module docstring on the valid frames, with the data reduced to small matrices once."""

    def __init__(self, points: np.ndarray, basis: LayoutBasis, valid: np.ndarray, num_modes: int,
                 bounds: tuple, pin_threshold_cm: float):
        if not 0 <= num_modes <= len(basis.identity):
            raise ValueError(f"num_modes must be in 0..{len(basis.identity)}, got {num_modes}")
        self.basis, self.valid, self.num_frames = basis, valid, len(points)
        self.pinned = basis.unobservable(pin_threshold_cm)
        self.active = ~self.pinned
        lower, upper = _bounds(bounds, len(self.pinned))
        self.lower_all, self.upper_all = lower, upper
        self.lower, self.upper = lower[self.active], upper[self.active]
        N = basis.num_points
        A = basis.identity_matrix[:, :num_modes]
        E = basis.expression_matrix[:, self.active]
        Y = (points[valid] - basis.neutral).reshape(int(valid.sum()), -1)
        # Everything J needs, divided by N so that the data term is the mean squared point error (cm^2).
        self.AtA, self.EtE, self.AtE = A.T @ A / N, E.T @ E / N, A.T @ E / N
        self.YA, self.YE = Y @ A / N, Y @ E / N
        self.YY = np.einsum("ti,ti->t", Y, Y) / N
        # Consecutive valid frames are coupled by the smoothing term; a gap (invalid frames) cuts the chain.
        self.linked = (np.diff(np.flatnonzero(valid)) == 1).astype(np.float64)

    def data_error(self, identity: np.ndarray, W: np.ndarray) -> np.ndarray:
        """Mean squared point error per valid frame (cm^2), from the reduced matrices."""
        a = identity
        return (self.YY - 2 * self.YA @ a - 2 * np.einsum("tj,tj->t", self.YE, W) + a @ self.AtA @ a
                + 2 * W @ (self.AtE.T @ a) + np.einsum("ti,ij,tj->t", W, self.EtE, W))

    def objective(self, identity: np.ndarray, W: np.ndarray, priors: Priors) -> float:
        diffs = np.diff(W, axis=0) * self.linked[:, None]
        return float(self.data_error(identity, W).sum() + priors.ridge * np.sum(W ** 2)
                     + priors.sparsity * np.sum(W) + priors.smoothing * np.sum(diffs ** 2)
                     + priors.regularisation * identity @ identity)

    def qp(self, priors: Priors, identity: np.ndarray | None) -> ShotQP:
        """J as 0.5 x.H x + g.x: over (W, a) if `identity` is None, else over W with a = identity fixed."""
        F, K = self.YE.shape
        links = np.zeros(F)
        links[:-1] += self.linked
        links[1:] += self.linked
        block = 2 * (self.EtE + priors.ridge * np.eye(K))
        block_diag = 2 * priors.smoothing * links[:, None] * np.ones(K)
        coupling = -2 * priors.smoothing * self.linked
        if identity is not None:
            linear = -2 * (self.YE - (self.AtE.T @ identity)[None]) + priors.sparsity
            return ShotQP.frames_only(block, linear, block_diag, coupling)
        G = len(self.AtA)
        return ShotQP(block=block, block_diag=block_diag, coupling=coupling,
                      linear=-2 * self.YE + priors.sparsity, cross=2 * self.AtE.T,
                      shared=2 * (F * self.AtA + priors.regularisation * np.eye(G)),
                      linear_shared=-2 * self.YA.sum(0))

    def identity_given(self, W: np.ndarray, regularisation: float) -> np.ndarray:
        # dJ/da = 0: (F AtA + regularisation I) a = sum_t (YA_t - AtE w_t).
        lhs = len(W) * self.AtA + regularisation * np.eye(len(self.AtA))
        return spd_inverse(lhs) @ (self.YA.sum(0) - self.AtE @ W.sum(0))

    def full_weights(self, W: np.ndarray) -> np.ndarray:
        """(F, 57) from the solved (valid frames, active shapes): pinned shapes 0 (clipped into the bounds),
        invalid frames NaN."""
        out = np.full((self.num_frames, len(self.active)), np.nan)
        rows = np.broadcast_to(np.clip(0.0, self.lower_all, self.upper_all), (int(self.valid.sum()), len(out[0])))
        rows = rows.copy()
        rows[:, self.active] = W
        out[self.valid] = rows
        return out


@dataclass
class _Joint:
    identity: np.ndarray
    expressions: np.ndarray
    info: QPInfo
    objective: float
    problem: _ShotProblem


def _solve_joint(points: np.ndarray, basis: LayoutBasis, valid: np.ndarray, num_modes: int, bounds: tuple,
                 priors: Priors, pin_threshold_cm: float) -> _Joint:
    if not valid.any():
        raise ValueError("no valid frame to solve from (all flagged invalid or non-finite)")
    problem = _ShotProblem(points, basis, valid, num_modes, bounds, pin_threshold_cm)
    W, identity, info = solve_box_qp(problem.qp(priors, None), problem.lower, problem.upper)
    return _Joint(identity=identity, expressions=problem.full_weights(W), info=info,
                  objective=problem.objective(identity, W, priors), problem=problem)


def solve_identity(points_per_frame: np.ndarray, basis: LayoutBasis | str | Layout,
                   expression_per_frame: np.ndarray | None = None, num_modes: int = DEFAULT_IDENTITY_MODES,
                   regularisation: float = DEFAULT_REGULARISATION, valid: np.ndarray | None = None,
                   bounds: tuple = (0.0, 1.0), smoothing: float = DEFAULT_SMOOTHING,
                   sparsity: float = DEFAULT_SPARSITY, ridge: float = DEFAULT_RIDGE,
                   pin_threshold_cm: float = PIN_THRESHOLD_CM) -> np.ndarray:
    """The subject's identity weights (num_modes,) from a shot's canonical 3D points (F, N, 3), cm.

    Ridge-regularised least squares with the prior a ~ N(0, I): `regularisation` weighs |a|^2 against the
    per-frame mean squared point error (cm^2) summed over the valid frames. With `expression_per_frame` (F, 57)
    known, it is one linear solve. Otherwise the expressions are solved too (bounded, with the given priors),
    jointly with the identity: the exact minimum of J over both, which alternating identity and expression
    solves would only approach. Frames flagged False in `valid` or containing NaN are skipped.
    """
    basis = layout_basis(basis)
    points = _check_points(points_per_frame, basis)
    ok = _frame_validity(points, valid)
    priors = Priors(regularisation, ridge, sparsity, smoothing)
    if expression_per_frame is None:
        return _solve_joint(points, basis, ok, num_modes, bounds, priors, pin_threshold_cm).identity
    expressions = np.asarray(expression_per_frame, np.float64).reshape(len(points), -1)
    ok &= np.isfinite(expressions).all(1)
    if not ok.any():
        raise ValueError("no valid frame to solve from (all flagged invalid or non-finite)")
    problem = _ShotProblem(points, basis, ok, num_modes, bounds, pin_threshold_cm)
    return problem.identity_given(expressions[ok][:, problem.active], regularisation)


def solve_expressions(points_per_frame: np.ndarray, basis: LayoutBasis | str | Layout,
                      identity: np.ndarray | None = None, bounds: tuple = (0.0, 1.0),
                      smoothing: float = DEFAULT_SMOOTHING, sparsity: float = DEFAULT_SPARSITY,
                      ridge: float = DEFAULT_RIDGE, valid: np.ndarray | None = None,
                      pin_threshold_cm: float = PIN_THRESHOLD_CM) -> np.ndarray:
    """Per-frame expression weights (F, 57), ICT order, for a known identity (None: the mean face).

    One bounded QP over the whole shot (module docstring): the bounds (scalars or (57,) arrays) always hold,
    `smoothing` couples consecutive valid frames, `sparsity` (L1) and `ridge` (L2) pull towards neutral.
    Unobservable (pinned) shapes are 0; invalid frames (flag or NaN) are NaN rows.
    """
    basis = layout_basis(basis)
    points = _check_points(points_per_frame, basis)
    ok = _frame_validity(points, valid)
    if not ok.any():
        return np.full((len(points), len(basis.expression)), np.nan)
    identity = np.zeros(0) if identity is None else np.asarray(identity, np.float64)
    problem = _ShotProblem(points, basis, ok, len(identity), bounds, pin_threshold_cm)
    qp = problem.qp(Priors(0.0, ridge, sparsity, smoothing), identity)
    W, _, _ = solve_box_qp(qp, problem.lower, problem.upper)
    return problem.full_weights(W)


# --------------------------------------------------------------------------------------------------------------
# Convenience


@dataclass
class ShotSolve:
    """Identity and expressions of one shot. Invalid frames have NaN rows in `expressions` and `residual_cm`."""

    layout: str
    identity: np.ndarray                 # (num_modes,), ~N(0, 1)
    expressions: np.ndarray              # (F, 57) ICT order (`expression_names`), 0..1
    expression_names: tuple[str, ...]    # ICT names
    valid: np.ndarray                    # (F,) bool: frames that were solved
    residual_cm: np.ndarray              # (F,) RMS 3D distance between the points and the fitted model, cm
    pinned: np.ndarray                   # (57,) bool: shapes the layout cannot observe, held at 0
    iterations: int                      # exact Newton steps of the QP solve (active-set and projected)
    converged: bool                      # the QP solve met its optimality test (always, in practice)
    objective: float                     # J at the solution
    seconds: float
    # Per frame, the rigid motion that moved the points onto the model (module docstring): model ~ R p + t.
    alignment_R: np.ndarray | None = None  # (F, 3, 3); None: not aligned
    alignment_t: np.ndarray | None = None  # (F, 3) cm
    # Solved on the image points too (`solve_shot`'s image_points): the pose of the solved model per frame that
    # projects it onto them (camera = R x + t for its points x; NaN on frames not solved), and that RMS error.
    pose_R: np.ndarray | None = None       # (F, 3, 3)
    pose_t: np.ndarray | None = None       # (F, 3) cm
    image_residual_px: np.ndarray | None = None  # (F,)

    arkit_names: tuple[str, ...] = ARKIT52_NAMES

    @property
    def pinned_names(self) -> tuple[str, ...]:
        return tuple(n for n, p in zip(self.expression_names, self.pinned) if p)

    @property
    def arkit52(self) -> np.ndarray:
        """(F, 52) ARKit weights in `arkit_names` order (split shapes by their mean; see `to_arkit52`)."""
        return to_arkit52(self.expressions, "mean", self.expression_names)

    def model_pose(self, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The detector's per-frame head pose (R (F, 3, 3), t (F, 3): camera = R p + t for its points p) turned
        into the pose of the solved model, which sits where the alignment moved the points: R A^T, t - R A^T b.
        Solved on the image points, the model's own fitted pose (`pose_R`, `pose_t`) instead. Frames the solve
        skipped keep the detector's pose."""
        R, t = np.asarray(R, np.float64), np.asarray(t, np.float64)
        if self.pose_R is not None:
            fitted = np.isfinite(self.pose_R).all((1, 2))
            R_model, t_model = R.copy(), t.copy()
            R_model[fitted], t_model[fitted] = self.pose_R[fitted], self.pose_t[fitted]
            return R_model, t_model
        if self.alignment_R is None:
            return R, t
        aligned = np.isfinite(self.alignment_R).all((1, 2))
        R_model, t_model = R.copy(), t.copy()
        R_model[aligned] = R[aligned] @ self.alignment_R[aligned].transpose(0, 2, 1)
        t_model[aligned] = t[aligned] - np.einsum("fij,fj->fi", R_model[aligned], self.alignment_t[aligned])
        return R_model, t_model


def _rms(differences: np.ndarray) -> float:
    return float(np.sqrt((differences ** 2).sum(-1).mean()))


def solve_shot(points: np.ndarray, layout: str | Path | Layout | LayoutBasis, valid: np.ndarray | None = None,
               num_modes: int = DEFAULT_IDENTITY_MODES, regularisation: float = DEFAULT_REGULARISATION,
               bounds: tuple = (0.0, 1.0), smoothing: float = DEFAULT_SMOOTHING,
               sparsity: float = DEFAULT_SPARSITY, ridge: float = DEFAULT_RIDGE,
               pin_threshold_cm: float = PIN_THRESHOLD_CM, model: FaceModel | None = None,
               align: bool = True, image_points: np.ndarray | None = None, K: np.ndarray | None = None,
               R: np.ndarray | None = None, t: np.ndarray | None = None) -> ShotSolve:
    """Solve a shot: identity (shared) and expressions (per frame) from canonical 3D points (F, N, 3), cm.

    `layout` names the points' layout (a built-in name, a layout file, a `Layout` or a `LayoutBasis`); `valid`
    (F,) flags frames with a face. The identity and all expressions are one joint bounded QP (module docstring).
    `align`: also solve with each frame moved rigidly onto the model (module docstring), and keep that solve if it
    fits better; the residual is then measured after that alignment (`alignment_R`/`_t` say it was kept).
    `image_points` (F, N, 2) pixels with the camera K (F, 3, 3) and the head pose R (F, 3, 3), t (F, 3) per frame:
    the identity, expressions and pose are then solved again on the image points (`_solve_on_image`); only for
    points in canonical semantics, which are the projections of the 3D points (`solve_tracked` decides).
    """
    start = time.perf_counter()
    basis = layout_basis(layout, model)
    points = _check_points(points, basis)
    ok = _frame_validity(points, valid)
    priors = Priors(regularisation, ridge, sparsity, smoothing)

    def solved(frames: np.ndarray) -> tuple[_Joint, np.ndarray]:
        """The joint solve of (F, N, 3) points, and its fitted points (zero on invalid frames)."""
        joint = _solve_joint(frames, basis, ok, num_modes, bounds, priors, pin_threshold_cm)
        fitted = np.zeros_like(frames)
        fitted[ok] = basis.points(joint.identity, joint.expressions[ok])
        return joint, fitted

    joint, fitted = solved(points)
    rotations = translations = None
    if align:
        measured, stable, targets = points, basis.stable_points(), np.broadcast_to(basis.neutral, points.shape)
        R_all, t_all = np.full((len(points), 3, 3), np.nan), np.full((len(points), 3), np.nan)
        for _ in range(ALIGN_ROUNDS + 1):
            moved = measured.copy()
            for k in np.flatnonzero(ok):
                _, R_all[k], t_all[k] = geometry.similarity_transform(measured[k], targets[k], False, stable)
                moved[k] = measured[k] @ R_all[k].T + t_all[k]
            aligned_joint, targets = solved(moved)
        # Kept only if it explains the points better: exact model points stay exactly as they are.
        if _rms(moved[ok] - targets[ok]) < _rms(measured[ok] - fitted[ok]):
            joint, fitted, points, rotations, translations = aligned_joint, targets, moved, R_all, t_all
    residual = np.full(len(points), np.nan)
    residual[ok] = np.sqrt(((points[ok] - fitted[ok]) ** 2).sum(2).mean(1))
    shot = ShotSolve(layout=basis.name, identity=joint.identity, expressions=joint.expressions,
                     expression_names=basis.expression_names, valid=ok, residual_cm=residual,
                     pinned=joint.problem.pinned, iterations=joint.info.iterations,
                     converged=joint.info.converged, objective=joint.objective,
                     seconds=time.perf_counter() - start, alignment_R=rotations, alignment_t=translations)
    if image_points is None:
        return shot
    if K is None or R is None or t is None:
        raise ValueError("image_points need the camera K and the head pose R, t of every frame")
    return _solve_on_image(shot, joint.problem, basis, image_points, K, R, t, smoothing, regularisation, start)



def solve_tracked(landmarks_3d: np.ndarray, layout: str | Path | Layout | LayoutBasis, valid: np.ndarray,
                  landmarks_2d: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray,
                  semantics: str = "canonical", **options: float) -> ShotSolve:
    """A tracked shot's identity and expressions (what the rig keys): `solve_shot` on its canonical 3D points and,
    in canonical semantics, on its 2D points too (another style's 2D points, e.g. 300-W's silhouette jaw, are not
    the projections of the canonical points). `options`: solve_shot's keyword arguments (num_modes, smoothing...)."""
    if semantics != "canonical":
        return solve_shot(landmarks_3d, layout, valid=valid, **options)
    return solve_shot(landmarks_3d, layout, valid=valid, image_points=landmarks_2d, K=K, R=R, t=t, **options)

# --------------------------------------------------------------------------------------------------------------
# The expressions again, on the image points
#
# The detector's 2D points are read from a fine feature map, its canonical 3D points regressed from pooled features:
# on held-out synthetic clips the 2D points carry more of the expression (docs/measurements.md). From the 3D solve,
# each frame's model points x = neutral + A a + E w project through K and the pose (R, t). A round fits each
# frame's pose to the image points (geometry.fit_pose), linearises the projection there, solves all frames' w as
# one bounded QP with the temporal term (like the 3D solve), then the identity a for those w. The data term is the
# mean squared 2D point error in cm at the face (pixels times depth / focal). The first rounds are nearly free fits
# that measure the points' noise; the expression prior of the later rounds is proportional to it, so precise
# points are trusted and a noisy detector's are not (IMAGE_RIDGE_PER_NOISE, tuned on held-out clips).

IMAGE_ROUNDS = 3
IMAGE_NOISE_ROUNDS = 3       # nearly free fits (the identity settles) that measure the points' noise
IMAGE_NOISE_RIDGE = 1e-4
IMAGE_RIDGE_PER_NOISE = 10.0  # then the ridge is this times that noise (cm^2 per coordinate)
IMAGE_SPARSITY_PER_NOISE = 0.05  # and the L1 prior this times it
# The 3D points' term weighs this times the ratio of the noises: their solve's residual understates their error
# (the model absorbs much of it), so they are trusted far less than that ratio says; tuned on held-out clips.
IMAGE_WEIGHT_3D = 0.01
NOISE_FLOOR_CM2 = 1e-6       # noise variances are at least this (exact points)


def _projection_jacobian(cam: np.ndarray, K: np.ndarray, R: np.ndarray) -> np.ndarray:
    """(N, 2, 3): d pixel / d canonical point at camera-space points `cam` (N, 3), camera = R x + t."""
    fx, fy = K[0, 0], K[1, 1]
    x, y, z = cam.T
    J = np.zeros((len(cam), 2, 3))
    J[:, 0, 0], J[:, 0, 2] = fx / z, -fx * x / z ** 2
    J[:, 1, 1], J[:, 1, 2] = fy / z, -fy * y / z ** 2
    return J @ R


def _solve_on_image(shot: ShotSolve, problem: _ShotProblem, basis: LayoutBasis, image_points: np.ndarray,
                    K: np.ndarray, R: np.ndarray, t: np.ndarray, smoothing: float, regularisation: float,
                    start: float) -> ShotSolve:
    """The 3D solve `shot` (its QP `problem`): identity and expressions solved again on the image points
    (section comment)."""
    valid, residual_cm = shot.valid, shot.residual_cm
    F, N = len(valid), basis.num_points
    pixels = np.asarray(image_points, np.float64)
    K, R, t = (np.asarray(v, np.float64) for v in (K, R, t))
    if pixels.shape != (F, N, 2) or K.shape != (F, 3, 3) or R.shape != (F, 3, 3) or t.shape != (F, 3):
        raise ValueError(f"image_points (F, {N}, 2), K and R (F, 3, 3), t (F, 3) for F = {F} frames; got "
                         f"{pixels.shape}, {K.shape}, {R.shape}, {t.shape}")
    ok = valid & np.isfinite(pixels).all((1, 2)) & np.isfinite(K).all((1, 2)) & np.isfinite(R).all((1, 2)) \
        & np.isfinite(t).all(1)
    active = problem.active
    E = basis.expression[active]                                   # (Ka, N, 3)
    # The pose of the 3D solve's model (the aligned points' pose) is where the fit starts.
    R_fit, t_fit = shot.model_pose(R, t)
    W = np.nan_to_num(shot.expressions[:, active])
    frames = np.flatnonzero(ok)
    linked = (np.diff(frames) == 1).astype(np.float64)
    links = np.zeros(len(frames))
    links[:-1] += linked
    links[1:] += linked

    identity = shot.identity.copy()
    A = basis.identity[: len(identity)]                            # (G, N, 3)
    # The 3D solve's data, reduced (its rows are the frames it solved, a superset of these frames).
    in_3d = np.cumsum(problem.valid) - 1
    YE, YA = problem.YE[in_3d[frames]], problem.YA[in_3d[frames]]
    noise_3d = max(float(np.nanmean(residual_cm[frames] ** 2)) / 3, NOISE_FLOOR_CM2)

    def solve_round(ridge: float, sparsity: float, weight_3d: float) -> tuple[QPInfo, float]:
        """Fit each frame's pose, linearise the projection there, solve all frames' W (one QP), then the identity
        for those W; the 3D points' data term weighs `weight_3d` against the image points'. The QP's info and the
        mean squared residual per image coordinate after it (cm^2)."""
        nonlocal identity
        shape = basis.points(identity)
        systems, blocks, linear = [], np.empty((len(frames), len(E), len(E))), np.empty((len(frames), len(E)))
        for row, f in enumerate(frames):
            points = shape + np.tensordot(W[f], E, axes=1)
            R_fit[f], t_fit[f], _, _ = geometry.fit_pose(points, pixels[f], K[f], R_fit[f], t_fit[f])
            cam = points @ R_fit[f].T + t_fit[f]
            cm_per_px = float(cam[:, 2].mean()) / float(np.sqrt(K[f, 0, 0] * K[f, 1, 1]))
            J = _projection_jacobian(cam, K[f], R_fit[f]) * cm_per_px
            M = np.einsum("nij,knj->nik", J, E).reshape(2 * N, -1)
            r = (pixels[f] - geometry.project(cam, K[f])).reshape(-1) * cm_per_px + M @ W[f]
            systems.append((M, np.einsum("nij,gnj->nig", J, A).reshape(2 * N, -1), r))
            blocks[row] = 2 * (M.T @ M / N + weight_3d * problem.EtE + ridge * np.eye(len(E)))
            linear[row] = -2 * (M.T @ r / N + weight_3d * (YE[row] - problem.AtE.T @ identity)) + sparsity
        qp = ShotQP.frames_only(blocks, linear, 2 * smoothing * links[:, None] * np.ones(len(E)),
                                -2 * smoothing * linked)
        W[frames], _, info = solve_box_qp(qp, problem.lower, problem.upper, W0=W[frames])
        # The identity for these W: linearised least squares on both data terms with its N(0, 1) prior.
        residuals = [r - M @ W[f] for (M, _, r), f in zip(systems, frames)]
        lhs = (sum(Ma.T @ Ma for _, Ma, _ in systems) / N + weight_3d * len(frames) * problem.AtA
               + regularisation * np.eye(len(identity)))
        rhs = (sum(Ma.T @ (res + Ma @ identity) for (_, Ma, _), res in zip(systems, residuals)) / N
               + weight_3d * (YA.sum(0) - problem.AtE @ W[frames].sum(0)))
        new_identity = spd_inverse(0.5 * (lhs + lhs.T)) @ rhs
        step, identity = new_identity - identity, new_identity
        squared = np.mean([np.mean((res - Ma @ step) ** 2) for (_, Ma, _), res in zip(systems, residuals)])
        return info, float(squared)

    # The noise of the image points decides how far to trust them: nearly free fits on them alone measure it (the
    # residual, scaled up for the weights fitted per point). Then both data terms weigh by their noise (the 3D
    # one's from the 3D solve's residual), and the ridge is proportional to the image points' noise.
    for _ in range(IMAGE_NOISE_ROUNDS):
        info, squared = solve_round(IMAGE_NOISE_RIDGE, 0.0, 0.0)
    noise = max(squared * 2 * N / max(2 * N - len(E) - len(identity) / len(frames), 1), NOISE_FLOOR_CM2)
    for _ in range(IMAGE_ROUNDS):
        info, _ = solve_round(IMAGE_RIDGE_PER_NOISE * noise, IMAGE_SPARSITY_PER_NOISE * noise,
                              IMAGE_WEIGHT_3D * noise / noise_3d)
    shape = basis.points(identity)
    pose_R, pose_t = np.full((F, 3, 3), np.nan), np.full((F, 3), np.nan)
    image_residual = np.full(F, np.nan)
    for f in frames:
        points = shape + np.tensordot(W[f], E, axes=1)
        pose_R[f], pose_t[f], _, image_residual[f] = geometry.fit_pose(points, pixels[f], K[f], R_fit[f], t_fit[f])
    expressions = np.full_like(shot.expressions, np.nan)
    expressions[frames] = np.clip(0.0, problem.lower_all, problem.upper_all)
    expressions[np.ix_(frames, np.flatnonzero(active))] = W[frames]
    return dataclasses.replace(shot, identity=identity, expressions=expressions, valid=ok, iterations=shot.iterations
                               + info.iterations, converged=shot.converged and info.converged,
                               objective=info.objective, seconds=time.perf_counter() - start, pose_R=pose_R,
                               pose_t=pose_t, image_residual_px=image_residual)
