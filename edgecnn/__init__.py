"""edgecnn: take small Keras convnets to the edge through ONNX.

Nothing heavy is imported here so that ``edgecnn --help`` and the runtime stay fast.
"""

__version__ = "0.1.0"
