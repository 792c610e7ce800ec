"""The Blender add-on, end to end in one process (bpy 5.0 as a module, no blender binary):

build the extension zip for linux-x64 (build_addon.py) and validate it with Blender's validator; check the
vendored core runs without torch or scipy; install and enable the zip as an extension in a clean user profile;
track a short synthetic clip through the Track operator (blocking, and modal timer ticks where Esc keeps the
partial results), errors reported not raised, markers written, the user's own data untouched; results survive
save and reload; every panel draws; the CLI handler and batch.py report bad inputs with a clear message and a
non-zero status, and run the whole pipeline (video + image folder -> rig -> retarget onto a character .blend ->
saved .blend); disabling the add-on leaves no class, property, handler or CLI command behind.

Every test process may import bpy only once and its user profile is fixed at that import, so all of this lives
in this one module and BLENDER_USER_RESOURCES points at a temporary folder before bpy is imported. Without a
trained assets/models/default.onnx an untrained model is exported: its outputs are meaningless, so the tests
set the face threshold explicitly (0: every frame is a face; above 1: no frame is) and check the add-on's
plumbing, not the model's accuracy.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.shot import ARRAY_FIELDS

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
# A clean Blender user profile (extensions, preferences) for this process, unless one was already chosen.
_PROFILE = Path(os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="il_blender_profile_")))
bpy = pytest.importorskip("bpy")

pytestmark = [pytest.mark.blender, pytest.mark.slow]  # the add-on is built and installed once per module

EXT_ID = "infinite_landmarks"
MODULE = f"bl_ext.user_default.{EXT_ID}"
DEFAULT_MODEL = REPO / "assets" / "models" / "default.onnx"
FRAMES = 8
TIMINGS: dict[str, float] = {}


# --- shared artefacts: built once, in parallel --------------------------------------------------------------------

def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory, request) -> SimpleNamespace:
    """The zip (build_addon.py --platform linux-x64), a synthetic 8-frame face clip, a noise clip, a model."""
    if not str(bpy.utils.user_resource("EXTENSIONS")).startswith(str(_PROFILE)):
        pytest.fail("bpy was imported before BLENDER_USER_RESOURCES was set: the user profile is not a test one")
    root = tmp_path_factory.mktemp("addon")
    started = time.perf_counter()
    jobs = {"build": _start([PYTHON, "build_addon.py", "--platform", "linux-x64", "--dist", str(root / "dist")],
                            root / "build.log"),
            "clip": _start([PYTHON, "-m", "training.synth", "sequence", "--out", str(root / "clips"), "--num", "1",
                            "--frames", str(FRAMES), "--size", "128", "--kind", "moving"], root / "clip.log")}
    trained = DEFAULT_MODEL.is_file()
    model = DEFAULT_MODEL if trained else root / "untrained.onnx"
    if not trained:
        jobs["model"] = _start([PYTHON, "-m", "training.export", "full", str(model), "--image-size", "128", "128"],
                               root / "model.log")
    noise = root / "noise.mp4"
    _write_noise_video(noise)
    broken = root / "broken.mp4"
    broken.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    for name, job in jobs.items():
        if job.wait(timeout=300) != 0:
            pytest.fail(f"{name} failed:\n{(root / f'{name}.log').read_text()[-3000:]}")
    TIMINGS["setup: build zip + synth clip + model (parallel)"] = time.perf_counter() - started
    zips = sorted((root / "dist").glob("*.zip"))
    clips = sorted((root / "clips").glob("*.mp4"))
    assert len(zips) == 1 and len(clips) == 1, (zips, clips)
    yield SimpleNamespace(root=root, zip=zips[0], clip=clips[0], noise=noise, broken=broken, model=model,
                          trained=trained, build_log=(root / "build.log").read_text(),
                          noise_threshold=1.01)  # the mechanism, not the model: see MODEL_CARD (noise)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # shown even when the tests pass
        print()
        for what, seconds in TIMINGS.items():
            print(f"test_addon timing: {what}: {seconds:.1f} s")


def _write_noise_video(path: Path, frames: int = 6, size: int = 96) -> None:
    """A plain background clip: frames of random noise, no face."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (size, size))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    writer.release()


@pytest.fixture(scope="module")
def addon(artefacts):
    """Install and enable the zip as an extension; the add-on's module."""
    started = time.perf_counter()
    result = bpy.ops.extensions.package_install_files(filepath=str(artefacts.zip), repo="user_default",
                                                      enable_on_install=True)
    TIMINGS["install + enable extension"] = time.perf_counter() - started
    assert result == {"FINISHED"}
    assert MODULE in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
    yield sys.modules[MODULE]
    if MODULE in bpy.context.preferences.addons:  # a failed test must not leave it enabled for other modules
        bpy.ops.preferences.addon_disable(module=MODULE)
    shutil.rmtree(Path(bpy.utils.user_resource("EXTENSIONS")) / "user_default" / EXT_ID, ignore_errors=True)


@pytest.fixture()
def timed(request):
    started = time.perf_counter()
    yield
    TIMINGS[request.node.name] = time.perf_counter() - started


def _fresh_scene() -> None:
    """An empty file, keeping the preferences (and so the enabled add-on)."""
    bpy.ops.wm.read_homefile(use_empty=True)


def _settings(scene, clip, model: Path, threshold: float = 0.0):  # noqa: ANN001, ANN202
    props = scene.il_tracking
    props.clip = clip
    props.model_path = str(model)
    props.threshold = threshold
    props.write_markers = True
    return props


# --- the zip --------------------------------------------------------------------------------------------------------

def test_zip_is_a_valid_extension_with_vendored_core(artefacts, timed) -> None:
    validator = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    check = subprocess.run([PYTHON, str(validator), "validate", str(artefacts.zip)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert artefacts.zip.name == "infinite_landmarks-0.1.0-linux_x64.zip"

    with zipfile.ZipFile(artefacts.zip) as archive:
        names = set(archive.namelist())
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
        sources = {n: archive.read(n).decode() for n in names if n.endswith(".py")}
    assert manifest["id"] == EXT_ID and manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert manifest["permissions"]["files"]
    assert manifest["build"]["generated"]["platforms"] == ["linux-x64"]
    wheels = manifest["build"]["generated"]["wheels"]
    assert {Path(w).name.split("-")[0] for w in wheels} == {"onnxruntime", "opencv_python_headless"}
    assert all(w.lstrip("./") in names for w in wheels)
    assert not any("numpy" in n for n in names if n.startswith("wheels/"))
    assert not any(n.startswith("vendor/core/model/") for n in names)
    assert not [n for n, text in sources.items() if "import torch" in text or "from torch" in text]
    assert not [n for n, text in sources.items() if re.search(r"^\s*(from|import) core\b", text, re.MULTILINE)]
    assert "from .vendor.core.runtime.track import" in sources["tracking.py"]
    assert "from ..vendor.core.retarget import" in sources["scene/rig.py"]
    for required in ("__init__.py", "tracking.py", "cli.py", "batch.py", "vendor/core/runtime/session.py",
                     "vendor/core/assets/layouts/ibug68.json", "vendor/core/assets/facekit/ict_facekit_light.npz",
                     "vendor/core/assets/facekit/LICENSE", "vendor/core/assets/facekit/NOTICE.txt"):
        assert required in names, required
    if artefacts.trained:
        assert "vendor/core/assets/models/default.onnx" in names
    else:
        assert "without a bundled model" in artefacts.build_log


def test_vendored_core_imports_without_torch_or_scipy(artefacts, timed, tmp_path) -> None:
    """The zip's own core, with torch and scipy made unimportable, finds its assets and runs the model."""
    with zipfile.ZipFile(artefacts.zip) as archive:
        archive.extractall(tmp_path / "ext", [n for n in archive.namelist() if n.startswith("vendor/")])
    vendor = tmp_path / "ext" / "vendor"
    script = f"""
import sys
sys.modules["torch"] = None; sys.modules["scipy"] = None
sys.path.insert(0, {str(vendor)!r})
import numpy as np
import core
assert core.__file__.startswith({str(vendor)!r}), core.__file__
from core.facemodel import find_facemodel
from core.layouts import load_layout
from core.runtime import LandmarkModel
import core.solve, core.retarget, core.arkit, core.qp, core.shot, core.runtime.track
assert str(find_facemodel()).startswith({str(vendor)!r}), find_facemodel()
face = LandmarkModel({str(artefacts.model)!r}, threads=1).predict(np.zeros((64, 80, 3), np.uint8), load_layout("ibug68"))
assert face.landmarks_2d.shape == (68, 2)
print("ok")
"""
    result = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and "ok" in result.stdout, result.stdout + result.stderr


OTHER_CORE_ADDON = {
    "blender_manifest.toml": """schema_version = "1.0.0"
id = "other_core"
version = "1.0.0"
name = "Other core"
tagline = "An add-on with its own top-level core package"
maintainer = "Tests"
type = "add-on"
blender_version_min = "4.2.0"
license = ["SPDX:GPL-3.0-or-later"]
""",
    # The pattern that collides: an add-on putting its folder on sys.path and importing a top-level `core`.
    "__init__.py": """import os, sys
_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)
import core


def register():
    assert core.WHO == "other", core.__file__


def unregister():
    pass
""",
    "core/__init__.py": 'WHO = "other"\n',
}

TWO_ADDONS_SCRIPT = """
import sys
from pathlib import Path
import bpy
ours_zip, other_zip, clip, model, out, order = sys.argv[1:7]
zips = {"ours": ours_zip, "other": other_zip}
for name in order.split(","):
    assert bpy.ops.extensions.package_install_files(filepath=zips[name], repo="user_default",
                                                    enable_on_install=True) == {"FINISHED"}, name
addons = bpy.context.preferences.addons.keys()
assert "bl_ext.user_default.other_core" in addons and "bl_ext.user_default.infinite_landmarks" in addons, addons
ours = sys.modules["bl_ext.user_default.infinite_landmarks"]
ours_dir = Path(ours.__file__).parent
assert sys.modules["core"].WHO == "other", sys.modules["core"].__file__
assert not [p for p in sys.path if Path(p).resolve().is_relative_to(ours_dir)], sys.path
tops = [n for n, m in sys.modules.items() if n.split(".")[0] == "core" and getattr(m, "__file__", None)
        and Path(m.__file__).resolve().is_relative_to(ours_dir)]
assert not tops, tops
code = ours.cli.main([clip, "--output", out, "--model", model], prog="test")
assert code == 0, code
assert sys.modules["core"].WHO == "other"
print("both work")
"""


@pytest.mark.parametrize("order", ["ours,other", "other,ours"])
def test_vendored_core_and_another_addons_core_both_work(artefacts, timed, tmp_path, order) -> None:
    """Another add-on with a top-level `core` on sys.path, enabled before or after ours: both register, theirs
    keeps its `core`, and ours tracks a clip into a .blend with its own vendored copy (bl_ext...vendor.core)."""
    other_zip = tmp_path / "other_core.zip"
    with zipfile.ZipFile(other_zip, "w") as archive:
        for name, text in OTHER_CORE_ADDON.items():
            archive.writestr(name, text)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "profile"))
    result = subprocess.run([PYTHON, "-c", TWO_ADDONS_SCRIPT, str(artefacts.zip), str(other_zip),
                             str(artefacts.clip), str(artefacts.model), str(tmp_path / "shot.blend"), order],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0 and "both work" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "shot.blend").is_file()


# --- installed add-on -----------------------------------------------------------------------------------------------

def test_install_registers_operators_panels_properties_and_cli(addon, timed) -> None:
    assert Path(addon.__file__).parent == Path(bpy.utils.user_resource("EXTENSIONS")) / "user_default" / EXT_ID
    for group in addon._CLASS_GROUPS:
        for cls in group:
            assert cls.is_registered, cls
    assert hasattr(bpy.types, "INFINITE_LANDMARKS_OT_track")
    assert hasattr(bpy.types, "IL_PT_tracking_clip") and hasattr(bpy.types, "IL_PT_tracking_view3d")
    assert hasattr(bpy.context.scene, "il_tracking")
    assert addon.cli._handle is not None
    group = addon.properties.IL_PG_tracking
    assert group.is_registered
    layouts = {item.identifier for item in group.bl_rna.properties["layout"].enum_items}
    assert {"ibug68", "wflw98", "dense", "CUSTOM"} <= layouts
    semantics = {item.identifier for item in group.bl_rna.properties["semantics"].enum_items}
    assert {"canonical", "ibug2d"} <= semantics


def test_track_operator_stores_results_and_markers(addon, artefacts, timed) -> None:
    _fresh_scene()
    scene = bpy.context.scene
    clip = bpy.data.movieclips.load(str(artefacts.clip))
    # The user's own data, which tracking must leave alone: a camera track and an animated object.
    user_track = clip.tracking.tracks.new(name="user_feature", frame=1)
    user_track.markers.insert_frame(3, co=(0.25, 0.75))
    user_object = bpy.data.objects.new("UserEmpty", None)
    scene.collection.objects.link(user_object)
    user_object.keyframe_insert("location", frame=1)
    _settings(scene, clip, artefacts.model)

    assert bpy.ops.infinite_landmarks.track() == {"FINISHED"}
    results = addon.tracking.load_results(clip)
    assert results is not None and results.num_frames == FRAMES
    assert results.frames.tolist() == list(range(1, FRAMES + 1))
    assert results.has_face.all() and results.landmarks_2d.shape == (FRAMES, 68, 2)
    assert results.landmarks_3d.shape == (FRAMES, 68, 3) and results.K.shape == (FRAMES, 3, 3)
    assert (results.width, results.height) == (128, 128) and results.layout == "ibug68"
    assert "Tracking done" in scene.il_tracking.status

    obj = clip.tracking.objects[addon.tracking.MARKER_OBJECT_NAME]
    assert len(obj.tracks) == 68
    marker = obj.tracks[5].markers.find_frame(4)
    expected = results.landmarks_2d[3, 5] / [128, 128]
    assert marker is not None and np.allclose(marker.co, [expected[0], 1 - expected[1]], atol=1e-5)
    assert [t.name for t in clip.tracking.tracks] == ["user_feature"]
    assert len(user_track.markers) == 2
    assert bpy.data.objects["UserEmpty"].animation_data.action is not None

    # Re-tracking part of the clip replaces those frames and keeps the rest.
    props = scene.il_tracking
    props.use_frame_range, props.frame_start, props.frame_end = True, 3, 4
    props.threshold = 1.01  # nothing is a face: the re-tracked frames become "no face"
    assert bpy.ops.infinite_landmarks.track() == {"FINISHED"}
    merged = addon.tracking.load_results(clip)
    assert merged.num_frames == FRAMES and merged.has_face.tolist() == [True, True, False, False] + [True] * 4
    assert np.isnan(merged.landmarks_2d[2:4]).all() and np.allclose(merged.landmarks_2d[4:], results.landmarks_2d[4:])
    obj = clip.tracking.objects[addon.tracking.MARKER_OBJECT_NAME]  # the markers were rewritten
    # The nose tip (30): a jaw point may be predicted outside the frame, and markers outside it are disabled too.
    assert obj.tracks[30].markers.find_frame(3).mute  # no face: a disabled marker, not a keyed position
    assert not obj.tracks[30].markers.find_frame(5).mute


def test_track_operator_reports_errors(addon, artefacts, timed, tmp_path) -> None:
    """Problems reach the user as the operator's ERROR report (scripts see it as RuntimeError), and nothing is
    stored."""
    _fresh_scene()
    copy = tmp_path / "gone.mp4"
    shutil.copyfile(artefacts.clip, copy)
    clip = bpy.data.movieclips.load(str(copy))
    props = _settings(bpy.context.scene, clip, tmp_path / "no_model.onnx")
    with pytest.raises(RuntimeError, match="Landmark model not found.*no_model.onnx"):
        bpy.ops.infinite_landmarks.track()
    props.model_path = str(artefacts.model)
    copy.unlink()
    with pytest.raises(RuntimeError, match="Footage not found.*gone.mp4"):
        bpy.ops.infinite_landmarks.track()
    props.layout = "CUSTOM"
    with pytest.raises(RuntimeError, match="no layout file is set"):
        bpy.ops.infinite_landmarks.track()
    assert addon.tracking.load_results(clip) is None and not addon.operators.track.is_running()


def test_bad_layout_file_is_an_error_report_naming_file_and_field(addon, artefacts, timed, capsys, tmp_path) -> None:
    """A malformed layout file (issue 20: strings, NaN weights) is the operator's ERROR report and the CLI's exit 2
    with the file and the field named, not "Unexpected UFuncTypeError"."""
    import json

    _fresh_scene()
    clip = bpy.data.movieclips.load(str(artefacts.clip))
    props = _settings(bpy.context.scene, clip, artefacts.model)
    props.layout = "CUSTOM"
    for data, field in [({"vertices": ["a", "b"]}, r"vertices\[0\]"),
                        ({"triangles": [0], "barycentric": [[float("nan"), 0.5, 0.5]]}, r"barycentric\[0\]")]:
        layout = tmp_path / f"bad_{field[:4]}.json"
        layout.write_text(json.dumps(data))
        props.layout_path = str(layout)
        with pytest.raises(RuntimeError, match=f"Cannot use the layout.*{layout.name}.*{field}"):
            bpy.ops.infinite_landmarks.track()
        code = addon.cli.command([str(artefacts.clip), "--output", str(tmp_path / "out.blend"), "--model",
                                  str(artefacts.model), "--layout", str(layout)])
        err = capsys.readouterr().err
        assert code == 2 and "Cannot use the layout" in err and layout.name in err and "Unexpected" not in err
    assert addon.tracking.load_results(clip) is None


def test_modal_ticks_and_esc_keep_partial_results(addon, artefacts, timed) -> None:
    """Drive the Track operator's modal code as Blender would (a window is needed for real timer events)."""
    _fresh_scene()
    clip = bpy.data.movieclips.load(str(artefacts.clip))
    _settings(bpy.context.scene, clip, artefacts.model)
    operator, reports = _plain_operator(addon.operators.track.IL_OT_track)
    context = bpy.context

    assert operator.job_start(context)  # what invoke() does before it adds the timer and the modal handler
    assert addon.operators.track.is_running()
    tick = SimpleNamespace(type="TIMER", value="NOTHING", timer=None)  # the operator's timer (None: no window)
    assert operator.modal(context, tick) == {"RUNNING_MODAL"}
    assert operator.modal(context, tick) == {"RUNNING_MODAL"}
    assert 0 < operator.job_progress() < 1 and "Tracking frame" in context.scene.il_tracking.status
    for event in (SimpleNamespace(type="MOUSEMOVE", value="NOTHING", timer=None),
                  SimpleNamespace(type="TIMER", value="NOTHING", timer=object())):  # another operator's timer
        assert operator.modal(context, event) == {"PASS_THROUGH"}
    esc = SimpleNamespace(type="ESC", value="PRESS", timer=None)
    assert operator.modal(context, esc) == {"CANCELLED"}
    assert not addon.operators.track.is_running()

    results = addon.tracking.load_results(clip)
    done = 2 * addon.operators.track.FRAMES_PER_TICK
    assert results.num_frames == done and results.frames.tolist() == list(range(1, done + 1))
    assert "stopped" in bpy.context.scene.il_tracking.status
    assert reports and reports[-1][0] == {"WARNING"}

    # Blender's own cancel() (another file loaded, window closed) keeps the frames too.
    addon.tracking.clear_results(clip)
    operator, reports = _plain_operator(addon.operators.track.IL_OT_track)
    assert operator.job_start(context) and operator.modal(context, tick) == {"RUNNING_MODAL"}
    operator.cancel(context)
    assert addon.tracking.load_results(clip).num_frames == addon.operators.track.FRAMES_PER_TICK
    assert not addon.operators.track.is_running()
    # The job object itself (cancelled directly, smoothed over the whole clip): tests/test_track.py.


def _plain_operator(op_class):  # noqa: ANN001, ANN202
    """A plain-Python object with the operator's methods (Blender operators cannot be instantiated in Python)."""
    namespace = {}
    for klass in reversed(op_class.__mro__):
        if klass.__module__.startswith(("bpy", "builtins")):
            continue
        namespace.update({k: v for k, v in vars(klass).items() if not k.startswith("__")})
    reports: list[tuple[set, str]] = []
    namespace["report"] = lambda self, level, message: reports.append((set(level), message))
    return type("PlainOperator", (), namespace)(), reports


def test_results_survive_save_and_reload(addon, artefacts, timed, tmp_path) -> None:
    _fresh_scene()
    clip = bpy.data.movieclips.load(str(artefacts.clip))
    _settings(bpy.context.scene, clip, artefacts.model)
    assert bpy.ops.infinite_landmarks.track() == {"FINISHED"}
    before = addon.tracking.load_results(clip)
    name = clip.name
    path = tmp_path / "tracked.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))

    clip = bpy.data.movieclips[name]
    after = addon.tracking.load_results(clip)
    assert after is not None and after.num_frames == FRAMES and after.names == before.names
    for name in ARRAY_FIELDS:
        np.testing.assert_allclose(getattr(after, name), getattr(before, name), rtol=1e-6, atol=1e-5,
                                   err_msg=name)
    assert len(clip.tracking.objects[addon.tracking.MARKER_OBJECT_NAME].tracks) == 68
    shot = addon.tracking.load_results(clip)
    assert shot.scene_frames.tolist() == (before.frames + clip.frame_start - 1).tolist()


class _FakeLayout:
    """Stands in for UILayout (no window headless): records the drawing and checks every property and operator a
    panel names exists; layout methods it does not check (row, column, box, ...) return itself."""

    def __init__(self, drawn: list[str]) -> None:
        self.drawn = drawn

    def __getattr__(self, name: str):  # noqa: ANN204
        return lambda *args, **kwargs: self

    def prop(self, data, name: str, **kwargs) -> None:  # noqa: ANN001
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name}"
        self.drawn.append(f"prop {name}")

    def operator(self, idname: str, **kwargs) -> SimpleNamespace:
        module, name = idname.split(".")
        assert hasattr(bpy.types, f"{module.upper()}_OT_{name}"), f"operator {idname} is not registered"
        self.drawn.append(f"operator {idname}")
        return SimpleNamespace()

    def label(self, text: str = "", **kwargs) -> None:
        self.drawn.append(f"label {text}")


class _Drawer:
    """`self` for a draw method: the fake layout, and everything else from `source`."""

    def __init__(self, layout: _FakeLayout, source: object) -> None:
        self.layout = layout
        self._source = source

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._source, name)


def test_panels_and_preferences_draw(addon, artefacts, timed) -> None:
    """Every panel of the add-on (tracking, rig, retarget) and the preferences draw, before and after tracking."""
    _fresh_scene()
    clip = bpy.data.movieclips.load(str(artefacts.clip))
    _settings(bpy.context.scene, clip, artefacts.model)
    panels = [cls for group in addon._CLASS_GROUPS for cls in group if issubclass(cls, bpy.types.Panel)]
    assert {"IL_PT_tracking_clip", "IL_PT_tracking_view3d"} <= {cls.__name__ for cls in panels}
    for tracked in (False, True):
        if tracked:
            assert bpy.ops.infinite_landmarks.track() == {"FINISHED"}
        for cls in panels + list(addon.preferences.CLASSES):
            drawn: list[str] = []
            # A panel's other methods come from a plain copy; the preferences' properties from the real ones.
            source = bpy.context.preferences.addons[MODULE].preferences if cls in addon.preferences.CLASSES \
                else _plain_operator(cls)[0]
            cls.draw(_Drawer(_FakeLayout(drawn), source), bpy.context)
            assert drawn, cls
            if cls.__name__ == "IL_PT_tracking_clip":
                assert "operator infinite_landmarks.track" in drawn
                assert any(line.startswith("label 8 frames, a face in 8") for line in drawn) == tracked


def test_bundled_model_choice(addon, artefacts, timed) -> None:
    """The scene's Model lists the bundled models that the zip holds; a Model File here or in the preferences
    wins; the permissive choice reaches the tracker as its name, which the runtime resolves to the vendored file."""
    from importlib import import_module

    session = import_module(f"{MODULE}.vendor.core.runtime.session")
    _fresh_scene()
    props = bpy.context.scene.il_tracking
    names = [item.identifier for item in props.bl_rna.properties["model"].enum_items]
    bundled = [name for name, file in session.BUNDLED_MODELS.items()
               if (REPO / "assets" / "models" / file).is_file()]
    assert names == (bundled or ["default"])
    assert props.model == names[0] == "default"
    assert addon.properties.model_path(props, None) == ""
    props.model_path = str(artefacts.model)
    assert addon.properties.model_path(props, None) == str(artefacts.model)
    props.model_path = ""
    if "permissive" in names:
        props.model = "permissive"
        assert addon.properties.model_path(props, None) == "permissive"
        assert session.model_path("permissive").is_file()
        assert session.model_path("permissive").parent == session.model_path("default").parent


# --- command line ---------------------------------------------------------------------------------------------------

def test_cli_reports_bad_inputs_with_non_zero_status(addon, artefacts, timed, capsys, tmp_path) -> None:
    command = addon.cli.command  # what `blender -c infinite_landmarks ...` calls
    out = str(tmp_path / "out.blend")
    model = ["--model", str(artefacts.model)]

    def run(*args: str) -> tuple[int, str]:
        code = command(list(args))
        captured = capsys.readouterr()
        return code, captured.err

    code, err = run(str(artefacts.broken), "--output", out, *model)
    assert code == 1 and "Cannot read the footage" in err and "broken.mp4" in err
    code, err = run(str(tmp_path / "missing.mp4"), "--output", out, *model)
    assert code == 1 and "Footage not found" in err
    code, err = run(str(artefacts.clip), "--output", out, "--model", str(tmp_path / "nope.onnx"))
    assert code == 2 and "Landmark model not found" in err and "nope.onnx" in err
    code, err = run(str(artefacts.noise), "--output", out, *model, "--threshold", str(artefacts.noise_threshold))
    assert code == 1 and "No face found" in err and "noise.mp4" in err
    code, err = run(str(artefacts.clip), "--output", out, *model, "--layout", "no_such_layout")
    assert code == 2 and "Unknown layout" in err
    code, err = run(str(artefacts.clip))
    assert code == 2 and "--output" in err
    assert not Path(out).exists()


def test_cli_pipeline_tracks_rigs_retargets_and_saves(addon, artefacts, timed, capsys, tmp_path) -> None:
    """A video and an image folder, rigged and baked onto a character appended from its own .blend."""
    import cv2

    _fresh_scene()
    mesh = bpy.data.meshes.new("CharacterMesh")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    character = bpy.data.objects.new("Character", mesh)
    for name in ("Basis", "jawOpen", "eyeBlink_L", "mouthSmileLeft", "Wrinkles"):
        character.shape_key_add(name=name)
    character_file = tmp_path / "character.blend"
    bpy.data.libraries.write(str(character_file), {character})
    _fresh_scene()
    folder = tmp_path / "frames"
    folder.mkdir()
    capture = cv2.VideoCapture(str(artefacts.clip))
    for i in range(FRAMES):
        ok, frame = capture.read()
        assert ok
        cv2.imwrite(str(folder / f"frame_{i + 1:04d}.png"), frame)
    capture.release()

    out = tmp_path / "shot.blend"
    code = addon.cli.command([str(artefacts.clip), str(folder), "--output", str(out), "--model", str(artefacts.model),
                              "--threshold", "0", "--target", str(character_file), "--target-object", "Character"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert out.is_file() and "saved" in captured.out, captured.out
    assert "Baked 3 shape keys of Character" in captured.out, captured.out
    clips = {c.source: c for c in bpy.data.movieclips}
    assert set(clips) == {"MOVIE", "SEQUENCE"}
    for clip in clips.values():
        assert addon.tracking.load_results(clip).num_frames == FRAMES, clip.name
        assert addon.scene.rig.find_rig(clip.name) is not None
    key = bpy.data.objects["Character"].data.shape_keys
    paths = {f.data_path for f in addon.scene.keyframes.id_fcurves(key)}
    assert {f'key_blocks["{k}"].value' for k in ("jawOpen", "eyeBlink_L", "mouthSmileLeft")} <= paths
    assert not any("Wrinkles" in p for p in paths)

    code = addon.cli.command([str(artefacts.clip), "--output", str(out), "--model", str(artefacts.model),
                              "--target", str(character_file), "--target-object", "Nobody"])
    assert code == 2 and "no object called 'Nobody'" in capsys.readouterr().err


def test_cli_checks_outputs_first_and_never_writes_over_inputs(addon, artefacts, timed, capsys, tmp_path) -> None:
    """Issue 20, items 2, 3 and 5 for the batch: every output is checked before tracking (exit 2, nothing
    tracked), an input is never an output, an existing file only with --overwrite, equal clip names are told
    apart, and saving again into the .blend that is open stays allowed."""
    _fresh_scene()
    model = ["--model", str(artefacts.model), "--threshold", "0", "--no-rig"]
    clip = tmp_path / "clip.mp4"
    shutil.copy(artefacts.clip, clip)
    before = clip.read_bytes()
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    other = tmp_path / "other.blend"
    other.write_bytes(b"another file's content")

    def run(*args: str) -> tuple[int, str, str]:
        code = addon.cli.command([str(clip), *args, *model])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return code, captured.out, captured.err

    out = str(tmp_path / "out.blend")
    for args, message in [
        (["--output", out, "--preview", str(clip)], f"--preview {clip} is the input"),
        (["--output", out, "--preview", str(clip), "--overwrite"], "is the input"),
        (["--output", str(other)], f"--output {other} already exists"),
        (["--output", str(blocker / "out.blend")], f"{blocker} is a file, not a folder"),
        (["--output", out, "--results", str(blocker / "r.npz")], f"{blocker} is a file, not a folder"),
        (["--output", out, "--threshold", "nan"], "--threshold"),
    ]:
        code, stdout, err = run(*args)
        assert code == 2 and message in err, (args, err)
        assert "tracking" not in stdout, args  # refused before any clip was tracked
    assert clip.read_bytes() == before and other.read_bytes() == b"another file's content"
    assert not Path(out).exists()

    code, _, err = run("--output", str(other), "--overwrite")
    assert code == 0, err
    assert other.read_bytes() != b"another file's content" and other.stat().st_size > 1000  # a .blend now
    code, _, err = run("--output", str(other))  # the file now open in Blender is saved again: allowed
    assert code == 0, err

    second = tmp_path / "b" / "clip.mp4"
    second.parent.mkdir()
    shutil.copy(artefacts.clip, second)
    code = addon.cli.command([str(clip), str(second), "--output", str(tmp_path / "two.blend"), "--preview",
                              str(tmp_path / "p.mp4"), "--results", str(tmp_path / "r.npz"), *model])
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("p_", "r_")))
    assert names == ["p_clip.mp4", "p_clip_2.mp4", "r_clip.npz", "r_clip_2.npz"]
    assert not [p.name for p in tmp_path.rglob(".*partial*")]  # no temporary file left behind


def test_cli_partial_clip_and_failed_outputs_are_failures(addon, artefacts, timed, capsys, tmp_path) -> None:
    """Issue 20, item 4 for the batch: a truncated mp4 exits 1 (its frames are kept and saved), and a --preview
    or --check that cannot be written is an error with exit 1, not "wrote"."""
    from media_fixtures import write_truncated_mp4

    _fresh_scene()
    cut = write_truncated_mp4(tmp_path / "cut.mp4")
    out = tmp_path / "cut.blend"
    code = addon.cli.command([str(cut), "--output", str(out), "--model", str(artefacts.model), "--threshold", "0",
                              "--no-rig"])
    captured = capsys.readouterr()
    assert code == 1 and "of the 30 frames could be decoded" in captured.err and str(cut) in captured.err, \
        captured.err
    assert out.is_file()  # what was read is kept (the job's own count of the missing frames: tests/test_track.py)

    _fresh_scene()
    for option, name, message in [("--preview", "preview.xyz", "cannot write the preview video"),
                                  ("--check", "check.xyz", "OpenCV cannot encode")]:
        code = addon.cli.command([str(artefacts.clip), "--output", str(tmp_path / f"{name}.blend"), "--model",
                                  str(artefacts.model), "--threshold", "0", option, str(tmp_path / name)])
        captured = capsys.readouterr()
        assert code == 1 and message in captured.err and str(tmp_path / name) in captured.err, captured.err
        assert f"wrote {tmp_path / name}" not in captured.out and not (tmp_path / name).exists()
        assert "Traceback" not in captured.err


def test_batch_script_shares_the_cli(addon, artefacts, timed, capsys, tmp_path) -> None:
    batch = _load_batch(Path(addon.__file__).parent / "batch.py")
    assert batch.script_arguments(["blender", "-b", "-P", "batch.py", "--", "a.mp4", "-o", "x.blend"]) == \
        ["a.mp4", "-o", "x.blend"]
    code = batch.run([str(artefacts.broken), "--output", str(tmp_path / "x.blend"), "--model", str(artefacts.model)])
    assert code == 1 and "Cannot read the footage" in capsys.readouterr().err


def _load_batch(path: Path):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("il_batch_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- unregister -----------------------------------------------------------------------------------------------------

def _leftovers(addon) -> list[str]:  # noqa: ANN001
    found = []
    for group in addon._CLASS_GROUPS:
        found += [f"class {cls.__name__}" for cls in group if cls.is_registered]
    found += [name for name in ("INFINITE_LANDMARKS_OT_track", "IL_PT_tracking_clip") if hasattr(bpy.types, name)]
    found += [f"class {cls.__name__}" for cls in addon.properties.CLASSES if cls.is_registered]
    if hasattr(bpy.types.Scene, "il_tracking"):
        found.append("Scene.il_tracking")
    for name in dir(bpy.app.handlers):
        handlers = getattr(bpy.app.handlers, name)
        if isinstance(handlers, list):
            found += [f"handler {name}" for h in handlers if getattr(h, "__module__", "").startswith(addon.__name__)]
    if addon.cli._handle is not None:
        found.append("CLI command")
    return found


def test_disable_leaves_nothing_behind(addon, artefacts, timed, capfd, tmp_path) -> None:
    handle = addon.cli._handle
    assert bpy.ops.preferences.addon_disable(module=MODULE) == {"FINISHED"}
    assert _leftovers(addon) == []
    with pytest.raises(ValueError, match="already been removed"):
        bpy.utils.unregister_cli_command(handle)
    # The command id is free again: registering it does not warn about a duplicate.
    capfd.readouterr()
    again = bpy.utils.register_cli_command(addon.cli.COMMAND_ID, lambda argv: 0)
    bpy.utils.unregister_cli_command(again)
    assert "duplicate" not in capfd.readouterr().err

    # batch.py with the add-on disabled registers the package itself for the run, then unregisters it again.
    batch = _load_batch(Path(addon.__file__).parent / "batch.py")
    code = batch.run([str(artefacts.broken), "--output", str(tmp_path / "x.blend"), "--model", str(artefacts.model)])
    assert code == 1
    standalone = sys.modules[EXT_ID]
    assert standalone is not addon and _leftovers(standalone) == []
