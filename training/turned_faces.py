"""Turned views of real photographs: large-pose training faces with 3D-consistent labels (face profiling).

    python -m training.turned_faces ../shared/realfaces/portraits_pd --out data/turned_portraits [--views 1]

Real photos with labels are nearly all near-frontal; the benchmark's error is largest at 30-90 degrees of yaw. As
3DDFA's face profiling did for 300W-LP, each photo's face is turned further in 3D and re-rendered: a trained model
reads the photo once (mirrored and averaged, `ibug68` plus the `dense` layout's 3,000 surface points); the ICT
face model is fitted to that reading (`core.solve.solve_shot` on the 3D and the 2D points, on the 68 and every
10th dense point: the per-point 3D output is too rough to turn), and the fitted face's points become a mesh
(Delaunay in the frontal plane), textured with the photo where they project, and drawn from the same camera
with the head turned about its vertical axis (the canonical origin, behind the face) by 15-50 degrees away
from the camera, up to `MAX_YAW`. The labels are the turned `ibug68` points projected, so they are where the
photo's pixels at those points land: 3D-consistent (a hidden point is where it lies in 3D, as AFLW2000-3D's
re-annotation places it) and as good as the model's reading of the unturned photo (the fitted face projects
within about a pixel of the read points). Behind the face the photo's face area is filled with a smooth inpainting (at a quarter of the
resolution), so that where the turned face no longer covers, no second face shows through.

The output folder holds the rendered `.jpg` files and `labels.json` in the `python -m core.predict` JSON form
(`ibug68`), read back by `training.datasets.predictions` (`predictions:root=...,file=labels.json`), and
`sheet.png`: SHEET_VIEWS views spread over the run, each beside its photo, labels drawn (hidden points red).

    python -m training.turned_faces --sheet-of data/turned_faces --out turned_sheet.jpg   # again, of an earlier run
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core import geometry
from core.layouts import Layout, load_layout

if TYPE_CHECKING:
    from core.runtime.session import LandmarkModel

log = logging.getLogger(__name__)

LABEL_LAYOUT = "ibug68"
MESH_LAYOUT = "dense"
MIN_CONFIDENCE = 0.9
TURN_RANGE_DEG = (15.0, 50.0)
MAX_YAW = 75.0
SOLVE_EVERY = 10  # the fit uses the 68 points and every SOLVE_EVERY-th dense point (the full set is 30x slower)
LONG_EDGE = 2.5  # Delaunay triangles with an edge this many times the median are across the face's outline
INPAINT_SCALE = 0.25
SHEET_VIEWS = 12
SHEET_TILE = 224

_VERTEX_SHADER = """
#version 330
uniform mat4 projection;
in vec3 in_position;     // camera space, cm
in vec2 in_uv;           // the photo's pixel, as a texture coordinate
out vec2 v_uv;
void main() {
    v_uv = in_uv;
    gl_Position = projection * vec4(in_position, 1.0);
}
"""
_FRAGMENT_SHADER = """
#version 330
uniform sampler2D photo;
in vec2 v_uv;
out vec4 out_color;
void main() {
    out_color = texture(photo, v_uv);
}
"""


def reading_layout() -> Layout:
    """ibug68 followed by the dense layout: the labels' points are the first 68 of the mesh's."""
    labels, mesh = load_layout(LABEL_LAYOUT), load_layout(MESH_LAYOUT)
    return Layout(f"{LABEL_LAYOUT}+{MESH_LAYOUT}", np.concatenate([labels.triangles, mesh.triangles]),
                  np.concatenate([labels.barycentric, mesh.barycentric]))


def face_mesh(canonical: np.ndarray) -> np.ndarray:
    """(T, 3) triangles over the canonical points (N, 3): Delaunay in the frontal (x, y) plane, without the long
    triangles that bridge concave stretches of the outline."""
    from scipy.spatial import Delaunay

    triangles = Delaunay(canonical[:, :2]).simplices
    corners = canonical[triangles][..., :2]
    edges = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=-1).max(1)
    return triangles[edges < LONG_EDGE * np.median(edges)].astype(np.int32)


def turned_pose(R: np.ndarray, degrees: float) -> np.ndarray:
    """R with the head's yaw changed by `degrees` (geometry's pose convention), about the canonical origin."""
    yaw, pitch, roll = geometry.rotation_to_pose(R)
    return geometry.pose_to_rotation(yaw + degrees, pitch, roll)


def pick_turn(R: np.ndarray, rng: np.random.Generator) -> float | None:
    """A turn that takes the head further from the camera (either way if it is near-frontal) without passing
    MAX_YAW, or None when the head is already turned that far."""
    yaw = geometry.rotation_to_pose(R)[0]
    sign = math.copysign(1.0, yaw) if abs(yaw) > 5 else float(rng.choice([-1.0, 1.0]))
    room = MAX_YAW - abs(yaw) if sign * yaw >= 0 else MAX_YAW + abs(yaw)
    low, high = TURN_RANGE_DEG[0], min(TURN_RANGE_DEG[1], room)
    return None if high < low else sign * float(rng.uniform(low, high))


def fill_face_area(image: np.ndarray, points_2d: np.ndarray) -> np.ndarray:
    """The photo with the face's convex hull inpainted (at INPAINT_SCALE, so the fill is smooth and quick)."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * INPAINT_SCALE)), max(1, round(h * INPAINT_SCALE))),
                       interpolation=cv2.INTER_AREA)
    mask = np.zeros(small.shape[:2], np.uint8)
    hull = cv2.convexHull((points_2d * INPAINT_SCALE).astype(np.float32)).round().astype(np.int32)
    cv2.fillConvexPoly(mask, hull, 255)
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    filled = cv2.resize(cv2.inpaint(small, mask, 3, cv2.INPAINT_TELEA), (w, h), interpolation=cv2.INTER_CUBIC)
    full_mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)[..., None] / 255.0
    return (image * (1 - full_mask) + filled * full_mask).astype(np.uint8)


@dataclass
class Reading:
    """A photo's face as the fitted ICT model: the reading layout's points (canonical cm), where they project in
    the photo (pixels), and the camera."""

    points_2d: np.ndarray
    points_3d: np.ndarray
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray


class TurnedFaceRenderer:
    """One EGL context for all photos of a run; `render` draws one turned view."""

    def __init__(self, triangles: np.ndarray) -> None:
        import moderngl  # here, so importing the module needs no GL driver

        self.ctx = moderngl.create_standalone_context(backend="egl")
        self.program = self.ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        self.triangles = triangles
        self._size: tuple[int, int] | None = None

    def release(self) -> None:
        self.ctx.release()

    def _target(self, width: int, height: int) -> None:
        if self._size != (width, height):
            self.fbo = self.ctx.framebuffer([self.ctx.texture((width, height), 4)],
                                            self.ctx.depth_renderbuffer((width, height)))
            self._size = (width, height)

    def render(self, image: np.ndarray, background: np.ndarray, reading: Reading, R_turned: np.ndarray
               ) -> np.ndarray:
        """The photo (H, W, 3) uint8 with its face turned to R_turned over `background` (`fill_face_area` of the
        photo); same camera, same size."""
        import moderngl

        from training.synth.renderer import projection_from_intrinsics

        h, w = image.shape[:2]
        self._target(w, h)
        photo = self.ctx.texture((w, h), 3, np.ascontiguousarray(image).tobytes())
        photo.repeat_x = photo.repeat_y = False
        cam = reading.points_3d @ R_turned.T + reading.t
        uv = reading.points_2d / [w, h]
        vertices = np.concatenate([cam, uv], axis=1).astype(np.float32)
        vbo = self.ctx.buffer(vertices.tobytes())
        ibo = self.ctx.buffer(self.triangles.astype(np.int32).tobytes())
        vao = self.ctx.vertex_array(self.program, [(vbo, "3f 2f", "in_position", "in_uv")], ibo)
        self.program["projection"].write(projection_from_intrinsics(reading.K, w, h, 1.0, 10000.0).T.copy().tobytes())
        self.fbo.use()
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.disable(moderngl.CULL_FACE)
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        photo.use(0)
        vao.render(moderngl.TRIANGLES)
        # The buffer comes back bottom row first; projection_from_intrinsics's NDC y grows down, so no flip.
        rgba = np.frombuffer(self.fbo.read(components=4), np.uint8).reshape(h, w, 4)
        for resource in (vao, vbo, ibo, photo):
            resource.release()
        alpha = rgba[..., 3:] / 255.0
        return (rgba[..., :3] * alpha + background * (1 - alpha)).astype(np.uint8)


class FaceReader:
    """The model's reading of a photo's most confident face (mirrored and averaged), as the fitted ICT model."""

    def __init__(self, model: LandmarkModel, layout: Layout) -> None:
        from core.solve import layout_basis

        self.model, self.layout = model, layout
        self.solved = np.r_[0:68, np.arange(68, len(layout), SOLVE_EVERY)]
        self.full_basis = layout_basis(layout)
        self.solve_basis = layout_basis(Layout("solved", layout.triangles[self.solved],
                                               layout.barycentric[self.solved]))

    def __call__(self, image: np.ndarray) -> Reading | None:
        """None when the photo has no face of confidence MIN_CONFIDENCE."""
        from core.solve import solve_shot

        face = self.model.predict(image, self.layout, "canonical", mirror=True)
        if not face.found or face.confidence < MIN_CONFIDENCE or face.landmarks_3d is None:
            return None
        K = face.K.astype(np.float64)
        s = self.solved
        fit = solve_shot(face.landmarks_3d[s][None].astype(np.float64), self.solve_basis,
                         image_points=face.landmarks_2d[s][None].astype(np.float64), K=K[None],
                         R=face.R[None].astype(np.float64), t=face.t[None].astype(np.float64))
        if fit.pose_R is None or not np.isfinite(fit.pose_R).all():
            return None
        points_3d = self.full_basis.points(fit.identity, fit.expressions[0])
        R, t = fit.pose_R[0], fit.pose_t[0]
        return Reading(geometry.project_canonical(points_3d, K, R, t), points_3d, K, R, t)


def make_turned_faces(images: list[Path], out: Path, model_path: str | Path, views: int = 1, seed: int = 0,
                      threads: int = 2) -> int:
    """Render `views` turned views of each photo's face into `out` (module docstring); returns how many."""
    from tqdm import tqdm

    from core.runtime.images import ImageReadError, read_image
    from core.runtime.session import LandmarkModel

    out.mkdir(parents=True, exist_ok=True)
    labels_path = out / "labels.json"
    if labels_path.exists():
        raise FileExistsError(f"{labels_path} already exists: choose another --out, or delete that folder")
    model = LandmarkModel(model_path, threads=threads)
    layout = reading_layout()
    reader = FaceReader(model, layout)
    renderer = TurnedFaceRenderer(face_mesh(layout.canonical_points()))
    rng = np.random.default_rng(seed)
    entries, skipped = [], 0
    try:
        for number, path in enumerate(tqdm(images, desc="turned faces", unit="photo")):
            try:
                image = read_image(path)
            except ImageReadError as exc:  # one bad photo must not cost the run
                log.warning("skipped %s", exc)
                skipped += 1
                continue
            reading = reader(image)
            if reading is None:
                skipped += 1
                continue
            background = fill_face_area(image, reading.points_2d)  # once for all the photo's views
            for view in range(views):
                turn = pick_turn(reading.R, rng)
                if turn is None:
                    continue
                R_turned = turned_pose(reading.R, turn)
                rendered = renderer.render(image, background, reading, R_turned)
                labels = geometry.project_canonical(reading.points_3d[:68], reading.K, R_turned, reading.t)
                name = f"{number:06d}_{view}.jpg"
                cv2.imwrite(str(out / name), cv2.cvtColor(rendered, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
                entries.append({"path": name, "source": str(path), "turn_deg": round(turn, 2),
                                "source_points": np.round(reading.points_2d[:68], 3).tolist(),
                                "R": np.round(R_turned, 6).tolist(),
                                "faces": [{"confidence": 1.0, "landmarks_2d": np.round(labels, 3).tolist()}]})
    finally:
        renderer.release()
    labels_path.write_text(json.dumps(entries) + "\n")
    if entries:
        write_sheet(out, out / "sheet.png")
    log.info("%d turned views of %d photos in %s (%d photos unreadable or without a sure face)", len(entries),
             len(images), out, skipped)
    return len(entries)


def face_tile(image: np.ndarray, points: np.ndarray, visibility: np.ndarray | None = None) -> np.ndarray:
    """A SHEET_TILE square around the points' box (twice its side), the points drawn."""
    from core.overlay import draw_landmarks

    lo, hi = points.min(0), points.max(0)
    centre, half = (lo + hi) / 2, float((hi - lo).max())
    zoom = SHEET_TILE / (2 * half)
    M = np.array([[zoom, 0, SHEET_TILE / 2 - zoom * centre[0]], [0, zoom, SHEET_TILE / 2 - zoom * centre[1]]])
    tile = cv2.warpAffine(image, M, (SHEET_TILE, SHEET_TILE), flags=cv2.INTER_LINEAR)
    return draw_landmarks(tile, points * zoom + M[:, 2], visibility, load_layout(LABEL_LAYOUT).contours)


def write_sheet(folder: Path, path: Path) -> None:
    """Contact sheet of a run (module docstring): photo and turned view side by side, SHEET_VIEWS pairs."""
    from core.overlay import contact_sheet
    from core.runtime.images import read_image

    entries = json.loads((folder / "labels.json").read_text())
    if not entries:
        raise ValueError(f"{folder / 'labels.json'} holds no views to show")
    picks = np.linspace(0, len(entries) - 1, min(SHEET_VIEWS, len(entries))).round().astype(int)
    canonical_normals = load_layout(LABEL_LAYOUT).canonical_normals()
    tiles = []
    for k in picks:
        entry = entries[k]
        points = np.asarray(entry["faces"][0]["landmarks_2d"], np.float64)
        source = read_image(entry["source"])
        R = np.asarray(entry["R"], np.float64)
        facing = (canonical_normals @ R.T)[:, 2] < 0  # the normal points back at the camera
        tiles += [face_tile(source, np.asarray(entry["source_points"], np.float64)),
                  face_tile(read_image(folder / entry["path"]), points, facing.astype(np.float32))]
    sheet = contact_sheet(tiles, columns=6)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    log.info("wrote %s", path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.turned_faces", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", help="photos or folders of photos (.jpg, .png)")
    parser.add_argument("--out", type=Path, required=True,
                        help="new folder for the views and labels.json (with --sheet-of: the sheet's .png)")
    parser.add_argument("--sheet-of", type=Path, help="only draw the contact sheet of this earlier run's folder")
    parser.add_argument("--model", default="assets/models/default.onnx", help="the model that reads the photos")
    parser.add_argument("--views", type=int, default=1, help="turned views per photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.sheet_of:
        if args.out.exists():
            log.error("%s already exists: choose another --out", args.out)
            return 2
        try:
            write_sheet(args.sheet_of, args.out)
        except (FileNotFoundError, ValueError) as exc:
            log.error("%s", exc)
            return 2
        return 0
    images: list[Path] = []
    for item in map(Path, args.inputs):
        images += sorted(p for p in item.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")) \
            if item.is_dir() else [item]
    if not images:
        parser.error("no .jpg or .png photos in the inputs")
    try:
        make_turned_faces(images[:args.limit], args.out, args.model, args.views, args.seed, args.threads)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
