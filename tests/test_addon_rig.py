"""The rig, retargeting and overlay in headless Blender (bpy), from synthetic tracking with known ground truth.

Results are made directly from known K, R, t, expression weights and identity with core.facemodel and
core.layouts (no model, no network), so every check compares against the truth:
camera focal, camera-vs-head pose (by projecting head points with Blender's own camera maths), keyed ARKit
weights (through the solver), identity shape; plus replacing only the add-on's data, retargeting, save/reload and
the overlay in background mode. The add-on modules are imported from the repository (not the installed zip).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="il_blender_"))
bpy = pytest.importorskip("bpy")
cv2 = pytest.importorskip("cv2")

from bpy_extras.object_utils import world_to_camera_view  # noqa: E402
import mathutils  # noqa: E402

from core import geometry  # noqa: E402
from core.facemodel import FACE_VERTICES, load_facemodel  # noqa: E402
from core.layouts import load_layout  # noqa: E402
from core.arkit import ARKIT52_NAMES, match_shape_keys, to_arkit52  # noqa: E402
from core.shot import Shot  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]  # real Blender scenes: rigs, retargets and bakes

WIDTH, HEIGHT, NUM_FRAMES, FOCAL_PX = 640, 480, 16, 900.0
NO_FACE_ROW = 7            # this frame has no face: must not be keyed
OUTLIER_FOCAL_ROW = 3      # this frame's predicted focal length is 50 % off
LAYOUT = "dense"           # the learned dense shape: enough points to pin identity and expressions
SHAPES = {"mouthSmile_L": 0.6, "mouthSmile_R": 0.5, "jawOpen": 0.5, "cheekPuff_L": 0.5, "cheekPuff_R": 0.5,
          "mouthLeft": 0.4, "browOuterUp_L": 0.6}


# --------------------------------------------------------------------------------------------------------------
# Ground truth and fixtures


class Truth:
    """A synthetic shot: per-frame pose, expressions, one identity, and the tracking results they produce."""

    def __init__(self) -> None:
        self.model = load_facemodel()
        layout = load_layout(LAYOUT)
        rng = np.random.default_rng(0)
        self.identity = np.zeros(40)
        self.identity[:20] = rng.normal(0.0, 0.8, 20)
        names = self.model.expression_names
        phase = np.linspace(0.0, 1.0, NUM_FRAMES)
        self.expressions = np.zeros((NUM_FRAMES, len(names)))
        for k, (name, amplitude) in enumerate(SHAPES.items()):
            # Smooth, and back to neutral at both ends (a real shot has neutral frames).
            self.expressions[:, names.index(name)] = amplitude * np.sin(np.pi * phase * (1 + k % 3)) ** 2
        # Off-centre principal point: checks the lens shift too.
        self.K = geometry.intrinsics(FOCAL_PX, WIDTH, HEIGHT, cx=WIDTH / 2 + 12, cy=HEIGHT / 2 - 9)
        self.R = np.stack([geometry.pose_to_rotation(15 * np.sin(i / 3), 8 * np.cos(i / 4), 5 * np.sin(i / 5))
                           for i in range(NUM_FRAMES)])
        self.t = np.stack([[3 * np.sin(i / 3), -1 + np.cos(i / 2), 60 + 4 * np.sin(i / 4)]
                           for i in range(NUM_FRAMES)])
        self.frames = np.arange(1, NUM_FRAMES + 1)  # scene frames
        # Predicted focal lengths jitter by 0.2 % and one frame is a gross outlier: the rig's lens must be robust.
        predicted_focal = FOCAL_PX * (1 + 0.002 * rng.normal(size=NUM_FRAMES))
        predicted_focal[OUTLIER_FOCAL_ROW] *= 1.5
        items = {}
        for i, frame in enumerate(self.frames):
            points = layout.points(self.vertices(i), self.model.triangles)
            K = self.K.copy()
            K[0, 0] = K[1, 1] = predicted_focal[i]
            items[int(frame)] = {"landmarks_2d": geometry.project_canonical(points, self.K, self.R[i], self.t[i]),
                                 "visibility": np.ones(len(points)), "landmarks_3d": points, "K": K,
                                 "R": self.R[i], "t": self.t[i], "confidence": 0.99,
                                 "has_face": i != NO_FACE_ROW}
        self.results = Shot.from_frames(items, WIDTH, HEIGHT, LAYOUT)

    def vertices(self, row: int) -> np.ndarray:
        return self.model.vertices(self.identity, self.expressions[row])


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth()


@pytest.fixture(scope="module")
def addon():
    """The add-on's modules with our classes (and the tracking settings they read) registered."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    import blender_addon
    from blender_addon import overlay, properties, tracking, ui_rig
    from blender_addon.operators import retarget as retarget_operators
    from blender_addon.operators import rig as rig_operators
    from blender_addon.scene import keyframes, props, retarget, rig

    properties.register()
    props.register()
    classes = rig_operators.CLASSES + retarget_operators.CLASSES + ui_rig.CLASSES
    for cls in classes:
        bpy.utils.register_class(cls)
    yield type("Addon", (), dict(package=blender_addon, overlay=overlay, tracking=tracking, keyframes=keyframes,
                                 props=props, retarget=retarget, rig=rig,
                                 retarget_operators=retarget_operators))
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
    props.unregister()
    properties.unregister()


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clip")
    for i in range(NUM_FRAMES):
        cv2.imwrite(str(folder / f"frame_{i + 1:04d}.png"), np.full((HEIGHT, WIDTH, 3), 40, np.uint8))
    return folder / "frame_0001.png"


def load_clip(clip_path: Path) -> bpy.types.MovieClip:
    clip = bpy.data.movieclips.load(str(clip_path))
    assert tuple(clip.size) == (WIDTH, HEIGHT)
    return clip


@pytest.fixture
def scene(addon, clip_path):
    """An empty scene with the synthetic clip."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    return scene, load_clip(clip_path)


# --------------------------------------------------------------------------------------------------------------
# Helpers


def reprojection_error(scene, rig_objects, truth: Truth, vertex_ids: np.ndarray) -> float:
    """Max pixel distance between GT projections and Blender's projection of the same head points, over frames
    with a face. The points are the GT canonical vertices placed in the rig head's object space, so this isolates
    the camera-vs-head pose and the lens (focal and shift)."""
    worst = 0.0
    for row, frame in enumerate(truth.frames):
        if row == NO_FACE_ROW:
            continue
        scene.frame_set(int(frame))
        canonical = truth.vertices(row)[vertex_ids]
        expected = geometry.project_canonical(canonical, truth.K, truth.R[row], truth.t[row])
        head = np.array(rig_objects.head.matrix_world)
        local = canonical @ geometry.CANONICAL_TO_BLENDER.T
        world = local @ head[:3, :3].T + head[:3, 3]
        for point, pixel in zip(world, expected):
            ndc = world_to_camera_view(scene, rig_objects.camera, mathutils.Vector(point))
            got = np.array([ndc.x * WIDTH, (1.0 - ndc.y) * HEIGHT])
            worst = max(worst, float(np.linalg.norm(got - pixel)))
    return worst


def keyed_weights(addon, rig_objects, frames: np.ndarray) -> np.ndarray:
    key = rig_objects.head.data.shape_keys
    return np.stack([addon.keyframes.evaluate_channels(key, f'key_blocks["{n}"].value', frames, [np.nan])[:, 0]
                     for n in ARKIT52_NAMES], axis=1)


def tracking_results(truth: Truth) -> Shot:
    """The synthetic shot as the tracker stores it on a clip (clip frames = scene frames here)."""
    results = truth.results
    return Shot(
        layout=LAYOUT, semantics="canonical", model="synthetic", width=WIDTH, height=HEIGHT, fps=25.0, names=[],
        frames=truth.frames.copy(), has_face=results.has_face.copy(), confidence=results.confidence.copy(),
        landmarks_2d=results.landmarks_2d, visibility=results.visibility, landmarks_3d=results.landmarks_3d,
        K=results.K, R=results.R, t=results.t)


SAMPLE_VERTICES = np.array([0, 1200, 2500, 3100, 4000, 5200, 6000, 7300, 8800, 9300, 21500, 23100])


# --------------------------------------------------------------------------------------------------------------
# Tests


def test_build_rig_matches_ground_truth(addon, scene, truth: Truth) -> None:
    scene, clip = scene
    rig_objects = addon.rig.build_rig(scene, clip, truth.results)

    # Camera: focal within 1 %, the scene set up from the clip.
    expected_mm = geometry.focal_px_to_mm(FOCAL_PX, WIDTH)
    focal_error = abs(rig_objects.camera.data.lens - expected_mm) / expected_mm
    assert focal_error < 0.01
    assert (scene.render.resolution_x, scene.render.resolution_y) == (WIDTH, HEIGHT)
    assert (scene.frame_start, scene.frame_end) == (1, NUM_FRAMES)
    assert scene.camera == rig_objects.camera
    background = rig_objects.camera.data.background_images[0]
    assert background.source == "MOVIE_CLIP" and background.clip == clip

    # Pose: static camera, moving head, reprojects onto the GT pixels.
    assert not addon.keyframes.id_fcurves(rig_objects.camera)
    pixel_error = reprojection_error(scene, rig_objects, truth, SAMPLE_VERTICES)
    assert pixel_error < 0.5

    # Frames without a face are not keyed.
    key = rig_objects.head.data.shape_keys
    keyed = addon.keyframes.keyed_frames(key, 'key_blocks["jawOpen"].value')
    assert keyed == [float(f) for i, f in enumerate(truth.frames) if i != NO_FACE_ROW]
    assert addon.keyframes.keyed_frames(rig_objects.head, "location") == keyed

    # Expressions: the 52 ARKit keys carry the solver's weights, which match the truth.
    assert [k.name for k in key.key_blocks[1:]] == list(ARKIT52_NAMES)
    rows = np.array([i for i in range(NUM_FRAMES) if i != NO_FACE_ROW])
    weights = keyed_weights(addon, rig_objects, truth.frames[rows].astype(float))
    np.testing.assert_allclose(weights, to_arkit52(rig_objects.solve.expressions)[rows], atol=1e-5)
    expression_error = float(np.abs(weights - to_arkit52(truth.expressions)[rows]).max())
    assert expression_error < 0.1

    # Identity: the Basis is the subject's neutral face (face region), in metres.
    vertex_ids = addon.rig.head_topology(truth.model)[0]
    count = len(rig_objects.head.data.vertices)
    basis = np.empty(count * 3, np.float32)
    key.reference_key.data.foreach_get("co", basis)
    basis_cm = basis.reshape(count, 3) @ np.linalg.inv(geometry.CANONICAL_TO_BLENDER).T
    face = vertex_ids < FACE_VERTICES.stop
    expected = truth.model.vertices(truth.identity)[vertex_ids[face]]
    identity_error = float(np.linalg.norm(basis_cm[face] - expected, axis=1).mean())
    assert identity_error < 0.2

    print(f"\nfocal error {100 * focal_error:.4f} %, reprojection {pixel_error:.4f} px, "
          f"expression {expression_error:.4f}, identity {identity_error:.4f} cm")


def test_moving_camera_mode_reprojects(addon, scene, truth: Truth) -> None:
    scene, clip = scene
    # Animated zoom: the lens follows every frame's predicted focal length.
    settings = addon.rig.RigSettings(pose_mode="CAMERA", animated_focal=True)
    rig_objects = addon.rig.build_rig(scene, clip, truth.results, settings)
    rows = truth.results.face_rows
    lens = addon.keyframes.evaluate_channels(rig_objects.camera.data, "lens", truth.frames[rows], [0.0])[:, 0]
    expected = [geometry.focal_px_to_mm(f, WIDTH) for f in truth.results.K[rows, 0, 0]]
    np.testing.assert_allclose(lens, expected, rtol=1e-5)

    # Moving camera, static head at the origin: the same camera-vs-head pose.
    rig_objects = addon.rig.build_rig(scene, clip, truth.results, addon.rig.RigSettings(pose_mode="CAMERA"))
    assert not addon.keyframes.id_fcurves(rig_objects.head)
    assert addon.keyframes.keyed_frames(rig_objects.camera, "location")
    assert reprojection_error(scene, rig_objects, truth, SAMPLE_VERTICES[:4]) < 0.5


def test_rebuild_replaces_only_addon_data(addon, scene, truth: Truth) -> None:
    scene, clip = scene
    mesh = bpy.data.meshes.new("UserCube")
    cube = bpy.data.objects.new("UserCube", mesh)
    scene.collection.objects.link(cube)
    cube.keyframe_insert("location", frame=1)
    user_action = cube.animation_data.action
    user_action.name = "UserAction"

    addon.rig.build_rig(scene, clip, truth.results)
    first = {id_data.name for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.actions,
                                             bpy.data.materials, bpy.data.collections, bpy.data.cameras)
             for id_data in collection if addon.rig.is_owned(id_data)}
    rig_objects = addon.rig.build_rig(scene, clip, truth.results)
    second = {id_data.name for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.actions,
                                              bpy.data.materials, bpy.data.collections, bpy.data.cameras)
              for id_data in collection if addon.rig.is_owned(id_data)}
    assert first == second  # same names: the old ones were removed, not renamed to .001
    assert bpy.data.objects.get("UserCube") is cube
    assert bpy.data.actions.get("UserAction") is user_action
    assert cube.animation_data.action is user_action
    assert addon.rig.find_rig(clip.name).head == rig_objects.head

    assert addon.rig.clear_rig(clip.name) > 0
    assert addon.rig.find_rig(clip.name) is None
    assert bpy.data.objects.get("UserCube") is cube and bpy.data.actions.get("UserAction") is user_action


def make_target(name: str, key_names: list[str]) -> bpy.types.Object:
    """A small mesh with the given shape keys (each moves one vertex up)."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)], [], [(0, 1, 2, 3)])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    for i, key_name in enumerate(key_names):
        block = obj.shape_key_add(name=key_name)
        block.data[i % 4].co.z = 1.0
    return obj


def test_retarget_drives_and_bakes_renamed_keys(addon, scene, truth: Truth) -> None:
    scene, clip = scene
    rig_objects = addon.rig.build_rig(scene, clip, truth.results)
    target = make_target("Character", ["EyeBlink_L", "jaw_open", "MouthSmile_Left", "cheekPuff", "Extra"])
    match = match_shape_keys([k.name for k in target.data.shape_keys.key_blocks])
    assert match.mapping["jawOpen"] == "jaw_open" and match.mapping["mouthSmileLeft"] == "MouthSmile_Left"
    assert match.unmatched_targets == ["Extra"]
    pairs = {"jawOpen": "jaw_open", "mouthSmileLeft": "MouthSmile_Left", "cheekPuff": "cheekPuff",
             "eyeBlinkLeft": "EyeBlink_L"}
    frame, row = 6, 5
    rig_weights = dict(zip(ARKIT52_NAMES, to_arkit52(rig_objects.solve.expressions)[row]))

    extra_before = target.data.shape_keys.key_blocks["Extra"].value
    report = addon.retarget.retarget(rig_objects, target, match.mapping, bake=False)
    assert sorted(report.shape_keys) == sorted(pairs.values())
    scene.frame_set(frame)
    blocks = target.data.shape_keys.key_blocks
    for arkit, target_key in pairs.items():
        assert blocks[target_key].value == pytest.approx(rig_weights[arkit], abs=1e-5)
    assert blocks["Extra"].value == extra_before  # unmapped: untouched

    # Live head motion onto an empty (constraints), then baked onto the same empty: the same motion, about its
    # own origin, and baking after driving does not compound the two.
    head = bpy.data.objects.new("HeadEmpty", None)
    scene.collection.objects.link(head)
    head.location = (0.0, 0.0, 1.6)
    scene.frame_set(1)
    addon.retarget.retarget(rig_objects, None, {}, head_target=head, bake=False)
    scene.frame_set(frame)
    rig_world = np.array(rig_objects.head.matrix_world)
    expected_head = np.eye(4)
    expected_head[:3, :3] = rig_world[:3, :3]
    expected_head[:3, 3] = np.array([0.0, 0.0, 1.6]) + rig_world[:3, 3]
    np.testing.assert_allclose(np.array(head.matrix_world), expected_head, atol=1e-5)

    # Baked: keys in IL_<clip>_<target>, our drivers gone, same values.
    report = addon.retarget.retarget(rig_objects, target, match.mapping, head_target=head, bake=True)
    assert not head.constraints
    key = target.data.shape_keys
    assert key.animation_data.action.name == f"IL_{clip.name}_{target.name}"
    assert not key.animation_data.drivers
    assert report.head == "HeadEmpty"
    for arkit, target_key in pairs.items():
        values = addon.keyframes.evaluate_channels(key, f'key_blocks["{target_key}"].value', [frame], [0.0])
        assert values[0, 0] == pytest.approx(rig_weights[arkit], abs=1e-5)
    scene.frame_set(frame)
    np.testing.assert_allclose(np.array(head.matrix_world), expected_head, atol=1e-5)
    rig_rotation = rig_world[:3, :3]

    # Head motion onto a bone, in the bone's rest frame: the bone turns like the rig head.
    armature_data = bpy.data.armatures.new("Skeleton")
    armature = bpy.data.objects.new("Skeleton", armature_data)
    scene.collection.objects.link(armature)
    bpy.context.view_layer.objects.active = armature
    bpy.ops.object.mode_set(mode="EDIT")
    bone = armature_data.edit_bones.new("head")
    bone.head, bone.tail, bone.roll = (0, 0, 1.5), (0, 0.1, 1.7), 0.3  # a tilted bone: rest frame != world
    bpy.ops.object.mode_set(mode="OBJECT")
    scene.frame_set(1)
    rest = np.array(armature.matrix_world) @ np.array(armature.pose.bones["head"].matrix)
    addon.retarget.retarget(rig_objects, None, {}, head_target=(armature, "head"), bake=True)
    assert armature.animation_data.action.name == f"IL_{clip.name}_head"
    scene.frame_set(frame)
    posed = np.array(armature.matrix_world) @ np.array(armature.pose.bones["head"].matrix)
    np.testing.assert_allclose(posed[:3, :3], rig_rotation @ rest[:3, :3], atol=1e-4)


def test_target_without_matching_keys_changes_nothing(addon, scene, truth: Truth) -> None:
    scene, clip = scene
    rig_objects = addon.rig.build_rig(scene, clip, truth.results)
    target = make_target("Prop", ["Foo", "Bar"])
    mapping = match_shape_keys([k.name for k in target.data.shape_keys.key_blocks]).mapping
    actions_before = set(bpy.data.actions.keys())
    with pytest.raises(addon.retarget.RetargetError, match="no shape key matching"):
        addon.retarget.retarget(rig_objects, target, mapping, bake=True)
    assert target.data.shape_keys.animation_data is None
    assert set(bpy.data.actions.keys()) == actions_before


def test_save_and_reload_keeps_mapping_and_keys(addon, scene, truth: Truth, tmp_path: Path) -> None:
    scene, clip = scene
    rig_objects = addon.rig.build_rig(scene, clip, truth.results)
    target = make_target("Character", ["eyeBlink_L", "JawOpen"])
    scene.il_rig.target = target
    matched, unused = addon.retarget_operators.auto_map(target)
    assert matched == 2 and not unused
    target.il_retarget.mapping[0].target_key = "JawOpen"  # a hand edit: eyeBlinkLeft now drives JawOpen
    expected = to_arkit52(rig_objects.solve.expressions)[3]
    clip_name = clip.name
    path = tmp_path / "rig.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))

    bpy.ops.wm.open_mainfile(filepath=str(path))
    target = bpy.data.objects["Character"]
    mapping = [(m.arkit_name, m.target_key) for m in target.il_retarget.mapping]
    assert len(mapping) == len(ARKIT52_NAMES)
    assert mapping[0] == ("eyeBlinkLeft", "JawOpen")
    assert dict(mapping)["jawOpen"] == "JawOpen"
    assert bpy.context.scene.il_rig.target == target
    rig_objects = addon.rig.find_rig(clip_name)
    assert rig_objects is not None and len(rig_objects.frames) == NUM_FRAMES - 1
    weights = keyed_weights(addon, rig_objects, np.array([4.0]))[0]
    np.testing.assert_allclose(weights, expected, atol=1e-5)


def test_overlay_in_background_mode(addon, scene, truth: Truth) -> None:
    scene, clip = scene
    assert bpy.app.background
    addon.overlay.register()
    assert addon.overlay._handles == []
    addon.overlay.unregister()
    addon.overlay.unregister()  # twice is harmless

    # The data it would draw: stored tracking results of the current frame, and pixels placed on the camera frame.
    tracking = addon.tracking
    tracking.store_results(clip, tracking_results(truth), merge=False)
    assert addon.overlay.frame_points(clip, NO_FACE_ROW + 1) is None
    pixels, visibility, points, _, _ = addon.overlay.frame_points(clip, 3)
    np.testing.assert_allclose(pixels, truth.results.landmarks_2d[2])
    colors = addon.overlay.point_colors(np.array([1.0, 0.1]))
    assert colors[0][1] > colors[0][0] and colors[1][0] > colors[1][1]  # green visible, red hidden

    rig_objects = addon.rig.build_rig(scene, clip, tracking.load_results(clip))
    scene.frame_set(3)
    world = addon.overlay.pixels_on_camera_frame(rig_objects.camera, scene, pixels[:20], WIDTH, HEIGHT)
    for point, pixel in zip(world, pixels[:20]):
        ndc = world_to_camera_view(scene, rig_objects.camera, mathutils.Vector(point))
        assert np.allclose([ndc.x * WIDTH, (1 - ndc.y) * HEIGHT], pixel, atol=1e-3)


def test_operators_build_map_bake_and_clear(addon, scene, truth: Truth) -> None:
    """The buttons' glue: stored tracking -> Build Rig -> Auto-map -> Bake -> Clear Rig, and the clear error."""
    scene, clip = scene
    addon.tracking.store_results(clip, tracking_results(truth), merge=False)
    scene.active_clip = clip
    assert bpy.ops.infinite_landmarks.build_rig() == {"FINISHED"}
    assert addon.rig.find_rig(clip.name) is not None

    target = make_target("Character", ["EyeBlink_L", "jaw_open"])
    scene.il_rig.target = target
    assert bpy.ops.infinite_landmarks.auto_map() == {"FINISHED"}
    assert {m.arkit_name: m.target_key for m in target.il_retarget.mapping}["jawOpen"] == "jaw_open"
    assert bpy.ops.infinite_landmarks.retarget(bake=True) == {"FINISHED"}
    assert target.data.shape_keys.animation_data.action.name == f"IL_{clip.name}_Character"

    unmatched = make_target("Prop", ["Foo"])
    scene.il_rig.target = unmatched
    with pytest.raises(RuntimeError, match="no shape key matching"):  # bpy.ops raises an operator's error report
        bpy.ops.infinite_landmarks.retarget(bake=True)
    assert unmatched.data.shape_keys.animation_data is None

    assert bpy.ops.infinite_landmarks.clear_rig() == {"FINISHED"}
    assert addon.rig.find_rig(clip.name) is None
    assert target.data.shape_keys.animation_data.action is not None  # a bake is the user's now: kept
