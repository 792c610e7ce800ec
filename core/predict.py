"""Landmarks for images, folders of images and videos: the command-line contract of ../shared/conventions.md.

    python -m core.predict INPUT [INPUT ...] [--layout ibug68] [--semantics NAME] [--model NAME_OR_PATH] [--json OUT.json]
                           [--overlay DIR] [--overwrite] [--threshold 0.5] [--threads N] [--sequence] [--fps FPS]
                           [--mirror | --no-mirror]

INPUT is an image, a video file or a folder of images (each image on its own; with --sequence, a folder is one
clip, tracked like a video). `--layout` is a built-in layout name or the path of a layout .json file. A clip is
tracked frame to frame (`FaceTracker`) and then smoothed as a whole, forwards and backwards (`smooth_clip`).

The JSON file (`--json -` writes to stdout) is a list with one entry per input (per image of a folder)

    {"path", "width", "height", "faces": [{"confidence", "landmarks_2d", "visibility", "landmarks_3d", "K", "R", "t"}]}

per video {"path", "width", "height", "fps", "complete", "frames": [{"frame": i, "faces": [...]}, ...]}, and per
input that could not be read {"path", "error"}. `"faces"` is empty when no face is found (confidence below
--threshold). A video that could not be decoded to its end has "complete": false, "frames_read" and
"frames_expected". A model without a 3D head writes null for landmarks_3d, K, R and t.

Outputs (--json, --overlay) are checked before any input is read (core.outputs): an existing file is refused
unless --overwrite, an input is never written over, and files are written under a temporary name and renamed.
Overlays of two inputs with the same name get `_2`, `_3`, ...

Exit status: 0 when every input was read whole, 1 when some input could not be read whole or an output file could
not be written (reported on stderr, the others still processed), 2 when the arguments, model, layout, semantics
or an output path cannot be used.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import geometry
from .layouts import Layout, LayoutError, load_layout
from .outputs import OutputError, OutputPlan, write_image, write_text
from .overlay import draw_landmarks
from .paths import input_file_problem
from .runtime.images import ImageReadError, is_image_path, read_image
from .runtime.session import FaceResult, LandmarkModel, ModelLoadError, ModelNotFoundError
from .runtime.tracker import FaceTracker, smooth_clip
from .runtime.video import ImageSequence, VideoFile, VideoReadError, is_video_path, list_images

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


@dataclass
class Item:
    """One input, one JSON entry: an image, a video or image sequence ("clip"), a file of unknown kind, or an
    input that cannot be read at all ("error", with `problem`). `overlay` is its planned overlay PNG (an image)
    or folder (a clip's frames)."""

    path: Path
    kind: str
    problem: str = ""
    images: list[Path] = field(default_factory=list)
    overlay: Path | None = None
    overlay_frames: Path | None = None


def expand(inputs: list[str], sequence: bool) -> list[Item]:
    """The run's items, in order: a folder is one item per image (or one clip with `sequence`)."""
    items: list[Item] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            images = list_images(path)
            if not images:
                items.append(Item(path, "error", f"{path}: folder contains no image files"))
            elif sequence:
                items.append(Item(path, "clip", images=images))
            else:
                items += [Item(image, "image") for image in images]
        elif not path.exists():  # missing, a broken link or a link loop
            items.append(Item(path, "error", f"{path}: {input_file_problem(path)}"))
        elif is_video_path(path):
            items.append(Item(path, "clip"))
        else:
            items.append(Item(path, "image" if is_image_path(path) else "unknown"))
    return items


# A still image is also run mirrored (each crop, the two averaged) unless --no-mirror: one more run per image
# for a measurably more precise result (docs/benchmarks.md). Clips are tracked without it unless --mirror: there
# the cost is per frame, and the tracker's smoothing already steadies the points.
STILL_MIRROR = True


class Runner:
    """Runs one model with one layout over inputs, collecting one JSON entry per input and the exit status."""

    def __init__(self, model: LandmarkModel, layout: Layout, semantics: str, overlay_dir: Path | None,
                 sequence: bool, fps: float | None, echo: bool = True, mirror: bool | None = None) -> None:
        """`echo`: print a one-line summary per input on stdout; `mirror`: LandmarkModel.predict's and
        FaceTracker's, None for the defaults (STILL_MIRROR for images, off for clips)."""
        self.model = model
        self.layout = layout
        self.semantics = semantics
        self.overlay_dir = overlay_dir
        self.sequence = sequence
        self.fps = fps
        self.echo = echo
        self.mirror = mirror
        self.entries: list[dict[str, Any]] = []
        self.failed = 0           # inputs not read whole
        self.write_failures = 0   # overlay files that could not be written

    def say(self, message: str) -> None:
        if self.echo:
            print(message)

    def error(self, message: str) -> None:
        print(f"error: {message}", file=sys.stderr)

    def fail(self, entry: dict[str, Any], message: str) -> None:
        """An input not read whole: reported, counted, its entry kept (with "error" when nothing was read)."""
        self.error(message)
        self.failed += 1
        self.entries.append(entry)

    def prepare(self, inputs: list[str], outputs: OutputPlan) -> list[Item]:
        """The items of `inputs`, registered as inputs of `outputs`, with their overlays reserved in it (an
        OutputError before any input is read)."""
        items = expand(inputs, self.sequence)
        for item in items:
            for path in [item.path, *item.images]:
                outputs.add_input(path)
        if self.overlay_dir is not None:
            outputs.folder(self.overlay_dir, "--overlay", own=False)
            for item in items:
                if item.kind in ("image", "unknown"):
                    item.overlay = outputs.file(self.overlay_dir / f"{item.path.stem}.png", "--overlay", unique=True)
                if item.kind in ("clip", "unknown"):
                    item.overlay_frames = outputs.folder(self.overlay_dir / item.path.stem, "--overlay", unique=True)
        return items

    def run(self, items: list[Item]) -> None:
        for item in items:
            if item.kind == "error":
                self.fail({"path": str(item.path), "error": item.problem}, item.problem)
            elif item.kind == "image":
                self.image(item.path, overlay=item.overlay)
            elif item.kind == "unknown":
                self.unknown(item)
            elif item.images:
                images = item.images
                self.clip(item.path, lambda: ImageSequence(images, self.fps, name=item.path), item.overlay_frames)
            else:
                self.clip(item.path, lambda: VideoFile(item.path), item.overlay_frames)

    def unknown(self, item: Item) -> None:
        """A file whose extension says neither image nor video: try both."""
        try:
            image = read_image(item.path)
        except ImageReadError:
            self.clip(item.path, lambda: VideoFile(item.path), item.overlay_frames,
                      what="not a readable image or video")
            return
        self.image(item.path, image, item.overlay)

    def image(self, path: Path, image: np.ndarray | None = None, overlay: Path | None = None) -> None:
        try:
            image = read_image(path) if image is None else image
        except ImageReadError as exc:
            self.fail({"path": str(path), "error": str(exc)}, str(exc))
            return
        mirror = STILL_MIRROR if self.mirror is None else self.mirror
        face = self.model.predict(image, self.layout, self.semantics, mirror=mirror)
        h, w = image.shape[:2]
        self.entries.append({"path": str(path), "width": w, "height": h, "faces": faces_json(face)})
        self.say(f"{path}: {w}x{h}, {describe(face, len(self.layout))}")
        if overlay is not None:
            self.overlay(overlay, image, face)

    def clip(self, path: Path, opener: Callable[[], VideoFile | ImageSequence], overlays: Path | None = None,
             what: str | None = None) -> None:
        try:
            frames = opener()
        except (VideoReadError, ImageReadError) as exc:
            message = f"cannot read {path}: {what}" if what else str(exc)
            self.fail({"path": str(path), "error": message}, message)
            return
        tracker = FaceTracker(self.model, self.layout, self.semantics, fps=frames.fps or self.fps or 30.0,
                              mirror=bool(self.mirror))
        entry: dict[str, Any] = {"path": str(path), "width": frames.width, "height": frames.height,
                                 "fps": frames.fps or self.fps, "complete": True, "frames": []}
        raw: list[FaceResult] = []
        problem = ""
        try:
            for frame in frames:
                tracker.update(frame)
                raw.append(tracker.raw_face)
        except ImageReadError as exc:
            problem = f"{path}: frame {len(raw)}: {exc}"
        expected = frames.frame_count
        if not problem and expected and len(raw) < expected:
            problem = (f"{path}: only {len(raw)} of the {expected} frames could be decoded (a truncated or damaged "
                       f"file); its entry has \"complete\": false")
        # The whole clip at hand: smoothed forwards and backwards, without the tracker's lag (smooth_clip).
        faces = smooth_clip(raw, [tracker.timestamp(k) for k in range(len(raw))]) if raw else []
        found = sum(face.found for face in faces)
        entry["frames"] = [{"frame": index, "faces": faces_json(face)} for index, face in enumerate(faces)]
        if overlays is not None and faces:
            try:  # a second read: the frames are not kept in memory
                for index, (face, frame) in enumerate(zip(faces, opener())):
                    if not self.overlay(overlays / f"{path.stem}_{index:06d}.png", frame, face):
                        break  # one message per clip: the next frames would fail the same way
            except (VideoReadError, ImageReadError) as exc:
                self.error(f"{path}: overlays: {exc}")
        self.say(f"{path}: {frames.width}x{frames.height}, {len(faces)} frames at {entry['fps'] or '?'} fps, "
                 f"a face in {found}")
        if problem:
            entry.update(complete=False, frames_read=len(raw), frames_expected=expected)
            self.fail(entry, problem)
        else:
            self.entries.append(entry)

    def overlay(self, out: Path, image: np.ndarray, face: FaceResult) -> bool:
        """Write `image` with the face's landmarks drawn to `out` (planned by `prepare`); False after an error."""
        drawn = image
        if face.found:
            drawn = draw_landmarks(image, face.landmarks_2d, face.visibility, self.layout.contours)
        try:
            write_image(out, drawn)
        except OutputError as exc:
            self.error(str(exc))
            self.write_failures += 1
            return False
        return True


def finite_float(text: str) -> float:
    """argparse type: a number that is not NaN or infinite (a NaN threshold compares false with every score)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m core.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image, video or folder of images")
    parser.add_argument("--layout", default="ibug68", help="built-in layout name or layout .json path")
    parser.add_argument("--semantics", default="canonical", help="annotation semantics (dataset style)")
    parser.add_argument("--model", default=None, metavar="NAME_OR_PATH",
                        help="a bundled model by name (default: trained with research-only data, see its card; "
                             "permissive: synthetic and CC BY data only) or an ONNX file (default: default)")
    parser.add_argument("--json", default=None, metavar="OUT.json", help="write results as JSON ('-': stdout)")
    parser.add_argument("--overlay", default=None, metavar="DIR", help="write PNGs with the landmarks drawn")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing output files (never an input); without it they are refused")
    parser.add_argument("--threshold", type=finite_float, default=0.5,
                        help="face confidence threshold (default 0.5)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all cores)")
    parser.add_argument("--sequence", action="store_true", help="track each folder as one clip, like a video")
    parser.add_argument("--fps", type=finite_float, default=None,
                        help="frame rate of image sequences (default 30)")
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                        help="also run each face crop mirrored and average: more accurate and steadier, one more "
                             "run per crop (default: on for images, off for videos and --sequence; --no-mirror "
                             "turns it off)")
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
    # Every output is checked before the first input is read: a bad path costs nothing and loses no results.
    outputs = OutputPlan([model.path, *([args.layout] if Path(args.layout).is_file() else [])], args.overwrite)
    try:
        items = runner.prepare(args.inputs, outputs)
        json_path = outputs.file(args.json, "--json") if args.json and args.json != "-" else None
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    runner.run(items)
    if args.json == "-":
        print(json.dumps(runner.entries))
    elif json_path is not None:
        try:
            write_text(json_path, json.dumps(runner.entries))
            print(f"wrote {len(runner.entries)} result(s) to {json_path}")
        except OutputError as exc:
            runner.error(str(exc))
            runner.write_failures += 1
    if runner.failed:
        print(f"{runner.failed} input(s) could not be read whole", file=sys.stderr)
    if runner.write_failures:
        print(f"{runner.write_failures} output file(s) could not be written", file=sys.stderr)
    return EXIT_UNREADABLE if runner.failed or runner.write_failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
