"""Every piece of text the add-on shows (UI labels, tooltips, reports, status, command-line help and messages).

One place so wording stays consistent and can be translated later. Placeholders use str.format names. The
tracking job's own errors and status line come with it from core.runtime.track.
"""
from __future__ import annotations

# --- panels ----------------------------------------------------------------------------------------------------
PANEL_CATEGORY = "Landmarks"
PANEL_TRACKING = "Face Tracking"

UI_USING_CLIP = "Using clip: {clip}"
UI_FRAMES = "Frames"
UI_RUNNING = "Tracking..."
UI_ESC_TO_CANCEL = "Press Esc to stop (tracked frames are kept)"
UI_RESULTS = "Tracked: {clip}"
UI_RESULTS_SETUP = "{layout}, {points} points, {semantics} semantics"
UI_RESULTS_RANGE = "Frames {start} - {end}"
UI_RESULTS_FOCAL = "Focal length ~ {mm:.1f} mm (36 mm sensor)"

# --- tracking settings (scene.il_tracking) ----------------------------------------------------------------------
PROP_CLIP = "Clip"
PROP_CLIP_DESC = "Movie clip to track (empty: the clip of the Movie Clip editor, else the scene's active clip)"
PROP_MODEL = "Model File"
PROP_MODEL_DESC = ("Landmark model (.onnx) for this scene. Empty: the model set in the add-on preferences, "
                   "else the bundled model chosen above")
PROP_BUNDLED_MODEL = "Model"
PROP_BUNDLED_MODEL_DESC = "Which bundled landmark model tracks (a Model File, here or in the preferences, wins)"
# The bundled models (core.runtime.session.BUNDLED_MODELS): label, description.
BUNDLED_MODEL_LABELS = {
    "default": ("Default", "The most precise model. Trained with research-only data (300-W): see MODEL_CARD.md "
                           "before commercial use"),
    "permissive": ("Permissive", "Trained on synthetic renders and CC BY photos only (PERMISSIVE_MODEL_CARD.md): "
                                 "usable in any project, less precise"),
}
PROP_LAYOUT = "Layout"
PROP_LAYOUT_DESC = "Which landmarks to track: a built-in layout or your own layout file"
PROP_LAYOUT_PATH = "Layout File"
PROP_LAYOUT_PATH_DESC = "Layout .json file (points on the canonical face; see the layouts README)"
PROP_SEMANTICS = "Semantics"
PROP_SEMANTICS_DESC = "Annotation style the landmarks follow (e.g. 300-W's 2D jaw line or AFLW2000-3D's 3D one)"
PROP_USE_RANGE = "Limit Range"
PROP_USE_RANGE_DESC = "Track only the frames below (scene frames); otherwise the whole clip"
PROP_FRAME_START = "Start"
PROP_FRAME_START_DESC = "First scene frame to track"
PROP_FRAME_END = "End"
PROP_FRAME_END_DESC = "Last scene frame to track"
PROP_SMOOTHING = "Smoothing"
PROP_SMOOTHING_DESC = ("Temporal smoothing (One Euro filter): 0 is off, 0.5 the default, 1 strong. "
                       "Removes jitter on a still face without lagging fast motion")
PROP_MIRROR = "Mirrored Runs"
PROP_MIRROR_DESC = ("Also run each frame's face crop mirrored and average the two: steadier, more accurate "
                    "landmarks, tracking takes twice as long")
PROP_THRESHOLD = "Face Threshold"
PROP_THRESHOLD_DESC = "Frames where the model's face confidence is below this are marked as 'no face'"
PROP_WRITE_MARKERS = "Write Markers"
PROP_WRITE_MARKERS_DESC = ("Also write one tracking track per landmark (tracking object 'Infinite Landmarks'); "
                           "hidden landmarks and frames without a face get disabled markers")
PROP_STATUS = "Status"
PROP_PROGRESS = "Progress"

LAYOUT_LABELS = {"ibug68": "iBUG 68", "ibug68_ls3d": "iBUG 68, as annotated", "wflw98": "WFLW 98", "dense": "Dense",
                 "frl": "FRL 176"}
LAYOUT_DESCRIPTIONS = {
    "ibug68": "The 68 points of iBUG 300-W (jaw, brows, nose, eyes, lips)",
    "ibug68_ls3d": ("The 68 points where AFLW2000-3D's annotators put them, fixed on the face (fitted to "
                    "research-only labels; use with Canonical semantics)"),
    "frl": "The Face Research Lab template's points (176 of 189)",
    "wflw98": "The 98 points of WFLW",
    "dense": "An even sampling of the whole face",
}
LAYOUT_BUILTIN_DESC = "Built-in layout"
LAYOUT_CUSTOM_LABEL = "Custom File"
LAYOUT_CUSTOM_DESC = "Your own layout .json file"

SEMANTICS_LABELS = {"canonical": "Canonical", "ibug2d": "300-W (2D)", "aflw3d": "AFLW2000-3D", "wflw": "WFLW",
                    "cofw": "COFW"}
SEMANTICS_DESCRIPTIONS = {
    "canonical": "Fixed points on the face surface (best for 3D and rigs)",
    "ibug2d": "300-W style: the jaw follows the 2D silhouette",
    "aflw3d": "AFLW2000-3D style: 3D-consistent jaw",
    "wflw": "WFLW annotation style",
    "cofw": "COFW annotation style",
}

# --- preferences ------------------------------------------------------------------------------------------------
PREF_MODEL = "Model Override"
PREF_MODEL_DESC = "Use this landmark model (.onnx) instead of the bundled ones (a scene's own Model File wins)"
PREF_THREADS = "Threads"
PREF_THREADS_DESC = "CPU threads for the landmark model (0: all cores)"
PREF_DEFAULT_MODEL = "Bundled model {name}: {path}"
PREF_NO_DEFAULT_MODEL = "This build has no bundled model: set a Model Override"

# --- operators --------------------------------------------------------------------------------------------------
OP_TRACK = "Track Face"
OP_TRACK_DESC = "Track facial landmarks through the clip (Esc stops and keeps the frames tracked so far)"
OP_CLEAR = "Clear Tracking"
OP_CLEAR_DESC = "Remove this clip's tracking results and landmark markers"
POLL_NO_CLIP = "Choose a clip to track (or open one in the Movie Clip editor)"
POLL_RUNNING = "Tracking is already running"

STATUS_DONE = "Tracking done: {summary}"
STATUS_CANCELLED = "Tracking stopped: kept {summary}"
STATUS_INCOMPLETE = ("Only {read} of the {expected} frames could be decoded (a truncated or damaged file): kept "
                     "{summary}")
STATUS_CLIP_GONE = "The clip was removed while tracking: nothing was stored"
STATUS_CLEARED = "Cleared the tracking of {clip}"
SUMMARY = "{frames} frames, a face in {found} ({percent:.0f}%)"
NO_FACE_FOUND = "No face found in {clip}: every frame was marked 'no face' (check the footage, or lower the Face Threshold)"

# --- errors (operators and command line) -------------------------------------------------------------------------
ERR_NO_CUSTOM_LAYOUT = "Layout is 'Custom File' but no layout file is set"
ERR_UNEXPECTED = "Unexpected {kind}: {detail} (details in the system console)"

# --- command line ------------------------------------------------------------------------------------------------
CLI_DESCRIPTION = """Track faces in clips, build the face rig, optionally retarget it, and save a .blend.

Outputs are checked before any clip is tracked: an input is never written over, and an existing file is
refused unless --overwrite (the .blend open in Blender may always be saved again, keeping its data). With
several clips, --preview, --results and --check get each clip's name appended (`_2`, ... for equal names).

Exit status: 0 all clips done and read whole; 1 a clip failed (unreadable or only partly decodable, no face
found, rig or retarget error, an output not written; the other clips are still processed and saved); 2 nothing
could start (arguments, model, layout, semantics or an output path)."""
CLI_HELP_CLIPS = "video file or folder of images (several clips: each gets its own clip, rig and results)"
CLI_HELP_OUTPUT = "the .blend file to write"
CLI_HELP_TARGET = "character .blend to retarget onto (with --target-object: which object in it)"
CLI_HELP_TARGET_OBJECT = "name of the target object (in --target's file, or in the current file without --target)"
CLI_HELP_TARGET_HEAD = "bone of the target's armature (or an object) that receives the head motion"
CLI_HELP_LIVE = "drive the target from the rig (drivers, constraints) instead of baking keys onto it"
CLI_HELP_LAYOUT = "built-in layout name (ibug68, wflw98, dense) or a layout .json path (default ibug68)"
CLI_HELP_SEMANTICS = "annotation semantics (default canonical)"
CLI_HELP_MODEL = "a bundled model by name (default, permissive) or a landmark model .onnx (default: default)"
CLI_HELP_THRESHOLD = "face confidence threshold, 0..1 (default 0.5)"
CLI_HELP_SMOOTHING = "temporal smoothing, 0 (off) .. 1 (strong) (default 0.5)"
CLI_HELP_MIRROR = "also run each face crop mirrored and average: steadier, more accurate, 2x slower"
CLI_HELP_THREADS = "CPU threads for the model (default 0: all cores)"
CLI_HELP_NO_MARKERS = "do not write tracking markers"
CLI_HELP_NO_RIG = "only track: no rig, no retargeting"
CLI_HELP_PREVIEW = "also write a video of the footage with the tracked landmarks drawn (.mp4)"
CLI_HELP_RESULTS = "also write the per-frame tracking results as arrays (.npz)"
CLI_HELP_CHECK = "also write a check image: the footage beside the rig rendered over it, landmarks drawn (.png)"
CLI_HELP_OVERWRITE = "replace existing output files (never an input); without it they are refused"
CLI_WROTE = "wrote {path}"
CLI_ERROR_PREFIX = "error: "
CLI_MODEL = "model: {model}"
CLI_TRACKING = "tracking {clip} ({width}x{height}, {frames} frames)"
CLI_TRACKED = "{clip}: {summary} in {seconds:.1f} s"
CLI_RIG = "{clip}: rig built ({head}, {camera}), {frames} frames keyed"
CLI_TARGET_COLLECTION = "IL_target_{name}"
CLI_CURRENT_FILE = "the current file"
CLI_SAVED = "saved {path} ({clips})"
CLI_NOTHING_SAVED = "no clip succeeded: {path} was not written"
CLI_ERR_OUTPUT_SUFFIX = "--output must be a .blend file, not {path}"
CLI_ERR_SAVE = "cannot save {path}: {detail}"
CLI_ERR_INCOMPLETE = ("{clip}: only {read} of the {expected} frames could be decoded (a truncated or damaged file): "
                      "its results, rig and outputs cover those frames")
CLI_ERR_TARGET_MISSING = "target file not found: {path}"
CLI_ERR_CLIP_LOAD = "Blender cannot open {path} as a movie clip"
CLI_ERR_RIG = "{clip}: cannot build the rig: {detail}"
CLI_ERR_RETARGET = "{clip}: cannot retarget: {detail}"
CLI_ERR_TARGET = "cannot use the retarget target: {detail}"
CLI_ERR_TARGET_OBJECT = "target object '{name}' not found"
CLI_ERR_TARGET_OBJECT_IN_FILE = "{path} has no object called '{name}'"
CLI_ERR_TARGET_NONE = "{path} has no mesh with shape keys matching ARKit names: use --target-object"

# ================================================================================================================
# --- rig, overlay and retargeting (scene/, overlay.py, operators/rig.py, operators/retarget.py, ui_rig.py) ------
# ================================================================================================================
PANEL_RIG = "Face Rig"
PANEL_RETARGET = "Retarget"

# rig settings (scene.il_rig)
PROP_SENSOR = "Sensor Width"
PROP_SENSOR_DESC = "Camera sensor width (mm) used to turn the predicted focal length (pixels) into millimetres"
PROP_ANIMATED_FOCAL = "Animated Zoom"
PROP_ANIMATED_FOCAL_DESC = ("Key the focal length on every frame (zooming footage). Off: one robust focal length "
                            "for the whole shot (median without outliers)")
PROP_POSE_MODE = "Motion On"
PROP_POSE_MODE_DESC = "Which object carries the head motion"
POSE_HEAD = "Head"
POSE_HEAD_DESC = "Static camera (first tracked frame's pose), moving head: best for retargeting head motion"
POSE_CAMERA = "Camera"
POSE_CAMERA_DESC = "Head fixed at the origin, moving camera: useful for attaching props to the face"
PROP_IDENTITY_MODES = "Identity Modes"
PROP_IDENTITY_MODES_DESC = "How many ICT identity modes fit the subject's face shape (0: the average face)"
PROP_EXPR_SMOOTHING = "Expression Smoothing"
PROP_EXPR_SMOOTHING_DESC = "Temporal smoothing of the expression solve (0: every frame on its own)"
PROP_COMBINE = "Symmetric Shapes"
PROP_COMBINE_DESC = "How ICT's left/right halves of browInnerUp and cheekPuff make ARKit's single shape"
COMBINE_MEAN = "Mean"
COMBINE_MEAN_DESC = "Average of both halves (a one-sided raise becomes a half raise)"
COMBINE_MAX = "Max"
COMBINE_MAX_DESC = "Stronger half (a one-sided raise stays at full strength)"

# overlay
PROP_SHOW_LANDMARKS = "Landmarks"
PROP_SHOW_LANDMARKS_DESC = ("Draw the current frame's landmarks over the clip (Movie Clip editor and camera view): "
                            "green visible, red hidden")
PROP_SHOW_POINTS_3D = "3D Points"
PROP_SHOW_POINTS_3D_DESC = "Draw the predicted 3D points (the learned face shape) on the rig's head"
PROP_POINT_SIZE = "Point Size"
PROP_POINT_SIZE_DESC = "Size of the overlay points in pixels"
UI_OVERLAY = "Overlay"

# retarget settings
PROP_TARGET = "Target"
PROP_TARGET_DESC = "Mesh with shape keys that receives the expressions"
PROP_HEAD_OBJECT = "Head"
PROP_HEAD_OBJECT_DESC = "Object (or armature, with a bone below) that receives the head motion; empty: none"
PROP_HEAD_BONE = "Bone"
PROP_HEAD_BONE_DESC = "Bone of the head armature that receives the head motion (in its rest frame)"
PROP_MAP_ARKIT = "ARKit Shape"
PROP_MAP_ARKIT_DESC = "ARKit blendshape of the rig"
PROP_MAP_TARGET = "Target Key"
PROP_MAP_TARGET_DESC = "Shape key of the target that follows it (empty: not retargeted)"
PROP_BAKE = "Bake"
PROP_BAKE_DESC = "Write keys into actions (IL_<clip>_<target>) instead of live drivers and constraints"

# operators
OP_BUILD_RIG = "Build Rig"
OP_BUILD_RIG_DESC = ("Build the camera, the subject's head with ARKit shape keys and its animation from the "
                     "clip's tracking (replaces only what the add-on made for this clip)")
OP_CLEAR_RIG = "Clear Rig"
OP_CLEAR_RIG_DESC = "Remove the rig the add-on built for this clip (your own objects and actions stay)"
OP_AUTO_MAP = "Auto-map"
OP_AUTO_MAP_DESC = "Match the target's shape keys to the ARKit names (any Left/Right, _L/_R, prefix or case)"
OP_RETARGET = "Drive"
OP_RETARGET_DESC = "Drive the target's shape keys (and head) live from the rig"
OP_BAKE = "Bake"
OP_BAKE_DESC = "Bake the rig's expressions (and head motion) into actions on the target"
OP_MAP_ADD = "Add Row"
OP_MAP_ADD_DESC = "Add a mapping row (e.g. to drive two target keys from one ARKit shape)"
OP_MAP_REMOVE = "Remove Row"
OP_MAP_REMOVE_DESC = "Remove the selected mapping row"
POLL_NO_TRACKING = "Track the clip first"
POLL_NO_RIG = "Build the rig first"
POLL_NO_TARGET = "Choose a target mesh with shape keys"

# reports
RIG_BUILT = "Rig built for {clip}: {frames} frames keyed, focal {mm:.1f} mm, solve {seconds:.1f} s"
RIG_CLEARED = "Removed {count} data-blocks of the {clip} rig"
RIG_NOTHING_TO_CLEAR = "No rig for {clip}"
AUTO_MAPPED = "Mapped {matched} of {total} ARKit shapes onto {target}"
AUTO_MAPPED_UNUSED = "; target keys left over: {keys}"
AUTO_MAP_NONE = "{target}: no shape key matches an ARKit name; edit the mapping by hand"
RETARGETED = "{mode} {count} shape keys of {target}{head}"
RETARGET_HEAD = ", head motion onto {head}"
RETARGET_MISSING = "Mapping names shape keys that {target} lacks: {keys}"
MODE_DRIVEN = "Driving"
MODE_BAKED = "Baked"

# errors (scene/rig.py, scene/retarget.py)
ERR_NO_TRACKING = "{clip} has no tracking results: track it first"
ERR_NO_FACE_FRAMES = "{clip}: no tracked frame has a face and a 3D head"
ERR_POSE_MODE = "Unknown pose mode {mode!r} (HEAD or CAMERA)"
ERR_NO_RIG = "No rig for clip '{clip}': build the rig first"
ERR_RIG_NO_FRAMES = "The rig of '{clip}' has no keyed frames"
ERR_TARGET_NO_KEYS = "'{target}' has no shape keys: nothing was retargeted"
ERR_TARGET_NO_MATCH = ("'{target}' has no shape key matching the mapping: nothing was retargeted. Use Auto-map, "
                       "or edit the mapping so that it names the target's shape keys")
ERR_NOTHING_TO_RETARGET = "Nothing to retarget: choose a target mesh with shape keys or a head target"
ERR_HEAD_NO_ARMATURE = "Head bone '{bone}': {target} has no armature"
ERR_HEAD_NO_BONE = "Head bone '{bone}' is not a bone of armature '{armature}'"
NOTE_HEAD_BAKED = "the rig animates its camera, so the head motion was baked"
NOTE_ACTION_MOVED = "'{action}' moved to the NLA track '{track}' of {target}"
