"""Offscreen rasteriser for synthetic samples: moderngl on EGL (headless Mesa), OpenCV pinhole camera.

Chosen over pyrender for speed (about 5x on llvmpipe) and because per-pixel outputs we need for ground truth
(camera-space depth and a part id per pixel) are one extra render target here. Each draw call takes
camera-space geometry; the caller poses it. Pixel centres are at half-integers, as in shared/conventions.md.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import cv2
import numpy as np

log = logging.getLogger(__name__)

MAX_LIGHTS = 4
# Skin textures come from a bank reused across samples (see scene.py); keep them all resident.
MAX_CACHED_TEXTURES = 2048

_VERTEX_SHADER = """
#version 330
uniform mat4 projection;      // OpenCV camera space -> clip space
in vec3 in_position;          // camera space, cm
in vec3 in_normal;
in vec2 in_uv;
out vec3 v_position;
out vec3 v_normal;
out vec2 v_uv;
void main() {
    v_position = in_position;
    v_normal = in_normal;
    v_uv = in_uv;
    gl_Position = projection * vec4(in_position, 1.0);
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform sampler2D albedo_texture;
uniform bool use_texture;
uniform vec3 base_color;
uniform vec3 tint;                  // multiplies the albedo: per-sample variation of banked textures
uniform float specular;
uniform float shininess;
uniform float part_id;
uniform float wrap;                 // soft "wrap" diffuse, a cheap stand-in for skin subsurface scattering
uniform vec3 sky_color;             // hemispherical ambient: camera -y is up
uniform vec3 ground_color;
uniform int num_lights;
uniform vec3 light_dir[4];          // towards the light, camera space
uniform vec3 light_color[4];
in vec3 v_position;
in vec3 v_normal;
in vec2 v_uv;
layout(location = 0) out vec4 out_color;
layout(location = 1) out vec2 out_depth_id;
void main() {
    vec4 albedo = use_texture ? texture(albedo_texture, vec2(v_uv.x, 1.0 - v_uv.y)) : vec4(base_color, 1.0);
    if (albedo.a < 0.5) discard;
    albedo.rgb *= tint;
    vec3 n = normalize(v_normal);
    vec3 view = normalize(-v_position);
    if (dot(n, view) < 0.0) n = -n;  // double-sided shading
    float up = 0.5 - 0.5 * n.y;
    vec3 color = albedo.rgb * mix(ground_color, sky_color, up);
    for (int i = 0; i < num_lights; ++i) {
        vec3 l = normalize(light_dir[i]);
        float diffuse = max((dot(n, l) + wrap) / (1.0 + wrap), 0.0);
        vec3 h = normalize(l + view);
        float spec = specular * pow(max(dot(n, h), 0.0), shininess) * step(0.0, dot(n, l));
        color += light_color[i] * (albedo.rgb * diffuse + spec);
    }
    out_color = vec4(color, 1.0);
    out_depth_id = vec2(v_position.z, part_id);
}
"""


@dataclass
class DrawItem:
    """Geometry ready to draw, in camera space; `indices` (T, 3) index the vertex rows (None: 3 rows a triangle)."""

    positions: np.ndarray            # (N, 3) float32, OpenCV camera space, cm
    normals: np.ndarray              # (N, 3) float32
    uv: np.ndarray | None = None     # (N, 2) float32
    indices: np.ndarray | None = None
    texture: np.ndarray | None = None  # (H, W, 3|4) uint8; row 0 is v = 1 (top), as images are stored
    color: tuple[float, float, float] = (0.6, 0.6, 0.6)
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    specular: float = 0.1
    shininess: float = 16.0
    wrap: float = 0.0
    part_id: int = 0


@dataclass
class Lighting:
    directions: list[np.ndarray] = field(default_factory=lambda: [np.array([0.3, -0.5, -1.0])])  # towards lights
    colors: list[np.ndarray] = field(default_factory=lambda: [np.array([0.8, 0.8, 0.8])])
    sky: np.ndarray = field(default_factory=lambda: np.array([0.35, 0.35, 0.38]))
    ground: np.ndarray = field(default_factory=lambda: np.array([0.15, 0.13, 0.12]))


@dataclass
class RenderResult:
    color: np.ndarray     # (H, W, 3) float32 linear-ish RGB, 0 where nothing was drawn
    coverage: np.ndarray  # (H, W) float32 in 0..1 (fraction of supersamples covered)
    depth: np.ndarray     # (H*s, W*s) float32 camera z in cm, inf where empty (at the supersampled resolution)
    part_id: np.ndarray   # (H*s, W*s) int32, -1 where empty
    supersample: int
    base_depth: np.ndarray | None = None  # (H*s, W*s) depth of the items before `snapshot_after`




def projection_from_intrinsics(K: np.ndarray, width: int, height: int, near: float, far: float) -> np.ndarray:
    """Clip-space matrix for OpenCV camera coordinates. NDC y grows downwards with image rows, so the buffer
    read back by glReadPixels (bottom row first) comes out top row first: no flip needed."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    return np.array([
        [2 * fx / width, 0, 2 * cx / width - 1, 0],
        [0, 2 * fy / height, 2 * cy / height - 1, 0],
        [0, 0, (far + near) / (far - near), -2 * far * near / (far - near)],
        [0, 0, 1, 0],
    ], dtype=np.float32)


class Renderer:
    """One EGL context and framebuffer per size; reuse it across samples (creation costs ~50 ms)."""

    def __init__(self, width: int, height: int, supersample: int = 2) -> None:
        import moderngl  # imported here so importing the engine does not need a GL driver

        self.width, self.height, self.supersample = width, height, supersample
        self.ctx = moderngl.create_standalone_context(backend="egl")
        self.program = self.ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        w, h = width * supersample, height * supersample
        self._color = self.ctx.texture((w, h), 4, dtype="f1")
        self._depth_id = self.ctx.texture((w, h), 2, dtype="f4")
        self._zbuffer = self.ctx.depth_renderbuffer((w, h))
        self.fbo = self.ctx.framebuffer([self._color, self._depth_id], self._zbuffer)
        self._textures: OrderedDict[int, tuple] = OrderedDict()

    def release(self) -> None:
        self.ctx.release()

    def _texture(self, image: np.ndarray):
        key = id(image)
        tex = self._textures.get(key)
        if tex is None:
            while len(self._textures) >= MAX_CACHED_TEXTURES:  # least recently used first
                old, _ = self._textures.popitem(last=False)[1]
                old.release()
            image = np.ascontiguousarray(image)
            channels = image.shape[2] if image.ndim == 3 else 1
            tex = self.ctx.texture((image.shape[1], image.shape[0]), channels, image.tobytes())
            # No mipmaps: building them costs ~3 ms a texture on llvmpipe, and textures are made per sample at
            # about the resolution they are seen at, so bilinear filtering does not alias much.
            tex.repeat_x = tex.repeat_y = False
            self._textures[key] = (tex, image)  # keep the array alive so id() stays unique
            return tex
        self._textures.move_to_end(key)
        return tex[0]

    def render(self, items: list[DrawItem], K: np.ndarray, lighting: Lighting,
               near: float = 1.0, far: float = 10000.0, snapshot_after: int | None = None) -> RenderResult:
        """Draw `items` in order. With `snapshot_after=n`, also return the depth of the first n items alone
        (`RenderResult.base_depth`): the head without its accessories, to tell self-occlusion from occluders."""
        import moderngl

        s = self.supersample
        Ks = np.array(K, np.float64).copy()
        Ks[:2] *= s
        prog = self.program
        prog["projection"].write(projection_from_intrinsics(Ks, self.width * s, self.height * s, near, far)
                                 .T.copy().tobytes())
        n = min(len(lighting.directions), MAX_LIGHTS)
        dirs = np.zeros((MAX_LIGHTS, 3), np.float32)
        cols = np.zeros((MAX_LIGHTS, 3), np.float32)
        dirs[:n] = np.array(lighting.directions[:n])
        cols[:n] = np.array(lighting.colors[:n])
        prog["num_lights"].value = n
        prog["light_dir"].write(dirs.tobytes())
        prog["light_color"].write(cols.tobytes())
        prog["sky_color"].value = tuple(float(x) for x in lighting.sky)
        prog["ground_color"].value = tuple(float(x) for x in lighting.ground)

        self.fbo.use()
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.disable(moderngl.CULL_FACE)
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        # The second target must be cleared to "empty" (inf depth, id -1), which fbo.clear cannot do per target.
        self._depth_id.write(np.tile(np.array([np.inf, -1.0], np.float32),
                                     (self.height * s, self.width * s, 1)).tobytes())
        h, w = self.height * s, self.width * s
        base_depth = None
        for k, item in enumerate(items):
            if k == snapshot_after:
                base_depth = np.frombuffer(self._depth_id.read(), np.float32).reshape(h, w, 2)[..., 0].copy()
            if len(item.positions) == 0 or (item.indices is not None and len(item.indices) == 0):
                continue
            uv = item.uv if item.uv is not None else np.zeros((len(item.positions), 2), np.float32)
            data = np.empty((len(item.positions), 8), np.float32)
            data[:, 0:3], data[:, 3:6], data[:, 6:8] = item.positions, item.normals, uv
            vbo = self.ctx.buffer(data)
            ibo = None if item.indices is None else self.ctx.buffer(np.ascontiguousarray(item.indices, np.int32))
            vao = self.ctx.vertex_array(prog, [(vbo, "3f 3f 2f", "in_position", "in_normal", "in_uv")],
                                        index_buffer=ibo, index_element_size=4)
            use_tex = item.texture is not None and item.uv is not None
            prog["use_texture"].value = use_tex
            if use_tex:
                self._texture(item.texture).use(0)
                prog["albedo_texture"].value = 0
            prog["base_color"].value = tuple(float(c) for c in item.color)
            prog["tint"].value = tuple(float(c) for c in item.tint)
            prog["specular"].value = float(item.specular)
            prog["shininess"].value = float(item.shininess)
            prog["wrap"].value = float(item.wrap)
            prog["part_id"].value = float(item.part_id)
            vao.render(moderngl.TRIANGLES)
            vao.release()
            vbo.release()
            if ibo is not None:
                ibo.release()

        color = np.frombuffer(self.fbo.read(components=4, attachment=0), np.uint8).reshape(h, w, 4)
        depth_id = np.frombuffer(self._depth_id.read(), np.float32).reshape(h, w, 2)
        covered = (depth_id[..., 1] >= 0).astype(np.float32)
        rgb = color[..., :3]
        if s > 1:  # box filter = area average, which is what INTER_AREA does for integer factors
            rgb = cv2.resize(rgb, (self.width, self.height), interpolation=cv2.INTER_AREA)
            covered = cv2.resize(covered, (self.width, self.height), interpolation=cv2.INTER_AREA)
        rgb = rgb.astype(np.float32) / 255.0
        depth = depth_id[..., 0].copy()
        if snapshot_after is not None and base_depth is None:  # nothing came after the snapshot point
            base_depth = depth
        return RenderResult(color=rgb, coverage=covered, depth=depth, part_id=depth_id[..., 1].astype(np.int32),
                            supersample=s, base_depth=base_depth)
