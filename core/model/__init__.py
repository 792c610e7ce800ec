"""The detector in torch (the only part of `core` that imports torch): face model, backbones, heads, create_model,
and its ONNX export (onnx_export.py)."""
from .backbones import BACKBONES, create_backbone, register_backbone
from .detector import MODEL_VARIANTS, LandmarkDetector, ModelConfig, create_model
from .onnx_export import export_onnx

__all__ = ["BACKBONES", "MODEL_VARIANTS", "LandmarkDetector", "ModelConfig", "create_backbone", "create_model",
           "export_onnx", "register_backbone"]
