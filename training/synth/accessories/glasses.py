"""Glasses (`sample_glasses`): swept rims, bridge and temple arms placed from the eye and nose-bridge landmarks,
clearing the face, with optional clear, tinted or sunglass lenses."""
from __future__ import annotations

import numpy as np
import scipy.ndimage

from training.synth.accessories.head import Topology
from training.synth.accessories.mesh import merge, normalize, part, sweep
from training.synth.parts import MeshPart

GLASSES_SHAPES = ("rect", "round", "cateye", "aviator")


def _lens_outline(shape: str, rng: np.random.Generator, n: int = 40) -> np.ndarray:
    """(n, 2) lens outline around its centre, cm: x towards the temple, y up."""
    u = rng.uniform
    phi = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(phi), np.sin(phi)
    if shape == "round":
        w = u(1.8, 2.4)
        h, e = w * u(0.88, 1.0), 2.0
    elif shape == "cateye":
        w, h, e = u(2.3, 2.8), u(1.6, 2.0), u(2.6, 3.5)
    elif shape == "aviator":
        w, h, e = u(2.5, 3.0), u(2.1, 2.5), 2.4
    else:  # rect
        w, h, e = u(2.2, 2.8), u(1.4, 2.0), u(3.5, 6.0)
    x = w * np.sign(c) * np.abs(c) ** (2 / e)
    y = h * np.sign(s) * np.abs(s) ** (2 / e)
    if shape == "cateye":  # upper outer corner swept up
        y = y + u(0.3, 0.6) * np.clip(x / w, 0, 1) ** 2 * (y > -0.3 * h)
    elif shape == "aviator":  # teardrop: the lower half bulges towards the nose
        y = np.where(y < 0, y * 1.1, y * 0.85)
        x = x - 0.35 * np.clip(-y / h, 0, 1) * w * 0.4
    return np.stack([x, y], 1)


def _outline_normals(outline: np.ndarray) -> np.ndarray:
    t = np.roll(outline, -1, axis=0) - np.roll(outline, 1, axis=0)
    n = normalize(np.stack([t[:, 1], -t[:, 0]], 1))
    return np.where(np.sum(n * (outline - outline.mean(0)), 1, keepdims=True) < 0, -n, n)


def _depth_field(points: np.ndarray, cell: float = 0.5) -> tuple[np.ndarray, float, float]:
    """Max z per (x, y) cell of the face front: (grid, x0, y0). Lets glasses clear brows, lashes, nose, cheeks."""
    x0, y0 = -11.0, -5.0
    ix = np.clip(((points[:, 0] - x0) / cell).astype(int), 0, 43)
    iy = np.clip(((points[:, 1] - y0) / cell).astype(int), 0, 35)
    grid = np.full(44 * 36, -np.inf)
    np.maximum.at(grid, ix * 36 + iy, points[:, 2])
    grid = scipy.ndimage.maximum_filter(grid.reshape(44, 36), size=3, mode="nearest")
    return grid, x0, y0


def _depth_lookup(field: tuple[np.ndarray, float, float], points: np.ndarray, cell: float = 0.5) -> np.ndarray:
    grid, x0, y0 = field
    ix = np.clip(((points[:, 0] - x0) / cell).astype(int), 0, grid.shape[0] - 1)
    iy = np.clip(((points[:, 1] - y0) / cell).astype(int), 0, grid.shape[1] - 1)
    return grid[ix, iy]


def sample_glasses(rng: np.random.Generator, shape: str, sunglasses: bool, head_vertices: np.ndarray,
                   landmarks: np.ndarray, topo: Topology, p_lens: float) -> list[MeshPart]:
    u = rng.uniform
    lm = landmarks
    eye_r, eye_l = lm[36:42].mean(0), lm[42:48].mean(0)
    x_axis = normalize(eye_l - eye_r)
    up = normalize(np.array([0.0, 1.0, 0.0]) - x_axis[1] * x_axis)
    fwd = np.cross(x_axis, up)
    mid = 0.5 * (eye_l + eye_r)
    half_pd = 0.5 * np.linalg.norm(eye_l - eye_r) * u(1.0, 1.08)
    outline = _lens_outline(shape, rng)
    normals2d = _outline_normals(outline)
    wrap, tilt = np.radians(u(3, 10)), np.radians(u(4, 12))
    metal = (not sunglasses and rng.random() < 0.45) or (sunglasses and shape == "aviator")
    dy = u(-0.3, 0.25)

    def place(points2d: np.ndarray, side: float, forward: np.ndarray | float = 0.0) -> np.ndarray:
        """Lens-local (x to the temple, y up) -> head frame, before the frame's depth is chosen."""
        a, b = points2d[:, 0:1], points2d[:, 1:2]
        centre = mid + side * half_pd * x_axis + dy * up
        return (centre + side * a * np.cos(wrap) * x_axis - a * np.sin(wrap) * fwd + b * up
                + (b * np.sin(tilt) + forward) * fwd)

    # Depth: the frame's back clears the face (lashes, brows, nose bridge, cheeks) by a few millimetres.
    field = _depth_field(head_vertices[topo.front_ids])
    probe = np.concatenate([place(outline * s, side) for side in (-1, 1) for s in (1.0, 0.6, 0.2)])
    depth = np.max(_depth_lookup(field, probe) - probe[:, 2]) + u(0.35, 0.7)

    def to_frame(points: np.ndarray) -> np.ndarray:
        return points + depth * fwd

    rim_r = u(0.05, 0.09)
    if metal:
        a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        rim_profile = np.stack([rim_r * np.cos(a), rim_r * np.sin(a)], 1)
        arm_profile = rim_profile
        bridge_profile = rim_profile
    else:
        width, thick = u(0.3, 0.7), u(0.3, 0.55)
        rim_profile = np.array([[-0.05, -thick / 2], [width, -thick / 2], [width + 0.05, 0], [width, thick / 2],
                                [-0.05, thick / 2], [-0.1, 0]])
        arm_h, arm_t = u(0.25, 0.5), u(0.12, 0.2)
        arm_profile = np.array([[-arm_h / 2, -arm_t / 2], [arm_h / 2, -arm_t / 2], [arm_h / 2, arm_t / 2],
                                [-arm_h / 2, arm_t / 2]])
        bridge_profile = np.array([[-0.25, -thick / 2], [0.25, -thick / 2], [0.25, thick / 2], [-0.25, thick / 2]])
    meshes, lenses = [], []
    for side in (-1.0, 1.0):
        rim = to_frame(place(outline, side))
        n3 = place(normals2d, side) - place(np.zeros_like(normals2d), side)
        plane_n = np.cross(n3[0], n3[len(n3) // 4])
        plane_n = normalize(plane_n * np.sign(plane_n @ fwd))
        binormal = np.broadcast_to(plane_n, rim.shape)
        meshes.append(sweep(rim, normalize(n3), binormal, rim_profile, closed=True))
        centre = to_frame(place(np.zeros((1, 2)), side))[0]
        lens = np.concatenate([centre[None] + plane_n * 0.12, rim - (rim - centre) * 0.03])
        fan = np.stack([np.zeros(len(rim), int), 1 + np.arange(len(rim)), 1 + (np.arange(len(rim)) + 1) % len(rim)],
                       1)
        lens_uv = np.concatenate([[[0.5, 0.5]], 0.5 + 0.5 * outline / np.abs(outline).max(0)])
        lenses.append((lens, fan, lens_uv))
        # Temple arm: from the hinge back along the side of the head to the ear, bending down behind it.
        hinge_i = int(np.argmax(outline[:, 0] + 0.3 * outline[:, 1]))
        hinge = rim[hinge_i] - fwd * 0.2
        arm = _temple_path(hinge, side, head_vertices, topo, u(1.5, 3.0))
        tangent = normalize(np.gradient(arm, axis=0))
        normal = normalize(np.array([0.0, 1.0, 0.0]) - tangent[:, 1:2] * tangent)
        meshes.append(sweep(arm, normal, np.cross(tangent, normal), arm_profile, closed=False))
    # Bridge over the nose between the inner upper rims.
    inner_r = to_frame(place(outline[np.argmin(outline[:, 0] - 0.4 * outline[:, 1])][None], -1.0))[0]
    inner_l = to_frame(place(outline[np.argmin(outline[:, 0] - 0.4 * outline[:, 1])][None], 1.0))[0]
    t = np.linspace(0, 1, 9)[:, None]
    apex = 0.5 * (inner_r + inner_l) + up * u(0.0, 0.35) + fwd * 0.1
    bridge = (1 - t) ** 2 * inner_r + 2 * t * (1 - t) * apex + t ** 2 * inner_l
    tangent = normalize(np.gradient(bridge, axis=0))
    meshes.append(sweep(bridge, np.broadcast_to(up, bridge.shape), np.cross(tangent, up), bridge_profile,
                        closed=False))

    if metal:
        color = [(0.6, 0.6, 0.62), (0.55, 0.42, 0.2), (0.04, 0.04, 0.04), (0.2, 0.2, 0.22)][rng.integers(4)]
        specular, shininess = 0.7, 60.0
    else:
        color = [(0.03, 0.03, 0.03), (0.18, 0.09, 0.04), (0.35, 0.05, 0.05), (0.08, 0.12, 0.3),
                 (0.5, 0.45, 0.4)][rng.integers(5)]
        specular, shininess = 0.35, 40.0
    verts, tris = merge(meshes)
    parts = [part("glasses_frame", verts, tris, color=tuple(color), specular=specular, shininess=shininess)]
    if sunglasses or rng.random() < p_lens:
        if sunglasses:
            tint, alpha = np.array([0.03, 0.03, 0.035]) + rng.uniform(0, 0.06, 3), 245
        elif rng.random() < 0.25:
            tint, alpha = np.array([0.45, 0.35, 0.25]) * u(0.5, 1.0), 110
        else:
            tint, alpha = np.array([0.85, 0.9, 0.92]), 70
        texture = np.empty((4, 4, 4), np.uint8)
        texture[..., :3] = np.clip(tint * 255, 0, 255).astype(np.uint8)
        texture[..., 3] = alpha
        verts, tris = merge([(v, t) for v, t, _ in lenses])
        # Clear and tinted lenses (alpha < 0.5) are for a renderer that blends them; the cut-out renderer drops
        # them, which is right for landmark visibility. Sunglasses are opaque and hide the eyes.
        parts.append(part("glasses_lens", verts, tris, uv=np.concatenate([uv for _, _, uv in lenses]),
                          color=tuple(float(c) for c in tint), texture=texture, specular=0.8, shininess=120.0,
                          occludes_landmarks=bool(sunglasses), double_sided=True))
    return parts


def _temple_path(hinge: np.ndarray, side: float, head_vertices: np.ndarray, topo: Topology,
                 drop: float) -> np.ndarray:
    """Arm from the hinge back over the ear's root, bending down behind the ear, just outside the head."""
    k = 0 if side < 0 else 1
    ear_z = head_vertices[topo.ear_ids[k], 2].mean()
    zs = np.linspace(hinge[2], ear_z - 1.5, 10)
    ys = np.interp(zs, [ear_z - 1.5, ear_z, hinge[2]], [hinge[1] - drop, hinge[1] - 0.3, hinge[1]])
    cand = head_vertices[topo.temple_ids[k]]
    near = (np.abs(cand[None, :, 1] - ys[:, None]) < 0.8) & (np.abs(cand[None, :, 2] - zs[:, None]) < 0.7)
    width = np.where(near, np.abs(cand[None, :, 0]), 0.0).max(axis=1)
    # Arms spread towards the back (never pinch inwards) until their tip tucks in behind the ear.
    x = np.maximum.accumulate(np.maximum(abs(hinge[0]), width + 0.25))
    x[-1] -= 0.3
    return np.stack([side * x, ys, zs], 1)
