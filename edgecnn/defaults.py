"""Defaults shared by the library and the CLI, in a module light enough for ``--help``."""

DEFAULT_MODEL = "fashion-cnn"
DEFAULT_OPSET = 17
DEFAULT_CALIBRATION = 500
# Variants that must pass on every class for validation to pass; another variant's failed cell
# only marks it "not for" that class (edgecnn.validate.verdict).
REQUIRED_VARIANTS = ("fp32", "int8")
# Test images per emulated validation row: qemu runs float kernels far slower than the CPU, and
# this many keep `make export` within the README's time on 2 cores (bench/README.md, "Emulation").
EMULATED_IMAGES = 1000
# The most threads a session is given: onnxruntime takes an int32 and would try to start them all.
MAX_THREADS = 4096
# The documented endurance run: 8 threads x 25,000 calls on one Predictor.
SOAK_CALLS = 200_000
SOAK_THREADS = 8
