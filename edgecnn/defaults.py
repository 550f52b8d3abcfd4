"""Defaults shared by the library and the CLI, in a module light enough for ``--help``."""

DEFAULT_MODEL = "fashion-cnn"
DEFAULT_OPSET = 17
DEFAULT_CALIBRATION = 500
