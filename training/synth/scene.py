"""Turn scene parameters into a rendered sample: pose the head and its parts, light, render, composite.

`SyntheticEngine.sample(index)` is the entry point: the sample depends only on (seed, index), so shards of one
dataset can be rendered on different machines and any sample can be re-rendered later.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from core import geometry
from core.facemodel import FaceModel, load_facemodel
from core.layouts import load_layout
from training.synth import accessories, appearance, effects
from training.synth.backgrounds import BackgroundBank
from training.synth.parts import MeshPart
from training.synth.renderer import DrawItem, Renderer
from training.synth.sample import Sample
from training.synth.sampling import SceneParams, sample_lighting, sample_scene

log = logging.getLogger(__name__)

# Part ids in the id buffer. Head parts first; accessories get ids from FIRST_ACCESSORY_ID on.
SKIN, EYES, MOUTH, LASHES = 0, 1, 2, 3
FIRST_ACCESSORY_ID = 10
# Skin textures cost ~20 ms each, more than the rest of a sample: each engine draws skins from a bank of this many,
# made lazily and deterministically from (seed, slot), and varies them per sample with a tint.
SKIN_BANK_SIZE = 256
SKIN_BANK_STREAM = 7919  # keeps the bank's random stream apart from the samples' (seed, index) streams
HEAD_MATERIALS: dict[str, int] = {
    "M_Face": SKIN, "M_BackHead": SKIN, "M_ScleraLeft": EYES, "M_ScleraRight": EYES, "M_Teeth": MOUTH,
    "M_GumsTongue": MOUTH,
}  # Not drawn: ICT's lacrimal fluid, eye blend and eye occlusion layers are transparent helpers; its eyelash cards
#    need alpha we don't have (opaque, they look like thick black rings; the face texture paints lash lines); and
#    the iris sits behind the sclera's cornea bulge, which the sclera texture paints as a clear cornea over an iris.


@dataclass(frozen=True)
class EngineConfig:
    width: int = 256
    height: int = 256
    supersample: int = 2
    accessories: bool = True
    effects_strength: float = 1.0
    background: bool = True


@dataclass(frozen=True)
class _MaterialMesh:
    """One material's triangles as indexed geometry over (vertex, uv) pairs: UV seams split vertices."""

    vertex_ids: np.ndarray   # (n,) into the model's vertices
    uv: np.ndarray           # (n, 2)
    indices: np.ndarray      # (T, 3) into the n rows


@functools.lru_cache(maxsize=1)
def _material_meshes(model_path: str) -> dict[str, _MaterialMesh]:
    model = load_facemodel(model_path)
    out = {}
    for name in HEAD_MATERIALS:
        tris = np.flatnonzero(model.triangle_material == model.material_names.index(name))
        pairs = np.stack([model.triangles[tris].reshape(-1), model.triangle_uv[tris].reshape(-1)], 1)
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
        uv = model.uv[unique[:, 1]] - np.array([appearance.MATERIAL_TILES[name], 0.0], np.float32)  # UV tiles
        out[name] = _MaterialMesh(vertex_ids=unique[:, 0], uv=uv,
                                  indices=inverse.reshape(-1, 3).astype(np.int32))
    return out


def head_center(model: FaceModel, vertices: np.ndarray) -> np.ndarray:
    """Centre of the iBUG-68 landmarks: the point placed at the chosen pixel position."""
    return load_layout("ibug68").points(vertices, model.triangles).mean(axis=0)


def _pose(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    return (points @ R.T + t).astype(np.float32)


class SyntheticEngine:
    """Renders samples; holds the GL context, the face model and the appearance banks for reuse."""

    def __init__(self, seed: int = 0, config: EngineConfig | None = None, model: FaceModel | None = None) -> None:
        self.seed = seed
        self.config = config or EngineConfig()
        self.model = model or load_facemodel()
        self.renderer = Renderer(self.config.width, self.config.height, self.config.supersample)
        self.backgrounds = BackgroundBank()
        self._meshes = _material_meshes(str(self.model.path))
        self._skins: dict[int, tuple[appearance.SkinParams, dict[str, np.ndarray]]] = {}

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, index])

    def sample(self, index: int) -> Sample:
        rng = self.rng(index)
        cfg = self.config
        neutral_center = head_center(self.model, self.model.neutral)
        params = sample_scene(rng, self.model, cfg.width, cfg.height, neutral_center)
        return self.render(params, rng)

    def render(self, params: SceneParams, rng: np.random.Generator,
               frame_rng: np.random.Generator | None = None) -> Sample:
        """Render a fully specified scene; `rng` draws the appearance, accessories, lights and camera effects.

        For video, pass the same-seeded `rng` every frame (the person, lights and lens stay the same) and a
        per-frame `frame_rng` for what changes between frames (sensor noise).
        """
        cfg = self.config
        model = self.model
        vertices = model.vertices(params.identity, params.expression)
        skin, textures = self._banked_skin(int(rng.integers(SKIN_BANK_SIZE)))
        tint = np.exp(rng.normal(0, 0.06, 3))  # so no two samples share a skin colour exactly
        items = self._head_items(vertices, params.R, params.t, textures, skin, tint)

        num_head_items = len(items)
        occluder_ids: list[int] = []
        parts: list[MeshPart] = []
        if cfg.accessories:
            parts = accessories.sample_accessories(rng, vertices, model, skin=skin)
            face_center_cam = _pose(head_center(model, vertices)[None], params.R, params.t)[0]
            parts += accessories.sample_occluder(rng, face_center_cam, 15.0, skin=skin)
        R_body = geometry.FRONTAL @ geometry.rotation_y(params.body_yaw) @ geometry.rotation_x(params.body_pitch)
        neck = accessories.neck_anchor(model, vertices)
        neck_cam = _pose(neck[None], params.R, params.t)[0]
        for i, part in enumerate(parts):
            pid = FIRST_ACCESSORY_ID + i
            if part.frame == "head":
                R, t = params.R, params.t
            elif part.frame == "body":
                R, t = R_body, neck_cam - R_body @ neck
            else:
                R, t = np.eye(3), np.zeros(3)
            items.append(self._part_item(part, R, t, pid))
            if part.occludes_landmarks:
                occluder_ids.append(pid)

        lighting = sample_lighting(rng)
        result = self.renderer.render(items, params.K, lighting, snapshot_after=num_head_items)
        background = (self.backgrounds.sample(rng, cfg.width, cfg.height).astype(np.float32) / 255.0
                      if cfg.background else np.full((cfg.height, cfg.width, 3), 0.5, np.float32))
        # Renders look too clean next to photos: exposure jitter before 8-bit quantisation, then camera effects.
        exposure = rng.uniform(0.8, 1.25)
        image = result.color * exposure + (1.0 - result.coverage[..., None]) * background
        image = (np.clip(image, 0, 1) ** (1 / rng.uniform(0.9, 1.1)) * 255 + 0.5).astype(np.uint8)
        image = effects.apply_camera_effects(image, rng, strength=cfg.effects_strength)
        if frame_rng is not None:
            noise = frame_rng.normal(0, frame_rng.uniform(1.0, 3.0), image.shape)
            image = np.clip(image + noise, 0, 255).astype(np.uint8)

        depth, part_id = _downsample_buffers(result.depth, result.part_id, result.supersample)
        head_depth, _ = _downsample_buffers(result.base_depth, result.part_id, result.supersample)
        tags = dict(params.tags, yaw=params.yaw, pitch=params.pitch, roll=params.roll,
                    parts=[p.name for p in parts])
        return Sample(image=image, identity=params.identity, expression=params.expression, K=params.K, R=params.R,
                      t=params.t, depth=depth, part_id=part_id, head_depth=head_depth, occluder_ids=tuple(occluder_ids), tags=tags)

    def fill_skin_bank(self) -> None:
        """Make every banked skin now (~5 s) rather than during the first few hundred samples."""
        for slot in range(SKIN_BANK_SIZE):
            self._banked_skin(slot)

    def _banked_skin(self, slot: int) -> tuple[appearance.SkinParams, dict[str, np.ndarray]]:
        """Skin parameters and textures of a bank slot, made on first use from (seed, slot) alone."""
        if slot not in self._skins:
            rng = np.random.default_rng([self.seed, SKIN_BANK_STREAM, slot])
            skin = appearance.sample_skin(rng)
            self._skins[slot] = (skin, appearance.material_textures(skin, rng))
        return self._skins[slot]

    def _head_items(self, vertices: np.ndarray, R: np.ndarray, t: np.ndarray, textures: dict[str, np.ndarray],
                    skin: appearance.SkinParams, tint: np.ndarray) -> list[DrawItem]:
        model = self.model
        cam = _pose(vertices, R, t)
        normals = (geometry.vertex_normals(vertices, model.triangles) @ R.T).astype(np.float32)
        items = []
        for name, pid in HEAD_MATERIALS.items():
            mesh = self._meshes[name]
            item = DrawItem(positions=cam[mesh.vertex_ids], normals=normals[mesh.vertex_ids], indices=mesh.indices,
                            part_id=pid)
            if name in textures:
                item.uv, item.texture = mesh.uv, textures[name]
                if pid == SKIN:
                    item.tint = tuple(tint)
            else:
                item.color = {"M_Teeth": skin.teeth_rgb, "M_GumsTongue": skin.gums_rgb}[name]
            item.specular, item.shininess, item.wrap = {SKIN: (0.12, 24.0, 0.35), EYES: (0.6, 80.0, 0.0),
                                                        MOUTH: (0.2, 30.0, 0.0)}[pid]
            items.append(item)
        return items

    @staticmethod
    def _part_item(part: MeshPart, R: np.ndarray, t: np.ndarray, part_id: int) -> DrawItem:
        normals = part.normals if part.normals is not None else geometry.vertex_normals(part.vertices, part.triangles)
        return DrawItem(positions=_pose(part.vertices, R, t), normals=(normals @ R.T).astype(np.float32),
                        indices=part.triangles, uv=None if part.uv is None else part.uv.astype(np.float32),
                        texture=part.texture, color=part.color, specular=part.specular,
                        shininess=part.shininess, part_id=part_id)


def _downsample_buffers(depth: np.ndarray, part_id: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest surface per output pixel (min depth over its s x s subsamples) and that surface's part id."""
    if s == 1:
        return depth, part_id.astype(np.int16)
    h, w = depth.shape[0] // s, depth.shape[1] // s
    blocks = depth.reshape(h, s, w, s).transpose(0, 2, 1, 3).reshape(h, w, s * s)
    ids = part_id.reshape(h, s, w, s).transpose(0, 2, 1, 3).reshape(h, w, s * s)
    nearest = blocks.argmin(axis=2)
    return (np.take_along_axis(blocks, nearest[..., None], 2)[..., 0],
            np.take_along_axis(ids, nearest[..., None], 2)[..., 0].astype(np.int16))
