"""The installed versions of the packages that decide edgecnn's numbers.

Recorded in every report and bench result, so that a committed figure names what produced it
and a comparison knows whether it may expect the same figure to the last digit.
"""

from __future__ import annotations

from importlib import metadata

PACKAGES = ("edgecnn", "onnxruntime", "onnxruntime-gpu", "numpy", "onnx", "tensorflow-cpu",
            "tensorflow", "keras", "tf2onnx", "ai-edge-litert", "openvino")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """{package: version} for those of ``packages`` that are installed (by distribution metadata:
    nothing is imported)."""
    out = {}
    for package in packages:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out
