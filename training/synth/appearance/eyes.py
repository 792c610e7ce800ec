"""Iris and sclera albedo (`make_eye_textures`): radial maps of the eye textures measured from the mesh, and a
per-person iris pattern (pupil, collarette, streaks, limbal ring) with faint vessels on the sclera."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.facemodel import load_facemodel
from training.synth.appearance.skin import SkinParams
from training.synth.appearance.uv import smoothstep, to_uint8


@dataclass
class _EyeGeometry:
    rho_sclera: np.ndarray   # texel distance from the eye axis / iris radius
    rho_iris: np.ndarray
    iris_inside: np.ndarray  # texels of the iris disc proper (the rest is the inside of the eye)
    theta_bin: np.ndarray    # angular bin 0..ANGLE_BINS-1 (same for both textures)


_ANGLE_BINS = 256


@functools.lru_cache(maxsize=4)
def _eye_geometry(size: int) -> _EyeGeometry:
    """Radial maps of the eye textures: how far from the eye's axis, relative to the iris radius, each texel is."""
    model = load_facemodel()

    def radial(material: str, front_only: bool) -> tuple[np.ndarray, np.ndarray, float]:
        sel = model.material_mask(material)
        xyz = model.neutral[model.triangles[sel]].reshape(-1, 3)
        uv = model.uv[model.triangle_uv[sel]].reshape(-1, 2)
        r_uv = np.linalg.norm(uv - 0.5, axis=1)
        keep = r_uv < 0.5
        if front_only:
            keep &= xyz[:, 2] > xyz[:, 2].max() - 0.5
        return r_uv[keep], xyz[keep], float(r_uv[keep].max())

    r_iris, xyz_iris, _ = radial("M_IrisLeft", True)
    center = xyz_iris.mean(0)
    _, _, vt = np.linalg.svd(xyz_iris - center)
    axis = vt[2] * np.sign(vt[2][2])

    def off_axis(xyz: np.ndarray) -> np.ndarray:
        d = xyz - center
        return np.linalg.norm(d - np.outer(d @ axis, axis), axis=1)

    iris_radius = off_axis(xyz_iris).max()
    r_scl, xyz_scl, _ = radial("M_ScleraLeft", False)
    front = (xyz_scl - center) @ axis > -0.6  # the front hemisphere, where r_uv grows with the off-axis radius
    grid = (np.arange(size) + 0.5) / size
    uu, vv = np.meshgrid(grid, 1 - grid)
    r_tex = np.hypot(uu - 0.5, vv - 0.5)

    def mapping(r: np.ndarray, rho: np.ndarray) -> np.ndarray:
        order = np.argsort(r)
        r, rho = r[order], np.maximum.accumulate(rho[order])
        # Beyond the measured front part the texel is far round the back of the eye: clearly not iris.
        return np.where(r_tex > r[-1], rho[-1] + (r_tex - r[-1]) * 10, np.interp(r_tex, r, rho)).astype(np.float32)

    rho_sclera = mapping(r_scl[front], off_axis(xyz_scl[front]) / iris_radius)
    rho_iris = mapping(r_iris, off_axis(xyz_iris) / iris_radius)
    theta = np.arctan2(vv - 0.5, uu - 0.5)
    theta_bin = ((theta / (2 * np.pi) + 0.5) * _ANGLE_BINS).astype(np.int32) % _ANGLE_BINS
    return _EyeGeometry(rho_sclera=rho_sclera, rho_iris=rho_iris, iris_inside=r_tex < 0.5, theta_bin=theta_bin)


def _eye_color(params: SkinParams, rho: np.ndarray, theta_bin: np.ndarray, angular: np.ndarray,
               radial: np.ndarray) -> np.ndarray:
    outer = np.asarray(params.iris_rgb, np.float32)
    inner = np.asarray(params.iris_inner_rgb, np.float32)
    p = params.pupil
    streak = angular[theta_bin]
    ring = np.interp(rho, np.linspace(0, 1.2, len(radial)), radial)
    mix = smoothstep(p + 0.12, p + 0.4, rho + 0.08 * streak)
    iris = inner + mix[..., None] * (outer - inner)
    iris *= (1 + 0.28 * streak + 0.12 * ring)[..., None]
    iris *= (1 - params.limbal_ring * smoothstep(0.72, 1.0, rho))[..., None]
    iris += smoothstep(p + 0.04, p - 0.01, rho)[..., None] * (0.015 - iris)          # pupil
    sclera = np.asarray(params.sclera_rgb, np.float32) * (1 - 0.06 * smoothstep(1.6, 3.0, rho))[..., None]
    sclera += (0.08 * smoothstep(1.4, 2.5, rho) * np.clip(0.5 + 0.5 * streak, 0, 1))[..., None] * (
        np.array([0.8, 0.45, 0.45], np.float32) - sclera)                                # faint vessels
    edge = smoothstep(1.03, 0.97, rho)[..., None]
    return sclera + edge * (iris - sclera)


def make_eye_textures(params: SkinParams, size: int = 128) -> dict[str, np.ndarray]:
    """Iris and sclera albedo, {"iris": ..., "sclera": ...}, (size, size, 3) uint8, row 0 is v = 1.

    Both share one pattern drawn from `params.iris_seed`. The sclera texture carries the iris under its cornea
    bulge too (for renderers that draw the sclera opaque); the iris texture is black outside its disc (the pupil
    tube and the back of the iris).
    """
    return eye_textures(params, size, with_sclera=True)


def eye_textures(params: SkinParams, size: int, with_sclera: bool) -> dict[str, np.ndarray]:
    g = _eye_geometry(size)
    rng = np.random.default_rng(params.iris_seed)
    angular = ndimage.gaussian_filter1d(rng.standard_normal(_ANGLE_BINS).astype(np.float32), 1.0, mode="wrap") * 0.7
    angular += ndimage.gaussian_filter1d(rng.standard_normal(_ANGLE_BINS).astype(np.float32), 6.0, mode="wrap") * 2
    angular /= angular.std()
    radial = ndimage.gaussian_filter1d(rng.standard_normal(64).astype(np.float32), 2.0)
    radial /= radial.std() + 1e-6
    iris = _eye_color(params, g.rho_iris, g.theta_bin, angular, radial)
    out = {"iris": to_uint8(np.where(g.iris_inside[..., None], iris, np.float32(0.015)))}
    if with_sclera:
        out["sclera"] = to_uint8(_eye_color(params, g.rho_sclera, g.theta_bin, angular, radial))
    return out
