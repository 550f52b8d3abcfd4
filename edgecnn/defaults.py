"""Defaults shared by the library and the CLI, in a module light enough for ``--help``."""

DEFAULT_MODEL = "fashion-cnn"
DEFAULT_OPSET = 17
DEFAULT_CALIBRATION = 500
# Variants that must pass on every class for validation to pass; another variant's failed cell
# only marks it "not for" that class (edgecnn.validate.verdict).
REQUIRED_VARIANTS = ("fp32", "int8")
EMULATED_IMAGES = 2000  # test images per emulated validation row (emulation is 10-50x slower)
# The documented endurance run: 8 threads x 25,000 calls on one Predictor.
SOAK_CALLS = 200_000
SOAK_THREADS = 8
