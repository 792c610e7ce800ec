"""Pictures of the built-in landmark layouts on the neutral canonical face, for checking and for the docs.

    python -m tools.layout_pictures docs/layouts            # one PNG per layout: docs/layouts/<name>.png
    python -m tools.layout_pictures OUT_DIR wflw98 my.json  # only these layouts (names or JSON paths)

Each picture shows the face frontal and in a 3/4 view side by side: an orthographic, flat-shaded render
(painter's algorithm with matplotlib) with the layout's points on top. Layouts of up to 200 points get numbered
labels and their contours; denser ones are drawn as dots. Points hidden behind the face are left out.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

import numpy as np  # noqa: E402

from core.facemodel import FaceModel, load_facemodel  # noqa: E402
from core.layouts import Layout, available_layouts, load_layout  # noqa: E402

log = logging.getLogger(__name__)

# Materials drawn, with their base colours; eyelashes and the translucent eye layers only add clutter.
MATERIAL_COLOURS = {
    "M_Face": (0.87, 0.72, 0.62), "M_BackHead": (0.80, 0.66, 0.57), "M_ScleraLeft": (0.95, 0.94, 0.92),
    "M_ScleraRight": (0.95, 0.94, 0.92), "M_IrisLeft": (0.35, 0.45, 0.55), "M_IrisRight": (0.35, 0.45, 0.55),
    "M_Teeth": (0.95, 0.93, 0.85), "M_GumsTongue": (0.70, 0.35, 0.35),
}
VIEWS = {"frontal": 0.0, "three-quarter": 40.0}   # yaw in degrees; > 0 shows the subject's right cheek
LIGHT = np.array([-0.3, 0.4, 1.0]) / np.linalg.norm([-0.3, 0.4, 1.0])
EXTENT = (-10.0, 10.0, -11.0, 10.5)               # canonical cm shown frontally: x_min, x_max, y_min, y_max
FACE_CENTRE = np.array([0.0, 0.0, 5.5])           # kept in the middle of a turned view
LABEL_LIMIT = 200
DEPTH_TOLERANCE = 0.25                            # cm a point may sit behind the visible surface
ZBUFFER_PX_PER_CM = 40


def yaw_matrix(degrees: float) -> np.ndarray:
    """Rotation about +Y; positive yaw turns the face towards the viewer's left (shows its right cheek)."""
    a = np.radians(degrees)
    return np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])


def _scene(model: FaceModel) -> tuple[np.ndarray, np.ndarray]:
    """Triangles to draw and their base colours (indexed like `model.triangles`)."""
    keep = np.zeros(len(model.triangles), bool)
    colours = np.zeros((len(model.triangles), 3))
    for name, colour in MATERIAL_COLOURS.items():
        mask = model.material_mask(name)
        keep |= mask
        colours[mask] = colour
    return np.flatnonzero(keep & ~_cornea(model)), colours


def _cornea(model: FaceModel) -> np.ndarray:
    """Sclera triangles in front of the iris: ICT's sclera mesh includes the (transparent) cornea bulge."""
    verts = model.neutral
    cornea = np.zeros(len(model.triangles), bool)
    for side in ("Left", "Right"):
        iris = verts[np.unique(model.triangles[model.material_mask(f"M_Iris{side}")])]
        disc = iris[iris[:, 2] > iris[:, 2].max() - 0.35]  # the iris front, facing roughly +Z
        centre = disc[:, :2].mean(0)
        radius = np.linalg.norm(disc[:, :2] - centre, axis=1).max()
        sclera = model.material_mask(f"M_Sclera{side}")
        centroids = verts[model.triangles[sclera]].mean(1)
        over = (np.linalg.norm(centroids[:, :2] - centre, axis=1) < radius) & (centroids[:, 2] > disc[:, 2].min())
        cornea[np.flatnonzero(sclera)[over]] = True
    return cornea


def _visible(points: np.ndarray, verts: np.ndarray, tris: np.ndarray,
             extent: tuple[float, float, float, float]) -> np.ndarray:
    """Which view-space points are not behind the surface.

    An id buffer of the drawn triangles (painter's order, rasterised with cv2) says which triangle is seen at a
    point's pixel; the point is visible unless that triangle's plane lies clearly in front of it there.
    """
    x0, x1, y0, y1 = extent
    ids = np.full((int((y1 - y0) * ZBUFFER_PX_PER_CM), int((x1 - x0) * ZBUFFER_PX_PER_CM)), -1, np.int32)

    def pixels(xy: np.ndarray) -> np.ndarray:
        return np.stack([(xy[..., 0] - x0) * ZBUFFER_PX_PER_CM, (y1 - xy[..., 1]) * ZBUFFER_PX_PER_CM], -1)

    corners = verts[tris]
    fixed = np.round(pixels(corners[:, :, :2]) * 16).astype(np.int32)
    for k in np.argsort(corners[:, :, 2].mean(1)):  # far to near: later triangles overwrite
        cv2.fillConvexPoly(ids, fixed[k], int(k), lineType=cv2.LINE_8, shift=4)
    px = pixels(points[:, :2]).astype(int)
    inside = (px[:, 0] >= 0) & (px[:, 0] < ids.shape[1]) & (px[:, 1] >= 0) & (px[:, 1] < ids.shape[0])
    seen = np.full(len(points), -1)
    seen[inside] = ids[px[inside, 1], px[inside, 0]]
    visible = seen < 0
    # Depth of the seen triangle's plane at the point: z = a x + b y + c through its three corners. Edge-on
    # triangles make the system singular: a tiny ridge keeps solve() working, the clamp to the nearest corner
    # bounds the result.
    hit = np.flatnonzero(seen >= 0)
    tri = corners[seen[hit]]
    lhs = np.concatenate([tri[:, :, :2], np.ones((len(hit), 3, 1))], 2)
    plane = np.linalg.solve(lhs + 1e-9 * np.eye(3), tri[:, :, 2])  # (n, 3): a, b, c
    surface_z = (plane[:, 0] * points[hit, 0] + plane[:, 1] * points[hit, 1] + plane[:, 2])
    visible[hit] = points[hit, 2] >= np.minimum(surface_z, tri[:, :, 2].max(1)) - DEPTH_TOLERANCE
    return visible


def draw_view(ax: plt.Axes, model: FaceModel, layout: Layout, yaw: float, title: str) -> None:
    """Render the neutral face at `yaw` and the layout's points onto `ax`."""
    rot = yaw_matrix(yaw)
    verts = model.neutral.astype(np.float64) @ rot.T
    tri_ids, base = _scene(model)
    tris = model.triangles[tri_ids]
    corners = verts[tris]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    front = normals[:, 2] > 0
    tris, corners, normals, base = tris[front], corners[front], normals[front], base[tri_ids[front]]
    shade = 0.25 + 0.75 * np.clip(normals @ LIGHT, 0, 1)
    order = np.argsort(corners[:, :, 2].mean(1))
    polys = PolyCollection(corners[order, :, :2], facecolors=(base * shade[:, None])[order],
                           edgecolors="none", antialiased=False)
    ax.add_collection(polys)

    shift = (FACE_CENTRE @ rot.T)[0]
    extent = (EXTENT[0] + shift, EXTENT[1] + shift, EXTENT[2], EXTENT[3])
    points = layout.points(verts, model.triangles)
    visible = _visible(points, verts, tris, extent)
    if len(layout) <= LABEL_LIMIT:
        for indices in layout.contours.values():
            for a, b in zip(indices[:-1], indices[1:]):
                if visible[a] and visible[b]:
                    ax.plot(points[[a, b], 0], points[[a, b], 1], color=(0.1, 0.6, 0.9), lw=0.7, zorder=3)
        ax.scatter(points[visible, 0], points[visible, 1], s=9, c="red", edgecolors="white", linewidths=0.3,
                   zorder=4)
        for i in np.flatnonzero(visible):
            ax.annotate(str(i), points[i, :2], xytext=(2, 2), textcoords="offset points", fontsize=5.5,
                        color="black", zorder=5)
    else:
        ax.scatter(points[visible, 0], points[visible, 1], s=1.5, c="red", linewidths=0, zorder=4)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(f"{title} ({int(visible.sum())} of {len(layout)} points visible)", fontsize=10)


def layout_picture(layout: Layout, path: Path, model: FaceModel | None = None) -> None:
    """Write the frontal + 3/4 picture of `layout` to `path` (PNG)."""
    model = model or load_facemodel()
    fig, axes = plt.subplots(1, 2, figsize=(16, 9.6), dpi=130)
    for ax, (view, yaw) in zip(axes, VIEWS.items()):
        draw_view(ax, model, layout, yaw, view)
    fig.suptitle(f"layout '{layout.name}': {len(layout)} points", fontsize=13)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, facecolor="white")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for <layout>.png")
    parser.add_argument("layouts", nargs="*", help="layout names or JSON paths (default: every built-in layout)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = load_facemodel()
    for name in args.layouts or available_layouts():
        layout = load_layout(name)
        path = args.out_dir / f"{layout.name}.png"
        layout_picture(layout, path, model)
        log.info("wrote %s", path)


if __name__ == "__main__":
    main()
