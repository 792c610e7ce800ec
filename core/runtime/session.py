"""The exported detector in onnxruntime: one image (RGB, any size) -> landmarks, visibility, 3D points, camera.

    model = LandmarkModel()                             # assets/models/default.onnx, or LandmarkModel("m.onnx")
    face = model.predict(image_rgb, layout="ibug68")    # FaceResult; face.found when confidence >= threshold

The graph's input and output names, producer and format version are core.onnx_contract's. Every image is fitted
(resize keeping the aspect ratio, centred padding) to the export size stored in the file's metadata (see
images.fit_to_input), and the outputs are mapped back to the original image's pixels; K is the same camera for the
original image. Runs on a known crop (refinements, tracking) read it at up to the image's own resolution instead
(`LandmarkModel.run_crop`). Without a prior, which runs `predict` makes and keeps is core.runtime.search's.
No torch here: this module runs inside Blender with numpy, onnxruntime and OpenCV.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import geometry
from ..layouts import SEMANTICS, Layout, load_layout
from ..onnx_contract import (CAMERA_OUTPUTS, DIRECT_CROP_INPUT, DIRECT_CROP_PIXELS_INPUT, FIND_FACE_INPUT,
                             FORMAT_VERSION, PRODUCER, REQUIRED_INPUTS, REQUIRED_OUTPUTS)
from ..paths import ASSETS_DIR
from .images import ImageFit, fit_geometry, render_fit, sample_crop, to_rgb_uint8
from .search import MAX_REFINEMENTS, SEARCH_MODES, find_face, full_frame_theta

log = logging.getLogger(__name__)

MODELS_DIR = ASSETS_DIR / "models"
# The models that ship, by name: `default` (trained with research-only data, see its card) and `permissive`
# (synthetic renders and CC BY photos only). Each file's card is MODEL_CARD.md / PERMISSIVE_MODEL_CARD.md beside it.
BUNDLED_MODELS = {"default": "default.onnx", "permissive": "permissive.onnx"}
DEFAULT_MODEL_PATH = MODELS_DIR / BUNDLED_MODELS["default"]
DEFAULT_INPUT_HW = (256, 256)
DEFAULT_THRESHOLD = 0.5
POSE_FIT_MIN_POINTS = 6  # fewer points than this keep the 3D head's own pose


class ModelNotFoundError(FileNotFoundError):
    """No model file at the given (or default) path."""


class ModelLoadError(RuntimeError):
    """A file that is not a usable detector ONNX model."""


def available_models() -> list[str]:
    """The names of the bundled models whose file is present (BUNDLED_MODELS order)."""
    return [name for name, file in BUNDLED_MODELS.items() if (MODELS_DIR / file).is_file()]


def model_path(name_or_path: str | Path | None) -> Path:
    """The file of a bundled model's name (BUNDLED_MODELS), else the path itself; None is the default model."""
    if name_or_path is None:
        return DEFAULT_MODEL_PATH
    if isinstance(name_or_path, str) and name_or_path in BUNDLED_MODELS:
        return MODELS_DIR / BUNDLED_MODELS[name_or_path]
    return Path(name_or_path)


# The next frame's crop (and a refinement's) is the box of this frame's landmarks scaled by the training crop's
# scale (data.crop_scale, stored in the model file's metadata; this when a file does not say), used as is: anchored
# to the face every frame, where re-using the STN's own crop lets its small zoom bias compound.
DEFAULT_CROP_SCALE = 1.3


def landmark_prior(points: np.ndarray, input_hw: tuple[int, int], scale: float = DEFAULT_CROP_SCALE) -> np.ndarray:
    """(2, 3) theta of the square crop of side max(w, h) * scale on the box of `points` (model-input pixels)."""
    h, w = input_hw
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    side = max(x1 - x0, y1 - y0) * scale
    return np.array([[side / w, 0.0, (x0 + x1) / w - 1], [0.0, side / h, (y0 + y1) / h - 1]])


# A run on a crop as is (a refinement, a tracked frame) reads the crop's pixels from the image itself, fitted at up
# to this many times the model input's resolution (never finer than the image): a face small in a large frame is
# then as sharp as the frame allows, not as the input's 256 px allow. The cap bounds the canvas (1024 px).
MAX_CROP_ZOOM = 4


def crop_zoom(theta: np.ndarray, fit: ImageFit, crop_size: int, max_zoom: int = MAX_CROP_ZOOM) -> int:
    """How many times the input's resolution a direct crop `theta` is read at: its side about `crop_size` px."""
    h, w = fit.input_hw
    theta = np.asarray(theta, np.float64).reshape(2, 3)
    side = float(np.sqrt(abs(np.linalg.det(theta[:, :2])) * w * h))  # px of the model input (a square's side)
    wanted = crop_size / max(side, 1e-6)
    return int(max(1, min(np.floor(wanted + 0.5), np.floor(1 / fit.scale + 0.5), max_zoom)))


@dataclass
class FaceResult:
    """One face in one image. 2D and camera quantities are in the ORIGINAL image's pixels.

    landmarks_3d, K, R and t are None for a model without a 3D head (and visibility is then all ones).
    `theta` (2, 3), in model-input space, is the prior for the next frame of a video: the crop around these
    landmarks (`landmark_prior`) when a face was found, else the STN's crop. `searched`: `predict` ran its
    multi-start search for this face (the full-frame start was unsure, or search="always").
    """

    confidence: float
    found: bool
    landmarks_2d: np.ndarray            # (N, 2)
    visibility: np.ndarray              # (N,)
    landmarks_3d: np.ndarray | None     # (N, 3) canonical cm
    K: np.ndarray | None                # (3, 3)
    R: np.ndarray | None                # (3, 3) canonical -> camera
    t: np.ndarray | None                # (3,) cm
    theta: np.ndarray                   # (2, 3)
    searched: bool = False

    def to_json(self) -> dict[str, Any]:
        """The per-face dict of the `python -m core.predict` contract (conventions.md)."""
        def listed(a: np.ndarray | None, digits: int) -> Any:
            return None if a is None else np.round(np.asarray(a, np.float64), digits).tolist()

        return {"confidence": round(float(self.confidence), 5),
                "landmarks_2d": listed(self.landmarks_2d, 3),
                "visibility": listed(self.visibility, 4),
                "landmarks_3d": listed(self.landmarks_3d, 4),
                "K": listed(self.K, 4), "R": listed(self.R, 6), "t": listed(self.t, 4)}


class LandmarkModel:
    """An exported detector loaded in onnxruntime (CPU). One per thread: runs reuse their unread zero inputs."""

    def __init__(self, path: str | Path | None = None, threads: int | None = None,
                 threshold: float = DEFAULT_THRESHOLD, spin: bool = False, max_crop_zoom: int = MAX_CROP_ZOOM) -> None:
        """`threads`: onnxruntime intra-op threads (None: onnxruntime's default, all cores). `spin`: let idle
        worker threads busy-wait between operators (a little faster on an idle machine, much slower on a busy
        one, e.g. inside Blender or beside training jobs). `max_crop_zoom`: see MAX_CROP_ZOOM (1: crops are read
        from the image fitted to the input, as the full-frame runs are)."""
        import onnxruntime as ort  # here, so image and video readers import without onnxruntime installed

        self.path = model_path(path)
        self.threshold = threshold
        self.max_crop_zoom = max(1, int(max_crop_zoom))
        if not self.path.is_file():
            present = ", ".join(available_models()) or "none"
            hint = ("train a model and export it with `python -m training.export CHECKPOINT "
                    f"{self.path}`, or pass another model with --model NAME_OR_PATH (bundled here: {present})")
            bundled = path is None or (isinstance(path, str) and path in BUNDLED_MODELS)
            what = "bundled model" if bundled else "model file"
            raise ModelNotFoundError(f"{what} {self.path} not found: {hint}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or 0)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        options.log_severity_level = 3  # onnxruntime's warnings about unused initialisers are noise here
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several private exception types
            raise ModelLoadError(f"{self.path} is not a valid ONNX model ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:200]})") from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        missing = [n for n in REQUIRED_INPUTS if n not in self.input_names] + \
                  [n for n in REQUIRED_OUTPUTS if n not in self.output_names]
        if missing:
            raise ModelLoadError(f"{self.path} is an ONNX model but not an Infinite Landmarks detector "
                                 f"(missing {', '.join(missing)}; has inputs {self.input_names}, "
                                 f"outputs {self.output_names})")
        self.has_3d = all(n in self.output_names for n in CAMERA_OUTPUTS)
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        if self.metadata.get("producer") != PRODUCER:
            log.warning("%s has no Infinite Landmarks metadata: assuming a %dx%d input", self.path, *DEFAULT_INPUT_HW)
        elif int(self.metadata.get("format_version", "1")) > FORMAT_VERSION:
            log.warning("%s was exported by a newer version (metadata format %s > %d): update the runtime",
                        self.path, self.metadata["format_version"], FORMAT_VERSION)
        self.input_hw: tuple[int, int] = tuple(json.loads(self.metadata.get("image_size", "null"))
                                               or DEFAULT_INPUT_HW)  # type: ignore[assignment]
        self.config: dict[str, Any] = json.loads(self.metadata.get("model_config", "{}"))
        self.crop_scale = float(self.metadata.get("crop_scale", DEFAULT_CROP_SCALE))
        self.semantics: dict[str, int] = json.loads(self.metadata["semantics"]) if "semantics" in self.metadata \
            else dict(SEMANTICS)
        self._queries: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self.crop_size = int(self.config.get("crop_size", 128))
        self._zeros: dict[tuple[int, ...], np.ndarray] = {}  # unread inputs: run_crop's frame, run's crop pixels

    def __repr__(self) -> str:
        return f"LandmarkModel({str(self.path)!r}, input {self.input_hw[0]}x{self.input_hw[1]}, 3D head {self.has_3d})"

    def queries(self, layout: str | Path | Layout) -> tuple[np.ndarray, np.ndarray]:
        """(canonical points (N, 3), normals (N, 3)) float32 of a layout name, layout file or Layout; cached."""
        if not isinstance(layout, Layout):
            layout = load_layout(str(layout))
        key = (layout.name, layout.triangles.tobytes(), layout.barycentric.tobytes())
        if key not in self._queries:
            self._queries[key] = (np.ascontiguousarray(layout.canonical_points(), np.float32),
                                  np.ascontiguousarray(layout.canonical_normals(), np.float32))
        return self._queries[key]

    def style_id(self, semantics: str) -> int:
        if semantics not in self.semantics:
            raise ValueError(f"Unknown semantics '{semantics}'; this model knows: {', '.join(self.semantics)}")
        return int(self.semantics[semantics])

    @property
    def direct_crops(self) -> bool:
        """Whether the graph can take a crop as is, its pixels sampled here (`run_crop`); older exports run every
        crop through their own sampling (`run(..., direct=True)`) or always use their STN's."""
        return DIRECT_CROP_INPUT in self.input_names and DIRECT_CROP_PIXELS_INPUT in self.input_names

    def _zeros_like(self, shape: tuple[int, ...]) -> np.ndarray:
        if shape not in self._zeros:
            self._zeros[shape] = np.zeros(shape, np.float32)
        return self._zeros[shape]

    def run(self, model_input: np.ndarray, queries: np.ndarray, normals: np.ndarray, style_id: int = 0,
            prior_theta: np.ndarray | None = None, direct: bool = False) -> dict[str, np.ndarray]:
        """Raw graph outputs for an (H, W, 3) uint8 RGB image of the input size, in model-input space, one row per
        STN prior: `prior_theta` (2, 3) or (K, 2, 3) starting crops (None: the full frame), so K rows.
        `direct`: the priors are the crops themselves, not the STN's starting points (see `direct_crops`)."""
        image = np.ascontiguousarray(model_input.transpose(2, 0, 1)[None], dtype=np.float32)
        image *= np.float32(1 / 255)
        theta = full_frame_theta(self.input_hw) if prior_theta is None else \
            np.asarray(prior_theta, np.float32).reshape(-1, 2, 3)
        crop = None
        if direct and DIRECT_CROP_PIXELS_INPUT in self.input_names:
            crop = np.stack([sample_crop(model_input, t, self.crop_size) for t in theta])
        return self._run_graph(np.repeat(image, len(theta), axis=0), queries, normals, style_id, theta, direct=direct,
                               crop=crop, find_face=prior_theta is None)

    def _run_graph(self, image: np.ndarray, queries: np.ndarray, normals: np.ndarray, style_id: int,
                   theta: np.ndarray, direct: bool, crop: np.ndarray | None = None, find_face: bool = False
                   ) -> dict[str, np.ndarray]:
        """`crop`: the direct crops' pixels (B, 3, cs, cs) in [0, 1], for `direct_crops` graphs (None: the graph
        samples them, or they are not read). `find_face`: every row of `theta` is the whole frame (a graph with a
        face finder then skips its STN's passes)."""
        batch = len(theta)
        feed = {"image": image, "queries": queries, "theta": theta, "normals": normals,
                "style_ids": np.full(batch, style_id, np.int64), DIRECT_CROP_INPUT: np.array(bool(direct)),
                FIND_FACE_INPUT: np.array(bool(find_face))}
        if DIRECT_CROP_PIXELS_INPUT in self.input_names:
            feed[DIRECT_CROP_PIXELS_INPUT] = crop if crop is not None else \
                self._zeros_like((batch, 3, self.crop_size, self.crop_size))
        # Bound inputs are read in place; session.run copies each one first (costly for run_crop's zoomed frames).
        binding = self.session.io_binding()
        for name in self.input_names:
            binding.bind_cpu_input(name, np.ascontiguousarray(feed[name]))
        for name in self.output_names:
            binding.bind_output(name)
        self.session.run_with_iobinding(binding)
        return dict(zip(self.output_names, binding.copy_outputs_to_cpu()))

    def run_crop(self, image_rgb: np.ndarray, fit: ImageFit, queries: np.ndarray, normals: np.ndarray,
                 style_id: int, theta: np.ndarray, mirror: bool = False) -> dict[str, np.ndarray]:
        """One run on the crop `theta` (2, 3) (model-input space) as is, its pixels read from the original image
        at `crop_zoom` times the input's resolution: the part of a canvas (the model input at that resolution)
        under the crop is rendered, and the crop sampled from it here (`sample_crop`). The graph's camera stays
        that of the canvas (principal point at its centre); outputs are one row, in model-input space, as `run`'s.

        `mirror`: also run the crop mirrored and average the two runs' 2D points, visibility and confidence
        (`_mirrored_run`); twice the cost of one run."""
        H, W = self.input_hw
        if not self.direct_crops:
            raise ValueError(f"{self.path} is an older export without the {DIRECT_CROP_PIXELS_INPUT} input: run "
                             "it on the fitted image with run(..., direct=True), or re-export it")
        zoom = crop_zoom(theta, fit, self.crop_size, self.max_crop_zoom)
        theta = np.asarray(theta, np.float32).reshape(1, 2, 3)
        # The box of the crop's corners (any affine crop) plus 2 px for the bilinear taps at its edge, in the canvas.
        corners = np.array([[-1, -1, 1], [1, -1, 1], [-1, 1, 1], [1, 1, 1]], np.float64) @ theta[0].T
        corners = (corners + 1) / 2 * np.array([W, H]) * zoom
        x0, y0 = np.clip(np.floor(corners.min(0)).astype(int) - 2, 0, [W * zoom, H * zoom])
        x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int) + 2, 0, [W * zoom, H * zoom])
        pixels = render_fit(image_rgb, fit.scale * zoom, (fit.offset[0] * zoom, fit.offset[1] * zoom),
                            (int(x0), int(y0), int(x1), int(y1)))
        crop = sample_crop(pixels, theta[0], self.crop_size, canvas_hw=(H * zoom, W * zoom), corner=(x0, y0))[None]
        canvas = self._zeros_like((1, 3, H * zoom, W * zoom))  # only its size is read (the frame's, for the camera)
        runs = self._run_graph(canvas, queries, normals, style_id, theta, direct=True, crop=crop)
        if mirror:
            runs = self._mirrored_run(runs, canvas, queries, normals, style_id, theta, crop)
        out = {name: value[0] for name, value in runs.items()}
        out["points_2d"] = out["points_2d"] / zoom
        if "K" in out:
            out["K"] = np.concatenate([out["K"][:2] / zoom, out["K"][2:]])
        return out

    def _mirrored_run(self, runs: dict[str, np.ndarray], image: np.ndarray, queries: np.ndarray,
                      normals: np.ndarray, style_id: int, theta: np.ndarray, crop: np.ndarray
                      ) -> dict[str, np.ndarray]:
        """`runs` (a direct run on `theta`) averaged with a run on the same crop mirrored left to right.

        The mirrored crop is theta with its x axis reversed, its pixels `crop` (1, 3, cs, cs) flipped left to
        right (the crop's pixel centres are symmetric about its middle). The graph sees a mirror image of the
        face, so it is asked for the mirrored queries (canonical x -> -x; the canonical face is symmetric about
        x = 0): the mirror face's point at -x is the image of the face's point at x. Its points come back
        through theta, so they are already in this image's pixels. Averaging the two halves the network's
        left-right biases and some of its noise (less jitter on warped real photos: docs/measurements.md). The 3D outputs (points_3d, K, R, t) stay
        those of the direct run: the mirrored run's camera has a reflection in it.
        """
        flip = np.array([-1.0, 1.0, 1.0], np.float32)
        mirrored_theta = np.ascontiguousarray(theta * flip)  # the crop's x axis (theta's first column) reversed
        mirrored = self._run_graph(image, np.ascontiguousarray(queries * flip), np.ascontiguousarray(normals * flip),
                                   style_id, mirrored_theta, direct=True,
                                   crop=np.ascontiguousarray(crop[..., ::-1]))
        out = dict(runs)
        for name in ("points_2d", "visibility", "confidence"):
            if name in runs:
                out[name] = (runs[name] + mirrored[name]) / 2
        return out

    def predict(self, image_rgb: np.ndarray, layout: str | Path | Layout = "ibug68", semantics: str = "canonical",
                prior_theta: np.ndarray | None = None, search: str = "auto", refine: int = MAX_REFINEMENTS,
                mirror: bool = False, fit_pose: bool = True) -> FaceResult:
        """The face in an RGB image (uint8, or uint16 / float in [0, 1], gray or with alpha), in its pixels.

        `prior_theta` (2, 3): the previous frame's `FaceResult.theta` (same image size), the crop around its
        landmarks; one run, on that crop as is. Without it the STN finds the face, then up to `refine` more runs
        each look at the crop around the last run's landmarks, the second and later ones only while that crop still
        moves (`search.STEADY_CROP_OVERLAP`). Where the STN starts (`search`, see `search.find_face`):
        - "never": from the full frame only (it can settle on a face-like distractor);
        - "always": from several crops (`search.search_priors`), keeping the face most of them agree on: the full
          frame and up to nine half-side crops in one batch, then larger crops when that face is not sure;
        - "auto": from the full frame, and "always" when that face is not sure: the search's accuracy at about the
          cost of "never" on most images.
        The crops around landmarks are used as is (`direct_crops`): they frame the face as the detector's training
        crops did, and on held-out synthetic images the refinement's error is lower that way (docs/measurements.md).
        `mirror`: each run on a known crop (the prior, refinements) also runs mirrored, averaged (`run_crop`):
        more accurate (docs/benchmarks.md, mirrored rows) for one more run per refinement. Off by default, so that one image costs about what
        MediaPipe's does (bench.benchmark).
        `fit_pose`: R and t are fitted to the 2D points (`_result`); False keeps the 3D head's regressed pose.
        """
        if search not in SEARCH_MODES:
            raise ValueError(f"search must be one of {', '.join(SEARCH_MODES)}, got {search!r}")
        if prior_theta is not None:
            prior_theta = np.asarray(prior_theta, np.float64)
            if prior_theta.shape != (2, 3) or not np.isfinite(prior_theta).all():
                raise ValueError(f"prior_theta must be a finite (2, 3) crop (a FaceResult.theta), got "
                                 f"{np.array2string(prior_theta, precision=3)}")
        image = np.asarray(image_rgb)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            image = to_rgb_uint8(image)
        if min(image.shape[:2]) < 1:
            raise ValueError(f"empty image of shape {image.shape}")
        queries, normals = self.queries(layout)
        fit = fit_geometry(image.shape[:2], self.input_hw)
        style_id = self.style_id(semantics)
        fitted: list[np.ndarray] = []  # the whole image fitted to the input, made when an STN run needs it

        def stn_runs(priors: np.ndarray | None, direct: bool = False) -> dict[str, np.ndarray]:
            if not fitted:
                fitted.append(render_fit(image, fit.scale, fit.offset, (0, 0, self.input_hw[1], self.input_hw[0])))
            return self.run(fitted[0], queries, normals, style_id, priors, direct=direct)

        def crop_run(theta: np.ndarray) -> dict[str, np.ndarray]:
            if self.direct_crops:
                return self.run_crop(image, fit, queries, normals, style_id, theta, mirror=mirror)
            return {name: value[0] for name, value in stn_runs(theta, direct=True).items()}

        if prior_theta is not None:
            out, did_search = crop_run(prior_theta), False
        else:
            out, did_search = find_face(stn_runs, crop_run, self._landmark_crop, self.input_hw, fit, search, refine)
        return self._result(out, fit, len(queries), did_search, fit_pose)

    def _landmark_crop(self, out: dict[str, np.ndarray]) -> np.ndarray | None:
        """`landmark_prior` of a run's landmarks when it found a face with finite points, else None."""
        points = out["points_2d"].astype(np.float64)
        if out["confidence"] < self.threshold or not np.isfinite(points).all():
            return None
        return landmark_prior(points, self.input_hw, self.crop_scale)

    def _result(self, out: dict[str, np.ndarray], fit: ImageFit, num_points: int, searched: bool = False,
                fit_pose: bool = True) -> FaceResult:
        """The run's outputs in the original image. `fit_pose`: R and t become the pose that best projects the
        3D points onto the 2D points (`geometry.fit_pose`), which are read from a finer map than the pose and,
        averaged with a mirrored run, more accurate still (docs/measurements.md)."""
        confidence = float(out["confidence"])
        landmarks_2d = fit.to_original(out["points_2d"])
        if self.has_3d:
            visibility = out["visibility"].astype(np.float64)
            landmarks_3d = out["points_3d"].astype(np.float64)
            K = fit.intrinsics_to_original(out["K"])
            R, t = out["R"].astype(np.float64), out["t"].astype(np.float64)
            if fit_pose and num_points >= POSE_FIT_MIN_POINTS:
                R, t, _, _ = geometry.fit_pose(landmarks_3d, landmarks_2d, K, R, t)
        else:
            visibility, landmarks_3d, K, R, t = np.ones(num_points), None, None, None, None
        # A face without finite points is no face: it would poison the tracker's filters and the crop after it.
        found = confidence >= self.threshold and bool(np.isfinite(landmarks_2d).all())
        theta = self._landmark_crop(out)
        if theta is None:
            theta = out["theta_out"].astype(np.float64)
        return FaceResult(confidence=confidence, found=found, landmarks_2d=landmarks_2d, visibility=visibility,
                          landmarks_3d=landmarks_3d, K=K, R=R, t=t, theta=theta, searched=searched)
