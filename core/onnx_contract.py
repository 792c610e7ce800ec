"""The exported detector's ONNX contract: graph input and output names, and the metadata's producer and format.

The export (`core.model.onnx_export`, `training.export`) writes a graph with these names and this producer and
format version; the runtime (`core.runtime.session`) reads it by them. Torch-free, so the Blender extension, which
ships `core` without `core/model`, has it too. Inputs and outputs (`onnx_io_names` orders them):

    image       (B, 3, H, W) float in [0, 1]
    queries     (N, 3) canonical cm
    theta       (B, 2, 3) the STN's starting crop (the previous frame's theta, or the whole frame); without an STN,
                or with direct_crop, the crop itself
    normals     (N, 3) canonical surface normals at the queries (3D head)
    style_ids   (B,) int64 annotation style (semantic correction)
    direct_crop, crop, find_face: see DIRECT_CROP_INPUT, DIRECT_CROP_PIXELS_INPUT and FIND_FACE_INPUT (STN)
    ->
    points_2d (B, N, 2), theta_out (B, 2, 3), confidence (B,) face presence in 0..1, and with a 3D head
    points_3d (B, N, 3), K (B, 3, 3), R (B, 3, 3), t (B, 3), visibility (B, N)
"""
from __future__ import annotations

from typing import Protocol

PRODUCER = "infinite_landmarks"
# What the export writes and the newest the runtime reads. 2: direct runs take their crop's pixels (the `crop`
# input); 3: the `find_face` input.
FORMAT_VERSION = 3

REQUIRED_INPUTS = ("image", "queries", "theta")
REQUIRED_OUTPUTS = ("points_2d", "theta_out", "confidence")
NORMALS_INPUT = "normals"  # a 3D head's facing test
CAMERA_OUTPUTS = ("points_3d", "K", "R", "t", "visibility")
STYLE_INPUT = "style_ids"
# Graph input of a model with an STN: a bool scalar, true to use `theta` as the crop itself instead of the STN's
# crop, as when refining or tracking from the crop around known landmarks: what the detector saw in training as
# the jittered box crop (data.teacher_crops). The export moves the STN into an If on it, so such a run does not
# compute the STN at all.
DIRECT_CROP_INPUT = "direct_crop"
# With direct_crop, the crop's pixels (B, 3, crop_size, crop_size) in [0, 1], sampled by the caller at theta (the
# runtime samples them with OpenCV, cheaper than onnxruntime's GridSample); `image` then only gives the frame
# size. Without direct_crop it is not read (any values, e.g. zeros).
DIRECT_CROP_PIXELS_INPUT = "crop"
# Graph input of a model with a face finder: a bool scalar, true when every row's `theta` is the whole frame (the
# first run on an image), so the crop is the finder's and the STN's passes are skipped (an If on it); false
# otherwise (each row still gets the finder's crop if its theta is the whole frame).
FIND_FACE_INPUT = "find_face"


class GraphOptions(Protocol):
    """The model options that decide the graph's inputs and outputs (core.model.ModelConfig has them)."""

    head: str                   # "3d" | "2d"
    semantic_correction: bool
    stn: bool
    stn_finder: bool


def onnx_io_names(config: GraphOptions) -> tuple[list[str], list[str]]:
    """Input and output names of the graph exported from a model with `config`, in the graph's order."""
    inputs = list(REQUIRED_INPUTS)
    outputs = list(REQUIRED_OUTPUTS)
    if config.head == "3d":
        inputs.append(NORMALS_INPUT)
        outputs += CAMERA_OUTPUTS
    if config.semantic_correction:
        inputs.append(STYLE_INPUT)
    if config.stn:
        inputs += [DIRECT_CROP_INPUT, DIRECT_CROP_PIXELS_INPUT]
        if config.stn_finder:
            inputs.append(FIND_FACE_INPUT)
    return inputs, outputs
