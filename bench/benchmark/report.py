"""Report of `python -m bench.benchmark`: the pictures (CED plot, example and photo overlays, drawn with
`panel`) and the markdown document, one section per part of the benchmark after a header and a factual summary
computed from the numbers. The document replaces the file it is written to but keeps that file's sections from
other commands (bench.realfaces, bench.long_takes). Every file is written atomically (core.outputs).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.benchmark.inputs import (DATA_COMMANDS, SPEED_FRAMES, SPEED_HD_HW, SPEED_HW, SPEED_WARMUP, WARP_FRAMES,
                                    Inputs, SynthSet, speed_size)
from bench.benchmark.runs import LABELS, PEERS, SPEED_ROUNDS, OursRun, PhotoRun, peer_points
from bench.benchmark.scoring import THRESHOLD, Stability, SynthScores
from core.outputs import atomic_path, write_image, write_text
from core.overlay import draw_landmarks
from core.paths import REPO_DIR
from training import metrics

Speed = dict[str, dict[str, float]]  # photo column -> method key -> ms per frame (or share of frames)


def pct(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def num(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


# --- pictures -------------------------------------------------------------------------------------------------------

def panel(image: np.ndarray, points: np.ndarray | None, title: str, contours: dict[str, list[int]]) -> np.ndarray:
    """The image with the points drawn (" (no face)" added to the title when there are none) and the title."""
    if points is not None and np.isfinite(points).all():
        out = draw_landmarks(image, points, contours=contours)
    else:
        out = image.copy()
        title += " (no face)"
    scale = max(0.5, image.shape[1] / 700)
    cv2.putText(out, title, (8, int(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(out, title, (8, int(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 0), 1, cv2.LINE_AA)
    return out


def synth_ced(acc: dict[str, dict[str, Any]], path: Path, n: int) -> Path:
    """The CED plot of section 1, misses counted as failures."""
    with atomic_path(path) as tmp:
        metrics.plot_ced({LABELS[k]: v["nmes_all"] for k, v in acc.items()}, tmp, THRESHOLD,
                         title=f"Synthetic test set (n={n}), misses = failures")
    return path


def synth_examples(path: Path, synth: SynthSet, ours: OursRun, peers: dict[str, Any] | None,
                   contours: dict[str, list[int]]) -> Path:
    """The first four test images, one row each: ours, MediaPipe, dlib, the ground truth."""
    examples = []
    for k in range(min(4, len(synth.paths))):
        row = [panel(synth.images[k], ours.points[k], "ours", contours)]
        for m in PEERS:
            points = peer_points(peers, "synth", m)
            if points is not None:
                row.append(panel(synth.images[k], points[k], m, contours))
        row.append(panel(synth.images[k], synth.gt[k], "ground truth", contours))
        examples.append(np.hstack(row))
    return write_image(path, np.vstack(examples))


def photo_picture(path: Path, name: str, image: np.ndarray, run: PhotoRun, peers: dict[str, Any] | None,
                  contours: dict[str, list[int]]) -> Path:
    """One real photo side by side: ours (with its confidence), then each peer that ran."""
    row = [panel(image, run.points, f"ours (conf {run.face.confidence:.2f})", contours)]
    for m in PEERS:
        points = peer_points(peers, f"photo_{name}", m)
        if points is not None:
            row.append(panel(image, points[0], m, contours))
    return write_image(path, np.hstack(row))


# --- the markdown document --------------------------------------------------------------------------------------------

def header(command: str, model: Any, peers: dict[str, Any] | None) -> list[str]:
    import onnxruntime

    versions = peers["versions"] if peers else {}
    return ["# Benchmarks: Infinite Landmarks vs MediaPipe FaceLandmarker and dlib", "",
            f"Every number on this page was produced by one run of `{command}` "
            f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, model "
            f"`{os.path.relpath(model.path, REPO_DIR)}`).",
            "Definitions, caveats and the 478->68 MediaPipe mapping: [bench/README.md](../bench/README.md).", "",
            "Data (generated, not in the repo; each command gives the same images on every machine): "
            + "; ".join(f"`{c}`" for c in DATA_COMMANDS) + ".", "",
            f"Versions: onnxruntime {onnxruntime.__version__}, numpy {np.__version__}, OpenCV {cv2.__version__}"
            + (f"; peers env: mediapipe {versions.get('mediapipe')}, dlib {versions.get('dlib')}" if peers else
               "; **peers not available** (.venv-peers missing or failed): only our model is reported") + ".", ""]


def summary(acc: dict[str, dict[str, Any]], speed: Speed) -> list[str]:
    """A factual summary computed from the numbers below (no hand-written claims that a later run could falsify)."""
    best = max(acc, key=lambda k: acc[k]["auc_all"])
    L = ["## Summary", "",
         "- Synthetic test set, AUC@0.1 with misses as failures: " + ", ".join(
             f"{LABELS[k]} {num(a['auc_all'], 3)}" for k, a in acc.items()) + f"; best: {LABELS[best]}.",
         "- Detection rate on it: " + ", ".join(f"{LABELS[k]} {pct(a['detection'], 1)}" for k, a in acc.items())
         + "."]
    # Like for like: tracking footage (ours: FaceTracker; MediaPipe: VIDEO mode), and one image from scratch
    # (ours: predict, searching when its full-frame start is unsure; MediaPipe: IMAGE mode).
    for photo, times in speed.items():
        for ours_key, mp_key, what in (("ours_track", "mediapipe_speed_video", "tracking video"),
                                       ("ours", "mediapipe_speed_image", "single images"),
                                       ("ours_mirror", "mediapipe_speed_image", "single images, mirrored runs")):
            if ours_key in times and mp_key in times:
                verdict = "met" if times[ours_key] <= times[mp_key] else "NOT met"
                h, w = speed_size(photo)
                # A detector that finds no face skips the landmark model: its time is then not the same work.
                found = times.get(f"{mp_key}_found", 1.0), times.get(f"{ours_key}_found", 1.0)
                caveat = (f"; but MediaPipe found the face in {pct(found[0], 0)} of these frames, ours in "
                          f"{pct(found[1], 0)}" if found[0] < 0.9 else "")
                L.append(f"- Speed target (ours at least as fast as MediaPipe FaceLandmarker), {what}, {photo} "
                         f"frames: {verdict} ({num(times[ours_key], 1)} ms vs {num(times[mp_key], 1)} ms per "
                         f"{w}x{h} frame, one core{caveat}).")
    L.append("")
    return L


def accuracy_section(command: str, n: int, scores: SynthScores, peers: dict[str, Any] | None, rel: str,
                     ced_path: Path) -> list[str]:
    acc, acc_common, acc_style = scores.acc, scores.common, scores.style
    L = ["## 1. Accuracy on the held-out synthetic test set", "", f"Command: `{command}`", "",
         f"{n} images of `data/synth_test` (256x256, never used in training), iBUG-68 points, NME normalised by "
         "the inter-ocular (outer eye corner) distance of the ground truth. *Detected*: over the images where the "
         "method found a face. *All*: misses counted as failures (NME = inf). Ground truth `target_ibug68_2d` "
         "is our canonical semantics (projected 3D surface points: the jaw points sit on the jaw, even when hidden).",
         "", "| Method | Detection | NME (detected) | median NME | FR@0.1 (detected) | AUC@0.1 (detected) "
         "| FR@0.1 (all) | AUC@0.1 (all) |", "|---|---|---|---|---|---|---|---|"]
    for k, a in acc.items():
        L.append(f"| {LABELS[k]} | {pct(a['detection'], 1)} | {pct(a['nme'])} | {pct(a['nme_median'])} | "
                 f"{pct(a['fr_detected'], 1)} | {num(a['auc_detected'], 3)} | {pct(a['fr_all'], 1)} | "
                 f"{num(a['auc_all'], 3)} |")
    n_common = next(iter(acc_common.values()))["n"] if acc_common else 0
    if len(acc_common) > 1:
        L += ["", f"On the {n_common} images where every method found a face (same images for all):", "",
              "| Method | NME | median NME | FR@0.1 | AUC@0.1 |", "|---|---|---|---|---|"]
        for k, a in acc_common.items():
            L.append(f"| {LABELS[k]} | {pct(a['nme'])} | {pct(a['nme_median'])} | {pct(a['fr_all'], 1)} | "
                     f"{num(a['auc_all'], 3)} |")
    L += ["", f"![CED]({rel}/{ced_path.name})", ""]
    if acc_style:
        L += ["The peers were trained on 300-W-style annotations, where the jaw follows the visible silhouette. "
              "Against that style of ground truth (`target_style_ibug2d_2d`), with our model asked for the same "
              "style (`semantics=\"ibug2d\"`):", "",
              "| Method | NME (detected) | FR@0.1 (all) | AUC@0.1 (all) |", "|---|---|---|---|"]
        for k, a in acc_style.items():
            name = LABELS[k] + (" (ibug2d semantics)" if k == "ours" else "")
            L.append(f"| {name} | {pct(a['nme'])} | {pct(a['fr_all'], 1)} | {num(a['auc_all'], 3)} |")
        L.append("")
    if scores.ours_extra:
        pose, focal, vis = scores.ours_extra["pose"], scores.ours_extra["focal"], scores.ours_extra["vis"]
        L += [f"Ours, on its detected images: head pose error (geodesic) mean {num(pose['geodesic'].mean(), 2)} deg, "
              f"median {num(np.median(pose['geodesic']), 2)} deg (yaw {num(pose['yaw'].mean(), 2)}, pitch "
              f"{num(pose['pitch'].mean(), 2)}, roll {num(pose['roll'].mean(), 2)} deg mean absolute); "
              f"focal length error mean {num(focal.mean(), 1)}%, median {num(np.median(focal), 1)}%; "
              f"visibility accuracy {pct(vis['accuracy'], 1)} (F1 of visible {num(vis['f1'], 3)}).", ""]
    mp_pose = scores.mp_pose
    if mp_pose:
        e = mp_pose["errors"]
        L += [f"MediaPipe head pose from its facial transformation matrix ({mp_pose['n']} detected images): geodesic "
              f"error mean {num(e['geodesic'].mean(), 2)} deg, median {num(np.median(e['geodesic']), 2)} deg (yaw "
              f"{num(e['yaw'].mean(), 2)}, pitch {num(e['pitch'].mean(), 2)}, roll {num(e['roll'].mean(), 2)}). "
              f"Its canonical axes differ from ours, so one constant rotation (fitted on these images, "
              f"{mp_pose['alignment_deg']:.1f} deg away from the identity) aligns them first; that favours "
              "MediaPipe slightly. MediaPipe gives no focal length (it assumes its own camera) and dlib no pose.", ""]
    elif peers:
        L += ["MediaPipe head pose: not reported (no transformation matrices returned).", ""]
    L += [f"Examples (ours, MediaPipe, dlib, ground truth): ![examples]({rel}/synth_examples.png)", ""]
    return L


def photos_section(command: str, agreement: dict[str, dict[str, float]], photos: list[str], rel: str) -> list[str]:
    L = ["## 2. Real photographs", "", f"Command: `{command}`", "",
         "No ground truth here: the table gives how far apart two methods' 68 points are (NME, normalised by the "
         "inter-ocular distance of the second method's points). Disagreement is not error of either one; the "
         "MediaPipe vs dlib row shows how much two established detectors disagree with each other.", "",
         "| Photo | Pair | NME between them |", "|---|---|---|"]
    for photo, pairs in agreement.items():
        for pair, value in pairs.items():
            L.append(f"| {photo} | {pair} | {pct(value)} |")
    L.append("")
    for photo in photos:
        L += [f"![{photo}]({rel}/photo_{photo}.png)", ""]
    return L


def stability_section(command: str, stability: dict[str, dict[str, Stability]]) -> list[str]:
    L = ["## 3. Temporal stability", "", f"Command: `{command}`", "",
         "Jitter = mean over consecutive frames and points of the frame-to-frame change of (prediction - ground "
         "truth), over the inter-ocular distance (`training.metrics.jitter`, order 1; only frame pairs where both "
         "frames have a face). On the static clips the truth does not move, so this is pure shake; on the moving "
         "clips a lag also counts. Ours runs through `FaceTracker` (the crop around the previous frame's "
         "landmarks as prior) with the default One Euro smoothing, without it, with mirrored runs (each crop also "
         "run mirrored, the two averaged), and without smoothing while tracking but with the whole clip smoothed "
         "afterwards, forwards and backwards (`smooth_clip`: no lag, what the add-on writes; offline, so not like "
         "for like with MediaPipe's VIDEO mode); MediaPipe in VIDEO mode; dlib per frame. *warp_* rows: the real "
         "photos (but the camera photo, which helped choose the tracker's filter) "
         f"animated by a known smooth warp ({WARP_FRAMES} frames, sinusoidal translation of +-6%/4% of the frame "
         "and scale 1 +- 5%, cv2.warpAffine); predictions are mapped back through the inverse warp, so a perfect "
         "detector scores 0, and each method is normalised by its own inter-ocular distance.", "",
         "| Clip | Method | Jitter | Detection | NME |", "|---|---|---|---|---|"]
    for clip, rows in stability.items():
        for k, (jit, det, nme_) in rows.items():
            L.append(f"| {clip} | {LABELS[k]} | {pct(jit, 3)} | {pct(det, 1)} | {pct(nme_)} |")
    L.append("")
    return L


SPEED_ROWS = [
    ("ours", "Ours, single image (`LandmarkModel.predict`: full-frame start + one or two refinements, "
             "the search when unsure)"),
    ("ours_mirror", "Ours, single image, mirrored runs (`predict(..., mirror=True)`)"),
    ("ours_always_search", "Ours, single image, always the search (`predict(..., search=\"always\")`)"),
    ("ours_one_start", "Ours, single image, never the search (`predict(..., search=\"never\")`; can lock "
                       "onto a face-like distractor)"),
    ("ours_track", "Ours, tracker (`FaceTracker.update`, smoothing on)"),
    ("ours_track_mirror", "Ours, tracker, mirrored runs (`FaceTracker(..., mirror=True)`)"),
    ("mediapipe_speed_video", "MediaPipe FaceLandmarker, VIDEO mode (tracking)"),
    ("mediapipe_speed_image", "MediaPipe FaceLandmarker, IMAGE mode (detector every frame)"),
    ("dlib_speed_video", "dlib HOG detector + shape predictor, per frame (no upsampling)")]
FOUND_ROWS = [("ours_found", "Ours, single image: frames with a face"),
              ("ours_track_found", "Ours, tracker: frames with a face"),
              ("mediapipe_speed_video_found", "MediaPipe, VIDEO mode: frames with a face"),
              ("mediapipe_speed_image_found", "MediaPipe, IMAGE mode: frames with a face"),
              ("dlib_speed_video_found", "dlib: frames with a face")]


def speed_section(command: str, speed: Speed, loads: tuple[float, float]) -> list[str]:
    L = ["## 4. Speed", "", f"Command: `{command}`", "",
         f"Whole pipeline, RGB frame already decoded in memory -> 68 landmarks, {SPEED_HW[1]}x{SPEED_HW[0]} frames "
         "(each photo under the smooth warp: the astronaut's face is small, about 60 px wide, beside a round "
         "mission patch; Grace Hopper's is a portrait's, about 100 px), and the same at "
         f"{SPEED_HD_HW[1]}x{SPEED_HD_HW[0]} (`_{SPEED_HD_HW[1]}x{SPEED_HD_HW[0]}` columns: each photo scaled to "
         "the frame's height, so the faces are 1.5 times larger in pixels), median over "
         f"{SPEED_FRAMES} frames after {SPEED_WARMUP} "
         f"warm-up frames, the fastest of {SPEED_ROUNDS} such medians (rounds alternate the peers and ours), "
         "every method pinned to the same single CPU core in the same run (ours with one "
         "onnxruntime thread; MediaPipe's Python API has no thread option, the pinning is what limits it; dlib is "
         f"single-threaded). This machine shares its CPUs with other jobs (1-minute load average {loads[0]:.1f} "
         f"while the peers ran, {loads[1]:.1f} while ours ran), so absolute numbers are noisy; the comparison is "
         "the point. *Searched*: the share of frames on which `predict`'s full-frame start was unsure and it ran its "
         "search (`FaceResult.searched`; `search_priors`: crops over the image, half its side in one batch with the "
         "full frame, larger ones when that face is not sure; 640x480 frames: 1 + 6, then 3; 1280x720: 1 + 3, "
         "then 3). "
         "A method is faster on a frame where it finds no face (MediaPipe's IMAGE mode then skips its landmark "
         "model): the *frames with a face* rows say how much of the work each one did.",
         "",
         "| Method | " + " | ".join(f"{photo}: ms / frame (median)" for photo in speed) + " |",
         "|---|" + "---|" * len(speed)]
    for key, label in SPEED_ROWS:
        if any(key in times for times in speed.values()):
            L.append(f"| {label} | " + " | ".join(num(times.get(key), 1) for times in speed.values()) + " |")
    L.append("| Ours, single image: frames searched | " + " | ".join(pct(times.get("ours_searched"), 0)
                                                                    for times in speed.values()) + " |")
    for key, label in FOUND_ROWS:
        if any(key in times for times in speed.values()):
            L.append(f"| {label} | " + " | ".join(pct(times.get(key), 0) for times in speed.values()) + " |")
    L.append("")
    return L


def report_lines(command: str, model: Any, data: Inputs, scores: SynthScores, agreement: dict[str, dict[str, float]],
                 stability: dict[str, dict[str, Stability]], speed: Speed, loads: tuple[float, float],
                 peers: dict[str, Any] | None, rel: str, ced_path: Path) -> list[str]:
    """The whole document of this command; `rel`: the pictures' folder relative to the document's."""
    return (header(command, model, peers) + summary(scores.acc, speed)
            + accuracy_section(command, len(data.synth.paths), scores, peers, rel, ced_path)
            + photos_section(command, agreement, list(data.photos), rel)
            + stability_section(command, stability) + speed_section(command, speed, loads))


def write_doc(path: Path, lines: list[str]) -> Path:
    """The document into `path`, followed by the sections that the file it replaces holds from other commands."""
    from bench.long_takes import SECTION_TITLE as LONG_TAKES
    from bench.realfaces.report import kept_section

    # The real-face and long-take sections come from their own runs (`python -m bench.realfaces --doc`,
    # `python -m bench.long_takes`): kept as they are.
    return write_text(path, "\n".join(lines + kept_section(path) + kept_section(path, LONG_TAKES)) + "\n")
