"""Torch-free inference: the exported ONNX detector, image reading and fitting, video frames, tracking.

Only numpy, onnxruntime and OpenCV: this package ships in the Blender add-on. See session.py for the model,
search.py for how it finds a face without a prior, tracker.py for video tracking and smoothing, track.py for
tracking a whole clip into a `core.shot.Shot` (what the Blender add-on runs), images.py and video.py for reading
inputs.
"""
from .images import ImageFit, ImageReadError, fit_to_input, read_image, to_rgb_uint8
from .search import full_frame_theta
from .session import DEFAULT_MODEL_PATH, FaceResult, LandmarkModel, ModelLoadError, ModelNotFoundError
from .tracker import FaceTracker, OneEuroFilter, Smoothing
from .video import ImageSequence, VideoFile, VideoReadError, list_images, open_frames

__all__ = ["DEFAULT_MODEL_PATH", "FaceResult", "FaceTracker", "ImageFit", "ImageReadError", "ImageSequence",
           "LandmarkModel", "ModelLoadError", "ModelNotFoundError", "OneEuroFilter", "Smoothing", "VideoFile",
           "VideoReadError", "fit_to_input", "full_frame_theta", "list_images", "open_frames", "read_image",
           "to_rgb_uint8"]
