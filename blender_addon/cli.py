"""Headless pipeline: track clips, build the rig, retarget, save a .blend. One code path, two ways in:

    blender -b -c infinite_landmarks CLIP [CLIP ...] --output OUT.blend [options]     (add-on enabled)
    blender -b -P <add-on folder>/batch.py -- CLIP [CLIP ...] --output OUT.blend [options]

CLIP is a video file or a folder of images. Each clip is tracked with the TrackJob the Track operator runs, its
results are stored on its MovieClip (and as markers), then the functions behind the Build Rig and Retarget
operators (scene/rig.py, scene/retarget.py) build its rig and, with --target, bake (or with --live, drive) the
character, which is loaded once per run. Progress goes to stdout, errors to stderr. Exit status: 0 when every
clip worked, 1 when a clip failed (unreadable, no face found, rig or retarget error; the others are still
processed and saved), 2 when nothing could start (arguments, model, layout, semantics, target or an output path).
A clip decoded only in part, or an output (--preview, --results, --check) that could not be written, is a
failed clip too (1), though what was tracked is kept and saved.

Every output is planned before the first clip is tracked (core.outputs.OutputPlan): an input (a clip, the
target, the model, a layout file) is never written over, an existing file is refused unless --overwrite (the
.blend open in Blender may always be saved again), and with several clips two clips of the same name get
`_2`, `_3`, ... Files are written under a temporary name and renamed.
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import bpy

from core.runtime.track import (ERR_SEMANTICS, TrackingError, TrackingSettings, TrackJob, load_layout, load_model,
                                open_footage, track)

from . import strings, tracking

COMMAND_ID = "infinite_landmarks"
EXIT_OK, EXIT_FAILED, EXIT_SETUP = 0, 1, 2

_handle = None  # the registered CLI command, kept to unregister it


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of calling sys.exit: Blender must keep running to unregister cleanly."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ArgumentError(message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, file=sys.stderr)
        raise _ArgumentError("") if status else SystemExit(0)


def build_parser(prog: str) -> argparse.ArgumentParser:
    from core.predict import finite_float  # the same number check as core.predict's options

    parser = _Parser(prog=prog, description=strings.CLI_DESCRIPTION,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="+", metavar="CLIP", help=strings.CLI_HELP_CLIPS)
    parser.add_argument("--output", "-o", required=True, metavar="OUT.blend", help=strings.CLI_HELP_OUTPUT)
    parser.add_argument("--target", metavar="FILE.blend", default="", help=strings.CLI_HELP_TARGET)
    parser.add_argument("--target-object", metavar="NAME", default="", help=strings.CLI_HELP_TARGET_OBJECT)
    parser.add_argument("--target-head", metavar="BONE_OR_OBJECT", default="", help=strings.CLI_HELP_TARGET_HEAD)
    parser.add_argument("--live", action="store_true", help=strings.CLI_HELP_LIVE)
    parser.add_argument("--layout", default="ibug68", help=strings.CLI_HELP_LAYOUT)
    parser.add_argument("--semantics", default="canonical", help=strings.CLI_HELP_SEMANTICS)
    parser.add_argument("--model", default="", help=strings.CLI_HELP_MODEL)
    parser.add_argument("--threshold", type=finite_float, default=0.5, help=strings.CLI_HELP_THRESHOLD)
    parser.add_argument("--smoothing", type=finite_float, default=0.5, help=strings.CLI_HELP_SMOOTHING)
    parser.add_argument("--mirror", action="store_true", help=strings.CLI_HELP_MIRROR)
    parser.add_argument("--threads", type=int, default=0, help=strings.CLI_HELP_THREADS)
    parser.add_argument("--no-markers", action="store_true", help=strings.CLI_HELP_NO_MARKERS)
    parser.add_argument("--no-rig", action="store_true", help=strings.CLI_HELP_NO_RIG)
    parser.add_argument("--preview", metavar="OUT.mp4", default="", help=strings.CLI_HELP_PREVIEW)
    parser.add_argument("--results", metavar="OUT.npz", default="", help=strings.CLI_HELP_RESULTS)
    parser.add_argument("--check", metavar="OUT.png", default="", help=strings.CLI_HELP_CHECK)
    parser.add_argument("--overwrite", action="store_true", help=strings.CLI_HELP_OVERWRITE)
    return parser


def _scene() -> bpy.types.Scene:
    """The scene to build in: the context's (with -P), else the file's first (a -c command may run without a
    window, hence without a context scene)."""
    scene = getattr(bpy.context, "scene", None)
    if scene is None:
        scene = bpy.data.scenes[0] if bpy.data.scenes else bpy.data.scenes.new("Scene")
    return scene


def say(message: str) -> None:
    print(message, flush=True)


def error(message: str) -> None:
    print(strings.CLI_ERROR_PREFIX + message, file=sys.stderr, flush=True)


def main(argv: list[str], prog: str = f"blender -b -c {COMMAND_ID}") -> int:
    """Run the pipeline on command-line arguments; returns the exit status (never raises for user errors)."""
    try:
        args = build_parser(prog).parse_args(argv)
    except _ArgumentError as exc:
        if str(exc):
            error(str(exc))
        return EXIT_SETUP
    except SystemExit:  # --help
        return EXIT_OK
    try:
        return _run(args)
    except Exception as exc:  # noqa: BLE001 - a bug still ends with a message and a status, not a traceback only
        traceback.print_exc()
        error(strings.ERR_UNEXPECTED.format(kind=type(exc).__name__, detail=exc))
        return EXIT_FAILED


@dataclass
class _ClipOutputs:
    """The files one clip's run writes, planned before any clip is tracked (None: not asked for)."""

    preview: Path | None = None
    results: Path | None = None
    check: Path | None = None
    written: bool = True  # False once one of them could not be written (after an error message)


def _run(args: argparse.Namespace) -> int:
    from core.outputs import OutputError

    settings = TrackingSettings(layout=args.layout, semantics=args.semantics, model_path=args.model,
                                smoothing=args.smoothing, mirror=args.mirror, threshold=args.threshold,
                                threads=args.threads)
    output = Path(args.output).expanduser().resolve()
    if output.suffix.lower() != ".blend":
        error(strings.CLI_ERR_OUTPUT_SUFFIX.format(path=output))
        return EXIT_SETUP
    if args.target and not Path(args.target).is_file():
        error(strings.CLI_ERR_TARGET_MISSING.format(path=args.target))
        return EXIT_SETUP
    try:
        model = load_model(settings)
        load_layout(settings)
        model.style_id(settings.semantics)
    except TrackingError as exc:
        error(str(exc))
        return EXIT_SETUP
    except ValueError as exc:
        error(ERR_SEMANTICS.format(detail=exc))
        return EXIT_SETUP
    try:  # every output before the first clip: a bad path costs no tracking and overwrites nothing
        clip_outputs = _plan_outputs(args, output, model.path)
    except OutputError as exc:
        error(str(exc))
        return EXIT_SETUP
    target = None
    if args.target or args.target_object:
        try:  # before tracking: a wrong target should not cost a whole clip's tracking first
            target = load_target(args.target, args.target_object)
        except (ValueError, OSError) as exc:
            error(strings.CLI_ERR_TARGET.format(detail=exc))
            return EXIT_SETUP
    say(strings.CLI_MODEL.format(model=model.path))

    failed = 0
    done: list[str] = []
    for clip_arg, planned in zip(args.clips, clip_outputs):
        clip, read_whole = _track_one(Path(clip_arg).expanduser().resolve(), settings, model,
                                      write_markers=not args.no_markers, outputs=planned)
        if clip is not None and not args.no_rig and not _rig_and_retarget(clip, target, args, planned):
            clip = None  # a clip whose rig or retarget failed is not among the saved ones
        failed += clip is None or not read_whole or not planned.written
        if clip is not None:
            done.append(clip.name)

    if not done:
        error(strings.CLI_NOTHING_SAVED.format(path=output))
        return EXIT_FAILED
    try:  # Blender writes the .blend under a temporary name and renames it: no half-written file
        output.parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(output), check_existing=False)
    except (RuntimeError, OSError) as exc:
        error(strings.CLI_ERR_SAVE.format(path=output, detail=str(exc).strip()))
        return EXIT_FAILED
    say(strings.CLI_SAVED.format(path=output, clips=", ".join(done)))
    return EXIT_FAILED if failed else EXIT_OK


def _plan_outputs(args: argparse.Namespace, output: Path, model_path: Path) -> list[_ClipOutputs]:
    """Check every output path of the run (core.outputs.OutputPlan); the per-clip files, one entry per clip."""
    from core.outputs import OutputPlan
    from core.runtime.video import list_images

    inputs: list[str | Path] = [model_path, *[p for p in (args.target, args.layout) if p and Path(p).is_file()]]
    for clip in args.clips:
        path = Path(clip).expanduser()
        inputs += [path, *(list_images(path) if path.is_dir() else [])]
    # The .blend open in Blender is saved again with its data: re-running into the file a rig came from.
    plan = OutputPlan(inputs, overwrite=args.overwrite, replaceable=[bpy.data.filepath] if bpy.data.filepath else [])
    plan.file(output, "--output")

    def per_clip(path: str, what: str, clip: str) -> Path | None:
        return plan.file(_per_clip(path, clip, len(args.clips)), what, unique=True) if path else None

    return [_ClipOutputs(preview=per_clip(args.preview, "--preview", clip),
                         results=per_clip(args.results, "--results", clip),
                         check=per_clip(args.check, "--check", clip) if not args.no_rig else None)
            for clip in args.clips]


def _per_clip(path: str, clip: str, num_clips: int) -> Path:
    """An output path for one clip: as given for a single clip, else with the clip's name appended."""
    out = Path(path).expanduser().resolve()
    return out if num_clips == 1 else out.with_name(f"{out.stem}_{Path(clip).stem}{out.suffix}")


def _track_one(path: Path, settings: TrackingSettings, model, write_markers: bool,  # noqa: ANN001
               outputs: _ClipOutputs) -> tuple[bpy.types.MovieClip | None, bool]:
    """Track one clip into a MovieClip of the current file and write its --results and --preview. Returns the
    clip (None, after an error message, when it failed) and whether it was read whole (a clip decoded only in
    part keeps its results); an output not written sets `outputs.written` to False."""
    from core.outputs import OutputError

    started = time.perf_counter()
    last_print = [started]

    def progress(job: TrackJob) -> None:
        if time.perf_counter() - last_print[0] > 2.0:  # a line every 2 s: readable in a farm log
            say(f"  {job.status()}")
            last_print[0] = time.perf_counter()

    try:
        footage = open_footage(path)  # unreadable footage is reported before a MovieClip is added
        clip = load_movieclip(path)
        if clip is None:
            error(strings.CLI_ERR_CLIP_LOAD.format(path=path))
            return None, False
        say(strings.CLI_TRACKING.format(clip=path, width=footage.width, height=footage.height,
                                        frames=footage.frame_count or "?"))
        results = track(path, settings, first_frame=tracking.clip_first_frame(clip), fps=clip.fps, model=model,
                        progress=progress)
    except TrackingError as exc:
        error(str(exc))
        return None, False
    if results.frames_missing:
        error(strings.CLI_ERR_INCOMPLETE.format(clip=path, read=results.num_frames,
                                                expected=results.frames_expected))
    stored = tracking.store_results(clip, results)
    if write_markers:
        tracking.write_markers(clip, stored)
    try:
        if outputs.results is not None:
            say(strings.CLI_WROTE.format(path=results.save_npz(outputs.results)))
        if outputs.preview is not None:
            say(strings.CLI_WROTE.format(path=tracking.write_preview(results, path, outputs.preview)))
    except (TrackingError, OutputError) as exc:
        error(str(exc))
        outputs.written = False
    say(strings.CLI_TRACKED.format(clip=clip.name, summary=tracking.summary(results),
                                   seconds=time.perf_counter() - started))
    if results.faces_found == 0:
        error(strings.NO_FACE_FOUND.format(clip=path))
        return None, False
    return clip, not results.frames_missing


def load_movieclip(path: Path) -> bpy.types.MovieClip | None:
    """The MovieClip for a video file or image folder (reused if the file already has it)."""
    from core.runtime.video import list_images

    target = path
    if path.is_dir():
        images = list_images(path)
        if not images:
            return None
        target = images[0]  # Blender detects the numbered sequence from its first frame
    for clip in bpy.data.movieclips:
        if Path(bpy.path.abspath(clip.filepath)).resolve() == target.resolve():
            return clip
    try:
        return bpy.data.movieclips.load(str(target))
    except RuntimeError:
        return None


def _rig_and_retarget(clip: bpy.types.MovieClip, target: bpy.types.Object | None, args: argparse.Namespace,
                      outputs: _ClipOutputs) -> bool:
    """Build the clip's rig from its stored results (the Build Rig operator's function), write its --check image
    (a failure sets `outputs.written` to False) and retarget it onto `target` when there is one; False after an
    error message when the rig or the retarget failed."""
    from core.arkit import match_shape_keys
    from core.outputs import OutputError

    from .scene import retarget as scene_retarget
    from .scene import rig as scene_rig

    try:
        rig = scene_rig.build_rig(_scene(), clip, tracking.load_results(clip))
    except ValueError as exc:
        error(strings.CLI_ERR_RIG.format(clip=clip.name, detail=exc))
        return False
    say(strings.CLI_RIG.format(clip=clip.name, head=rig.head.name, camera=rig.camera.name, frames=len(rig.frames)))
    if outputs.check is not None and len(rig.frames):
        from .scene.check import render_check

        middle = int(tracking.scene_to_clip_frame(clip, int(rig.frames[len(rig.frames) // 2])))
        try:  # before the retarget: the check shows the rig alone
            say(strings.CLI_WROTE.format(path=render_check(_scene(), clip, middle, outputs.check)))
        except (OutputError, ValueError) as exc:
            error(str(exc))
            outputs.written = False
    if target is None and not args.target_head:
        return True
    try:
        key = getattr(target.data, "shape_keys", None) if target is not None else None
        mapping = match_shape_keys([k.name for k in key.key_blocks]).mapping if key is not None else {}
        head = bpy.data.objects.get(args.target_head, args.target_head) if args.target_head else None
        report = scene_retarget.retarget(rig, target, mapping, head_target=head, bake=not args.live)
    except ValueError as exc:  # RetargetError is a ValueError
        error(strings.CLI_ERR_RETARGET.format(clip=clip.name, detail=exc))
        return False
    say(f"{clip.name}: {report}")
    return True


def load_target(path: str, object_name: str) -> bpy.types.Object:
    """The character to retarget onto: appended from a .blend (with what it depends on) or found in this file.

    Without a name, the mesh whose shape keys match the most ARKit names is chosen.
    """
    from core.arkit import match_shape_keys

    if path:
        with bpy.data.libraries.load(path, link=False) as (source, dest):
            if object_name and object_name not in source.objects:
                raise ValueError(strings.CLI_ERR_TARGET_OBJECT_IN_FILE.format(name=object_name, path=path))
            dest.objects = [object_name] if object_name else list(source.objects)
        candidates = [obj for obj in dest.objects if obj is not None]
        if object_name:  # appended objects may have been renamed ("Head.001") if the name was taken
            object_name = candidates[0].name if candidates else object_name
        collection = bpy.data.collections.new(strings.CLI_TARGET_COLLECTION.format(name=Path(path).stem))
        _scene().collection.children.link(collection)
        for obj in candidates:
            collection.objects.link(obj)
            for modifier in getattr(obj, "modifiers", ()):  # bring a deforming armature into the scene too
                armature = getattr(modifier, "object", None)
                if modifier.type == "ARMATURE" and armature is not None and not armature.users_collection:
                    collection.objects.link(armature)
    else:
        candidates = list(bpy.data.objects)
    if object_name:
        found = next((obj for obj in candidates if obj.name == object_name), None)
        if found is None:
            raise ValueError(strings.CLI_ERR_TARGET_OBJECT.format(name=object_name))
        return found

    def matched(obj: bpy.types.Object) -> int:
        key = getattr(obj.data, "shape_keys", None) if obj.type == "MESH" else None
        return 0 if key is None else sum(v is not None for v in match_shape_keys(
            [k.name for k in key.key_blocks]).mapping.values())

    best = max(candidates, key=matched, default=None)
    if best is None or matched(best) == 0:
        raise ValueError(strings.CLI_ERR_TARGET_NONE.format(path=path or strings.CLI_CURRENT_FILE))
    return best


def command(argv: list[str]) -> int:
    """The `blender -c infinite_landmarks` handler (Blender passes the arguments after the command id)."""
    return main(list(argv))


def register() -> None:
    global _handle
    if _handle is None:
        _handle = bpy.utils.register_cli_command(COMMAND_ID, command)


def unregister() -> None:
    # Blender 4.2-4.5 crash at exit if a CLI command is left registered: always remove it.
    global _handle
    if _handle is not None:
        bpy.utils.unregister_cli_command(_handle)
        _handle = None
