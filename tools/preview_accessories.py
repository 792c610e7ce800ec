"""Look at accessory geometry: random heads with hair, beards, glasses, torso and occluders in a PNG grid.

    python -m tools.preview_accessories [--count 16] [--seed 0] [--out out/accessories_preview.png]

Each head is drawn frontal and at three-quarters with a minimal flat-Lambert moderngl (EGL) renderer of its own,
so this preview does not depend on the training renderer. Alpha textures are cut out at 0.5, as in training.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from core.facemodel import FaceModel, load_facemodel
from core.geometry import intrinsics, pose_to_rotation
from core.layouts import load_layout
from training.synth import accessories

log = logging.getLogger(__name__)

_VS = """
#version 330
uniform mat3 K;
uniform vec2 size;
in vec3 in_position;
in vec2 in_uv;
out vec3 v_position;
out vec2 v_uv;
void main() {
    vec3 p = K * in_position;
    v_position = in_position;
    v_uv = in_uv;
    gl_Position = vec4(2.0 * p.x / p.z / size.x - 1.0, 1.0 - 2.0 * p.y / p.z / size.y,
                       (in_position.z - 1.0) / 500.0 * 2.0 - 1.0, 1.0);
}
"""
_FS = """
#version 330
uniform vec3 color;
uniform sampler2D tex;
uniform bool use_texture;
in vec3 v_position;
in vec2 v_uv;
out vec4 f_color;
void main() {
    vec4 albedo = use_texture ? texture(tex, vec2(v_uv.x, 1.0 - v_uv.y)) : vec4(color, 1.0);
    if (albedo.a < 0.5) discard;
    vec3 n = normalize(cross(dFdx(v_position), dFdy(v_position)));
    float lambert = abs(dot(n, normalize(vec3(0.35, -0.45, -1.0))));
    f_color = vec4(pow(albedo.rgb * (0.25 + 0.85 * lambert), vec3(1.0 / 2.2)), 1.0);
}
"""


class PreviewRenderer:
    """Flat-shaded OpenCV-camera rasteriser for (camera-space vertices, triangles, colour/texture) items."""

    def __init__(self, size: int) -> None:
        import moderngl

        self.moderngl = moderngl
        self.size = size
        self.ctx = moderngl.create_standalone_context(backend="egl")
        self.prog = self.ctx.program(vertex_shader=_VS, fragment_shader=_FS)
        self.fbo = self.ctx.framebuffer(self.ctx.renderbuffer((size, size), 4),
                                        self.ctx.depth_renderbuffer((size, size)))

    def render(self, items: list[tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple, np.ndarray | None]],
               K: np.ndarray) -> np.ndarray:
        """items: (camera-space vertices, triangles, uv, colour, texture). Returns RGB uint8."""
        mgl = self.moderngl
        self.fbo.use()
        self.fbo.clear(0.82, 0.84, 0.88, 1.0)
        self.ctx.enable(mgl.DEPTH_TEST)
        self.prog["K"].write(np.asarray(K, np.float32).T.copy().tobytes())
        self.prog["size"].value = (self.size, self.size)
        for verts, tris, uv, color, texture in items:
            if len(tris) == 0:
                continue
            uv = np.zeros((len(verts), 2), np.float32) if uv is None else uv
            data = np.hstack([verts, uv]).astype(np.float32)
            vbo = self.ctx.buffer(data.tobytes())
            ibo = self.ctx.buffer(np.ascontiguousarray(tris, np.int32).tobytes())
            vao = self.ctx.vertex_array(self.prog, [(vbo, "3f 2f", "in_position", "in_uv")], index_buffer=ibo,
                                        index_element_size=4)
            tex = None
            if texture is not None and uv is not None:
                tex = self.ctx.texture((texture.shape[1], texture.shape[0]), texture.shape[2],
                                       np.ascontiguousarray(texture).tobytes())
                tex.repeat_x = tex.repeat_y = False
                tex.use(0)
                self.prog["tex"].value = 0
            self.prog["use_texture"].value = tex is not None
            self.prog["color"].value = tuple(float(c) for c in color)
            vao.render(mgl.TRIANGLES)
            for obj in (vao, vbo, ibo, tex):
                if obj is not None:
                    obj.release()
        img = np.frombuffer(self.fbo.read(components=3), np.uint8).reshape(self.size, self.size, 3)
        return img[::-1].copy()


def _head_items(model: FaceModel, vertices: np.ndarray, skin: tuple) -> list:
    mat = model.triangle_material
    names = model.material_names
    items = []
    for material, color in (("M_Face", skin), ("M_BackHead", skin), ("M_ScleraLeft", (0.8, 0.78, 0.75)),
                            ("M_ScleraRight", (0.8, 0.78, 0.75)), ("M_Teeth", (0.8, 0.78, 0.7)),
                            ("M_GumsTongue", (0.5, 0.2, 0.2))):
        items.append((vertices, model.triangles[mat == names.index(material)], None, color, None))
    for material in ("M_IrisLeft", "M_IrisRight"):
        tris = model.triangles[mat == names.index(material)]
        front = tris[(vertices[tris][:, :, 2].min(1) > vertices[np.unique(tris), 2].max() - 0.5)]
        items.append((vertices, front, None, (0.1, 0.07, 0.05), None))
    return items


def random_head(rng: np.random.Generator, model: FaceModel) -> np.ndarray:
    identity = rng.normal(0, 1, model.num_identities) * 0.9
    expression = np.zeros(model.num_expressions)
    chosen = rng.choice(model.num_expressions, size=3, replace=False)
    expression[chosen] = rng.uniform(0, 0.6, 3)
    if rng.random() < 0.3:
        expression[list(model.expression_names).index("jawOpen")] = rng.uniform(0.2, 0.7)
    return model.vertices(identity, expression)


def render_preview(count: int = 16, seed: int = 0, tile: int = 320, mix: bool = True) -> np.ndarray:
    """The preview grid: per head a frontal and a three-quarter view side by side, 4 heads a row."""
    model = load_facemodel()
    layout = load_layout("ibug68")
    renderer = PreviewRenderer(tile)
    tiles = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        vertices = random_head(rng, model)
        skin = tuple(np.array([0.75, 0.52, 0.4]) * rng.uniform(0.35, 1.1))
        params = {}
        if mix:  # walk through the styles so one picture shows each of them
            params = {"hair_style": accessories.HAIR_STYLES[i % len(accessories.HAIR_STYLES)]}
        parts = accessories.sample_accessories(rng, vertices, model, params, skin=skin)
        center = layout.points(vertices, model.triangles).mean(axis=0)
        views = []
        for yaw in (rng.uniform(-8, 8), rng.choice([-1, 1]) * rng.uniform(35, 50)):
            R = pose_to_rotation(yaw, rng.uniform(-8, 8), rng.uniform(-5, 5))
            target = np.array([0.0, -4.0, 0.0])
            t = np.array([0.0, 0.0, 95.0]) - R @ target
            K = intrinsics(tile * 1.45, tile, tile)
            items = [((vertices @ R.T + t), tris, uv, c, tex) for vertices_, tris, uv, c, tex in
                     _head_items(model, vertices, skin) for vertices in [vertices_]]
            for part in parts:
                if part.frame == "camera":
                    v = part.vertices
                else:  # the preview poses the body like the head
                    v = part.vertices @ R.T + t
                items.append((v, part.triangles, part.uv, part.color, part.texture))
            if i % 4 == 3:  # an occluder on every fourth head
                occ = accessories.sample_occluder(rng, R @ center + t, 15.0, skin=skin, probability=1.0)
                items += [(o.vertices, o.triangles, o.uv, o.color, o.texture) for o in occ]
                parts_names = [p.name for p in parts] + [o.name for o in occ]
            else:
                parts_names = [p.name for p in parts]
            img = renderer.render(items, K)
            views.append(img)
        pair = np.hstack(views)
        label = ", ".join(parts_names)
        cv2.putText(pair, label[:70], (4, tile - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (20, 20, 20), 1, cv2.LINE_AA)
        tiles.append(pair)
    rows = [np.hstack(tiles[r:r + 4]) for r in range(0, len(tiles), 4)]
    if len(rows) > 1 and rows[-1].shape != rows[0].shape:
        pad = np.full_like(rows[0], 255)
        pad[:, :rows[-1].shape[1]] = rows[-1]
        rows[-1] = pad
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tile", type=int, default=320)
    parser.add_argument("--random", action="store_true", help="draw hair styles at random instead of cycling")
    parser.add_argument("--out", type=Path, default=Path("out/accessories_preview.png"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    grid = render_preview(args.count, args.seed, args.tile, mix=not args.random)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    log.info("wrote %s (%dx%d)", args.out, grid.shape[1], grid.shape[0])


if __name__ == "__main__":
    main()
