"""The detector in torch (the only part of `core` that imports torch): face model, backbones, heads, create_model."""
from .backbones import BACKBONES, create_backbone, register_backbone
from .detector import MODEL_VARIANTS, LandmarkDetector, ModelConfig, create_model, export_onnx

__all__ = ["BACKBONES", "MODEL_VARIANTS", "LandmarkDetector", "ModelConfig", "create_backbone", "create_model",
           "export_onnx", "register_backbone"]
