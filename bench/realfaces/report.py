"""Report of the real-face benchmark: the tables (markdown), CED plots, the overlay sheet and results.json.

The overlay sheet shows research-only photographs from ../shared/realfaces: it is written as OVERLAY_NAME into
the output folder together with a `.gitignore` that keeps it out of git. The section of the report can also be
put into another markdown file (`update_section`: docs/benchmarks.md, whose own command keeps it, see
`kept_section`).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.benchmark.report import panel
from bench.realfaces.inputs import FaceSet
from bench.realfaces.runs import Method
from bench.realfaces.scoring import THRESHOLD, YAW_BINS, FaceScore
from core.outputs import atomic_path, write_image, write_text
from core.overlay import contact_sheet
from training import metrics

log = logging.getLogger("bench.realfaces")

SECTION_TITLE = "## Real faces (AFLW2000-3D dev, 300-W validation)"
OVERLAY_NAME = "overlay_real_faces.png"
TILE = 256          # px, one face in one method's drawing on the sheet
TILE_CONTEXT = 1.5  # the tile's side in ground-truth box sides
SHEET_FACES = {"aflw2000_dev": 12, "300w_val": 4}


# --- numbers ----------------------------------------------------------------------------------------------------------

def fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def detected_cell(summary: dict[str, Any]) -> str:
    return f"{summary['detected']} / {summary['n']} ({100 * summary['detected'] / max(summary['n'], 1):.1f}%)"


def set_tables(face_set: FaceSet, methods: list[Method], summaries: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown tables of one set: the protocol's table, then NME_io, AUC and (with poses) yaw bins and axes."""
    has_pose = any(f.pose is not None for f in face_set.faces)
    L = ["| Method | Detected | NME_box | FR@0.1 |" + (" Head pose MAE (deg) |" if has_pose else " NME_io | AUC@0.1 |"),
         "|---|---|---|---|---|" + ("" if has_pose else "---|")]
    for m in methods:
        s = summaries[m.key]
        row = f"| {m.label} | {detected_cell(s)} | {fmt(s['nme_box'], 4)} | {fmt(s['fr_0.1'], 3)} |"
        L.append(row + (f" {fmt(s['pose_mae'], 1)} |" if has_pose else f" {fmt(s['nme_io'], 4)} | "
                                                                     f"{fmt(s['auc_0.1'], 3)} |"))
    if not has_pose:
        return L + [""]
    bins = summaries[methods[0].key]["yaw_bins"]
    L += ["", "| Method | NME_io | AUC@0.1 | " + " | ".join(
        f"NME_box, \\|yaw\\| {lo:g}-{hi:g}° (n={b['n']})" for (lo, hi), b in zip(YAW_BINS, bins))
        + " | Pitch / yaw / roll MAE (deg) |", "|---|---|---|" + "---|" * len(YAW_BINS) + "---|"]
    for m in methods:
        s = summaries[m.key]
        cells = [f"{fmt(b['nme_box'], 4)} ({b['detected']} det.)" for b in s["yaw_bins"]]
        axes = " / ".join(fmt(a, 1) for a in s["pose_mae_axes"]) if s["pose_mae_axes"] else "n/a"
        L.append(f"| {m.label} | {fmt(s['nme_io'], 4)} | {fmt(s['auc_0.1'], 3)} | " + " | ".join(cells)
                 + f" | {axes} |")
    return L + [""]


def plot_ced(face_set: FaceSet, methods: list[Method], scores: dict[str, list[FaceScore]], out_dir: Path) -> Path:
    """CED of NME_io over all images (a miss is NME_io = inf), one curve per method."""
    path = out_dir / f"ced_{face_set.key}.png"
    with atomic_path(path) as tmp:
        metrics.plot_ced({m.label: np.array([s.nme_io for s in scores[m.key]]) for m in methods}, tmp, THRESHOLD,
                         title=f"{face_set.title} (n={len(face_set.faces)}), misses = failures",
                         xlabel="NME_io (outer eye corners)")
    return path


# --- overlay sheet ------------------------------------------------------------------------------------------------

def sheet_picks(face_set: FaceSet, count: int) -> list[int]:
    """`count` faces spread evenly over the set, ordered by ground-truth |yaw| where the set has poses."""
    order = list(range(len(face_set.faces)))
    if all(f.pose is not None for f in face_set.faces):
        order.sort(key=lambda k: abs(face_set.faces[k].pose[1]))
    count = min(count, len(order))
    return [order[int(i)] for i in np.linspace(0, len(order) - 1, count).round()] if count else []


def face_tile(image: np.ndarray, gt: np.ndarray, points: np.ndarray | None, title: str,
              contours: dict[str, list[int]]) -> np.ndarray:
    """The square around the ground-truth box (TILE_CONTEXT box sides) at TILE px, `points` drawn on it."""
    lo, hi = gt.min(0), gt.max(0)
    side = float((hi - lo).max()) * TILE_CONTEXT
    origin, s = (lo + hi) / 2 - side / 2, TILE / side
    # Corner-origin p_tile = s (p - origin); cv2 puts pixel centres at integers, hence the half-pixel terms.
    M = np.array([[s, 0, -s * origin[0] + 0.5 * s - 0.5], [0, s, -s * origin[1] + 0.5 * s - 0.5]])
    tile = cv2.warpAffine(image, M, (TILE, TILE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return panel(tile, None if points is None else (points - origin) * s, title, contours)


def overlay_sheet(sets: list[tuple[FaceSet, list[np.ndarray]]], methods: dict[str, list[Method]],
                  predictions: dict[str, dict[str, list[list[dict[str, Any]]]]],
                  scores: dict[str, dict[str, list[FaceScore]]], path: Path) -> Path | None:
    """One row block per face: ground truth, then each method's kept face (its NME_box in the title)."""
    from core.layouts import load_layout

    from bench.realfaces.scoring import match

    contours = load_layout("ibug68").contours
    tiles, per_face = [], 0
    for face_set, images in sets:
        for k in sheet_picks(face_set, SHEET_FACES.get(face_set.key, 4)):
            face = face_set.faces[k]
            yaw = f" yaw {face.pose[1]:+.0f}" if face.pose is not None else ""
            row = [face_tile(images[k], face.gt, face.gt, f"GT {face.name}{yaw}", contours)]
            for m in methods[face_set.key]:
                best = match(predictions[face_set.key][m.key][k], face.gt)
                points = np.asarray(best["landmarks_2d"], np.float64) if best else None
                short = m.label.split(" (")[0].split(" ")[0]
                nme_box = scores[face_set.key][m.key][k].nme_box
                # A miss (no face, or none near the ground truth) reads "<method> (no face)" (panel's suffix).
                row.append(face_tile(images[k], face.gt, points, f"{short} {fmt(nme_box, 3)}" if best else short,
                                     contours))
            tiles += row
            per_face = len(row)
    if not tiles:
        return None
    columns = per_face * (2 if len(tiles) > per_face else 1)
    write_image(path, contact_sheet(tiles, columns=columns, tile_size=TILE))
    log.info("wrote %s (%d faces; gitignored)", path, len(tiles) // per_face)
    write_text(path.parent / ".gitignore", f"# research-only photographs (../shared/realfaces): never commit\n"
                                           f"{path.name}\n")
    return path


# --- markdown ---------------------------------------------------------------------------------------------------

def section(command: str, models: list[Path], sets: list[FaceSet], methods: dict[str, list[Method]],
            summaries: dict[str, dict[str, dict[str, Any]]], versions: dict[str, str] | None, rel: str,
            ceds: dict[str, Path], overlay: Path | None) -> list[str]:
    """The report's section, with figures linked as `rel/<name>` (rel: the output folder seen from the file)."""
    import onnxruntime

    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    peers = (f"; peers env: mediapipe {versions.get('mediapipe')}, dlib {versions.get('dlib')}" if versions
             else "; **peers not available** (.venv-peers missing or failed: `bash scripts/setup_peers.sh`)")
    L = [SECTION_TITLE, "",
         f"One run of `{command}` ({stamp}; models " + ", ".join(f"`{p}`" for p in models)
         + f"; onnxruntime {onnxruntime.__version__}{peers}). Faces read in place from `../shared/realfaces` "
         "(research only). Protocol, that of `../shared/tools/realface_check.py` "
         "(`tests/test_bench_realfaces.py` checks this scorer against its `score()`): 68 iBUG points against the "
         "`.pts` annotation; a face is *detected* when the centre of its predicted 68-point box lies within 0.5 "
         "sqrt(w h) of the ground-truth box's centre; NME_box = mean point error / sqrt(w h) of the ground-truth "
         "box and NME_io = the same over the outer eye corners' (36, 45) distance, both over detected faces; "
         "FR@0.1 = share of *all* images with NME_io > 0.1, a miss counting as a failure; AUC@0.1 and the CED of "
         "NME_io over all images (a miss = inf); head pose MAE = mean of |pitch|, |yaw|, |roll| errors (deg) "
         "against `Pose_Para`, over detected faces with a pose (ours: its R; MediaPipe: the rotation of its "
         "facial transformation matrix; dlib: none); yaw bins by the ground truth's |yaw|. Definitions and set-up: "
         "[bench/README.md](../bench/README.md).", ""]
    for face_set in sets:
        n = len(face_set.faces)
        what = ("Every other image of AFLW2000-3D, against the LS3D-W manual re-annotation (300-W's point definitions, "
                "3D-consistent jaw). Our layout `ibug68_ls3d` is LS3D-W's points on the face, fitted to this set's "
                "labels (assets/layouts/README.md), so each photo is scored with the layout fitted on the other "
                "half of the set only (cross-fitting, bench/realfaces/inputs.py)"
                if face_set.key == "aflw2000_dev" else
                "The held-out 10% of `300w_train` (`training.data.make_dataset(\"300w:root=...,val_fraction=0.1\", "
                "split=\"val\")`, all HELEN), 300-W annotation (jaw on the silhouette). dlib's 68-point predictor was "
                "trained on iBUG 300-W, whose training images include these HELEN ones: its figures here are on "
                "its own training data")
        L += [f"### {face_set.title} ({n} faces; ours in `{face_set.semantics}` semantics, `{face_set.layout}` "
              "layout)", "",
              f"{what}. MediaPipe and dlib have no semantics option.", ""]
        L += set_tables(face_set, methods[face_set.key], summaries[face_set.key])
        if face_set.key in ceds:
            L += [f"![CED {face_set.title}]({rel}/{ceds[face_set.key].name})", ""]
    if overlay is not None:
        L += [f"Overlay sheet: `{overlay.name}` in the output folder, **not committed** (it shows the research-only "
              "photographs; the folder's `.gitignore` keeps it out). Per face: the ground truth, then each method "
              f"with its NME_box (\"no face\": not detected), {TILE} px tiles of {TILE_CONTEXT:g} ground-truth "
              "box sides; "
              + ", ".join(f"{len(sheet_picks(s, SHEET_FACES.get(s.key, 4)))} faces of {s.title}" for s in sets)
              + " spread evenly (AFLW2000 ordered by |yaw|).", ""]
    return L


def _bounds(lines: list[str], title: str = SECTION_TITLE) -> tuple[int, int] | None:
    """[start, end) of the section in a markdown file's lines: its title up to the next "## " heading."""
    if title not in lines:
        return None
    start = lines.index(title)
    return start, next((k for k in range(start + 1, len(lines)) if lines[k].startswith("## ")), len(lines))


def update_section(doc: Path, lines: list[str]) -> None:
    """Put the section into a markdown file: in place of its earlier version, else at the end."""
    old = doc.read_text().splitlines() if doc.exists() else []
    bounds = _bounds(old)
    if bounds:
        new = old[:bounds[0]] + lines + old[bounds[1]:]
    else:
        new = old + ([""] if old and old[-1] else []) + lines
    write_text(doc, "\n".join(new).rstrip("\n") + "\n")


def kept_section(doc: Path, title: str = SECTION_TITLE) -> list[str]:
    """The section `title` (this report's by default) as a markdown file holds it now (empty when it has none): for
    commands that rewrite the file."""
    old = doc.read_text().splitlines() if doc.exists() else []
    bounds = _bounds(old, title)
    return old[bounds[0]:bounds[1]] if bounds else []


def write_results(path: Path, sets: list[FaceSet], methods: dict[str, list[Method]],
                  summaries: dict[str, dict[str, dict[str, Any]]], scores: dict[str, dict[str, list[FaceScore]]]
                  ) -> Path:
    """results.json: per set and method, the summary and the per-face scores and predicted pose (no image data,
    no annotation)."""
    def number(x: Any) -> Any:
        return None if x is None or not np.isfinite(x) else round(float(x), 6)

    out: dict[str, Any] = {}
    for face_set in sets:
        out[face_set.key] = {}
        for m in methods[face_set.key]:
            per_face = [{"name": f.name, "detected": s.detected, "nme_box": number(s.nme_box),
                         "nme_io": number(s.nme_io),
                         "pose_pred": None if s.pose_pred is None else np.round(s.pose_pred, 3).tolist()}
                        for f, s in zip(face_set.faces, scores[face_set.key][m.key])]
            out[face_set.key][m.key] = {"label": m.label, "semantics": m.semantics,
                                        "summary": summaries[face_set.key][m.key], "faces": per_face}
    return write_text(path, json.dumps(out, separators=(",", ":")))

