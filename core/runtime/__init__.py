"""Torch-free inference: the exported ONNX detector, image reading and fitting, video frames, tracking.

Only numpy, onnxruntime and OpenCV: this package ships in the Blender add-on. See session.py for the model,
tracker.py for video tracking and smoothing, images.py and video.py for reading inputs.
"""
from .images import ImageFit, ImageReadError, fit_to_input, read_image, to_rgb_uint8
from .session import (DEFAULT_MODEL_PATH, FaceResult, LandmarkModel, ModelLoadError, ModelNotFoundError,
                                  full_frame_theta)
from .tracker import FaceTracker, OneEuroFilter, Smoothing
from .video import ImageSequence, VideoFile, VideoReadError, list_images, open_frames

__all__ = ["DEFAULT_MODEL_PATH", "FaceResult", "FaceTracker", "ImageFit", "ImageReadError", "ImageSequence",
           "LandmarkModel", "ModelLoadError", "ModelNotFoundError", "OneEuroFilter", "Smoothing", "VideoFile",
           "VideoReadError", "fit_to_input", "full_frame_theta", "list_images", "open_frames", "read_image",
           "to_rgb_uint8"]
