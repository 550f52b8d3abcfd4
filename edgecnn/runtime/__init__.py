"""The embeddable runtime: numpy + onnxruntime only, never TensorFlow."""

from edgecnn.runtime.metadata import ModelInfo, Preprocessing
from edgecnn.runtime.predictor import Prediction, Predictor

__all__ = ["ModelInfo", "Prediction", "Predictor", "Preprocessing"]
