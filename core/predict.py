"""Landmarks for images, folders of images and videos: the command-line contract of ../shared/conventions.md.

    python -m core.predict INPUT [INPUT ...] [--layout ibug68] [--semantics NAME] [--model PATH] [--json OUT.json]
                           [--overlay DIR] [--threshold 0.5] [--threads N] [--sequence] [--fps FPS] [--mirror]

INPUT is an image, a video file or a folder of images (each image on its own; with --sequence, a folder is one
clip, tracked like a video). `--layout` is a built-in layout name or the path of a layout .json file. A clip is
tracked frame to frame (`FaceTracker`) and then smoothed as a whole, forwards and backwards (`smooth_clip`).

The JSON file (`--json -` writes to stdout) is a list with one entry per image

    {"path", "width", "height", "faces": [{"confidence", "landmarks_2d", "visibility", "landmarks_3d", "K", "R", "t"}]}

and, per video, {"path", "width", "height", "fps", "frames": [{"frame": i, "faces": [...]}, ...]}. `"faces"` is
empty when no face is found (confidence below --threshold). A model without a 3D head writes null for
landmarks_3d, K, R and t. Exit status: 0 when every input was read, 1 when some input could not be read (reported
on stderr, the others still processed), 2 when the model, layout or semantics cannot be used.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from core import geometry
from core.layouts import Layout, LayoutError, load_layout
from core.overlay import draw_landmarks
from core.paths import input_file_problem
from core.runtime.images import ImageReadError, is_image_path, read_image
from core.runtime.session import FaceResult, LandmarkModel, ModelLoadError, ModelNotFoundError
from core.runtime.tracker import FaceTracker, smooth_clip
from core.runtime.video import ImageSequence, VideoFile, VideoReadError, is_video_path, list_images

log = logging.getLogger("core.predict")

EXIT_OK, EXIT_UNREADABLE, EXIT_SETUP = 0, 1, 2


def faces_json(face: FaceResult) -> list[dict[str, Any]]:
    return [face.to_json()] if face.found else []


def describe(face: FaceResult, num_points: int) -> str:
    if not face.found:
        return f"no face (confidence {face.confidence:.2f})"
    text = f"1 face (confidence {face.confidence:.2f}), {num_points} landmarks"
    if face.R is not None:
        yaw, pitch, roll = geometry.rotation_to_pose(face.R)
        text += (f", yaw {yaw:.0f} pitch {pitch:.0f} roll {roll:.0f} deg, "
                 f"focal {face.K[0, 0]:.0f} px, distance {float(np.linalg.norm(face.t)):.0f} cm")
    return text


class Runner:
    """Runs one model with one layout over inputs, collecting JSON entries and the exit status."""

    def __init__(self, model: LandmarkModel, layout: Layout, semantics: str, overlay_dir: Path | None,
                 sequence: bool, fps: float | None, echo: bool = True, mirror: bool = False) -> None:
        """`echo`: print a one-line summary per input on stdout; `mirror`: LandmarkModel.predict's."""
        self.model = model
        self.layout = layout
        self.semantics = semantics
        self.overlay_dir = overlay_dir
        self.sequence = sequence
        self.fps = fps
        self.echo = echo
        self.mirror = mirror
        self.entries: list[dict[str, Any]] = []
        self.failed = 0
        self._overlay_names: set[str] = set()

    def say(self, message: str) -> None:
        if self.echo:
            print(message)

    def error(self, message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        self.failed += 1

    def run(self, inputs: list[str]) -> None:
        for text in inputs:
            path = Path(text)
            if path.is_dir():
                images = list_images(path)
                if not images:
                    self.error(f"{path}: folder contains no image files")
                elif self.sequence:
                    self.clip(path, lambda: ImageSequence(images, self.fps, name=path))
                else:
                    for image in images:
                        self.image(image)
            elif not path.exists():
                self.error(f"{path}: {input_file_problem(path)}")  # missing, a broken link or a link loop
            elif is_video_path(path):
                self.clip(path, lambda: VideoFile(path))
            elif is_image_path(path):
                self.image(path)
            else:
                self.unknown(path)

    def unknown(self, path: Path) -> None:
        """A file whose extension says neither image nor video: try both."""
        try:
            image = read_image(path)
        except ImageReadError:
            self.clip(path, lambda: VideoFile(path), what="not a readable image or video")
            return
        self.image(path, image)

    def image(self, path: Path, image: np.ndarray | None = None) -> None:
        try:
            image = read_image(path) if image is None else image
        except ImageReadError as exc:
            self.error(str(exc))
            return
        face = self.model.predict(image, self.layout, self.semantics, mirror=self.mirror)
        h, w = image.shape[:2]
        self.entries.append({"path": str(path), "width": w, "height": h, "faces": faces_json(face)})
        self.say(f"{path}: {w}x{h}, {describe(face, len(self.layout))}")
        self.overlay(path.stem, image, face)

    def clip(self, path: Path, opener: Callable[[], VideoFile | ImageSequence], what: str | None = None) -> None:
        try:
            frames = opener()
        except (VideoReadError, ImageReadError) as exc:
            self.error(f"cannot read {path}: {what}" if what else str(exc))
            return
        tracker = FaceTracker(self.model, self.layout, self.semantics, fps=frames.fps or self.fps or 30.0,
                              mirror=self.mirror)
        entry: dict[str, Any] = {"path": str(path), "width": frames.width, "height": frames.height,
                                 "fps": frames.fps or self.fps, "frames": []}
        raw: list[FaceResult] = []
        try:
            for frame in frames:
                tracker.update(frame)
                raw.append(tracker.raw_face)
        except ImageReadError as exc:
            self.error(f"{path}: frame {len(raw)}: {exc}")
        # The whole clip at hand: smoothed forwards and backwards, without the tracker's lag (smooth_clip).
        faces = smooth_clip(raw, [tracker.timestamp(k) for k in range(len(raw))]) if raw else []
        found = sum(face.found for face in faces)
        entry["frames"] = [{"frame": index, "faces": faces_json(face)} for index, face in enumerate(faces)]
        if self.overlay_dir is not None and faces:
            try:  # a second read: the frames are not kept in memory
                for index, (face, frame) in enumerate(zip(faces, opener())):
                    self.overlay(f"{path.stem}_{index:06d}", frame, face, subdir=path.stem)
            except (VideoReadError, ImageReadError) as exc:
                self.error(f"{path}: overlays: {exc}")
        self.entries.append(entry)
        count = len(entry["frames"])
        self.say(f"{path}: {frames.width}x{frames.height}, {count} frames at {entry['fps'] or '?'} fps, "
                 f"a face in {found}")

    def overlay(self, name: str, image: np.ndarray, face: FaceResult, subdir: str = "") -> None:
        if self.overlay_dir is None:
            return
        folder = self.overlay_dir / subdir if subdir else self.overlay_dir
        folder.mkdir(parents=True, exist_ok=True)
        stem, n = name, 1
        while str(folder / stem) in self._overlay_names:  # two inputs with the same name from different folders
            n += 1
            stem = f"{name}_{n}"
        self._overlay_names.add(str(folder / stem))
        drawn = image
        if face.found:
            drawn = draw_landmarks(image, face.landmarks_2d, face.visibility, self.layout.contours)
        cv2.imwrite(str(folder / f"{stem}.png"), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m core.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image, video or folder of images")
    parser.add_argument("--layout", default="ibug68", help="built-in layout name or layout .json path")
    parser.add_argument("--semantics", default="canonical", help="annotation semantics (dataset style)")
    parser.add_argument("--model", default=None, help="ONNX model (default: assets/models/default.onnx)")
    parser.add_argument("--json", default=None, metavar="OUT.json", help="write results as JSON ('-': stdout)")
    parser.add_argument("--overlay", default=None, metavar="DIR", help="write PNGs with the landmarks drawn")
    parser.add_argument("--threshold", type=float, default=0.5, help="face confidence threshold (default 0.5)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all cores)")
    parser.add_argument("--sequence", action="store_true", help="track each folder as one clip, like a video")
    parser.add_argument("--fps", type=float, default=None, help="frame rate of image sequences (default 30)")
    parser.add_argument("--mirror", action="store_true",
                        help="also run each face crop mirrored and average: more accurate and steadier, 2x slower")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        model = LandmarkModel(args.model, threads=args.threads, threshold=args.threshold)
        layout = load_layout(args.layout)
        model.style_id(args.semantics)
    except (ModelNotFoundError, ModelLoadError, LayoutError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    runner = Runner(model, layout, args.semantics, Path(args.overlay) if args.overlay else None, args.sequence,
                    args.fps, echo=not args.json, mirror=args.mirror)
    runner.run(args.inputs)
    if args.json:
        text = json.dumps(runner.entries)
        if args.json == "-":
            print(text)
        else:
            out = Path(args.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
            print(f"wrote {len(runner.entries)} result(s) to {out}")
    if runner.failed:
        print(f"{runner.failed} input(s) could not be read", file=sys.stderr)
    return EXIT_UNREADABLE if runner.failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
