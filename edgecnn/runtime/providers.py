"""Choosing onnxruntime execution providers, and refusing silent fallbacks to the CPU."""

from __future__ import annotations

from collections.abc import Sequence

from edgecnn.errors import EdgeCNNError

ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
_INSTALL_HINT = {
    "CUDAExecutionProvider": "pip install 'edgecnn[gpu]' (onnxruntime-gpu with its CUDA and cuDNN "
    "wheels, not beside the CPU onnxruntime) on a machine with an NVIDIA GPU and driver; "
    "edgecnn doctor says what is missing",
    "TensorrtExecutionProvider": "pip install 'edgecnn[gpu]' plus NVIDIA TensorRT",
    "OpenVINOExecutionProvider": "pip install onnxruntime-openvino (instead of onnxruntime)",
    "DmlExecutionProvider": "pip install onnxruntime-directml (Windows)",
    "ROCMExecutionProvider": "an onnxruntime build with ROCm",
    "CoreMLExecutionProvider": "onnxruntime on macOS",
}
# 'auto' prefers a GPU when one is usable; TensorRT is left out because its engine build takes
# minutes on first use, which nobody expects from 'auto'.
_AUTO_ORDER = ("CUDAExecutionProvider", "CPUExecutionProvider")


def install_hint(name: str) -> str | None:
    """How to get the provider ``name`` (a full onnxruntime name), when edgecnn knows."""
    return _INSTALL_HINT.get(name)


def needs_cuda_libraries(names: Sequence[str]) -> bool:
    """Whether a session on ``names`` loads the CUDA libraries of onnxruntime-gpu."""
    return any(n in ("CUDAExecutionProvider", "TensorrtExecutionProvider") for n in names)


def resolve(requested: str | Sequence[str], available: Sequence[str]) -> list[str]:
    """Turn 'auto', an alias, or a list of names into onnxruntime provider names.

    Args:
        requested: ``"auto"``, an alias such as ``"cuda"``, a full provider name, or a sequence
            of those in priority order.
        available: ``onnxruntime.get_available_providers()``.

    Raises:
        EdgeCNNError: a requested provider is unknown or not in this onnxruntime build.
    """
    if not isinstance(requested, str) and not (
        isinstance(requested, (list, tuple)) and all(isinstance(r, str) for r in requested)
    ):
        raise EdgeCNNError(
            f"providers must be a string or a list of strings, got {requested!r}."
        )
    if isinstance(requested, str):
        if requested == "auto":
            return [p for p in _AUTO_ORDER if p in available] or list(available)
        requested = [part.strip() for part in requested.split(",") if part.strip()]
    if not requested:
        raise EdgeCNNError("No execution provider given; use 'auto', 'cpu', 'cuda', ...")
    names = [ALIASES.get(item.lower(), item) for item in requested]
    for original, name in zip(requested, names):
        if name not in available:
            known = ", ".join(sorted(ALIASES))
            hint = _INSTALL_HINT.get(name)
            if name not in ALIASES.values() and not name.endswith("ExecutionProvider"):
                raise EdgeCNNError(
                    f"Unknown execution provider '{original}'. Use one of: auto, {known}, "
                    "or a full onnxruntime provider name."
                )
            raise EdgeCNNError(
                f"Execution provider '{original}' ({name}) is not available in the installed "
                f"onnxruntime (available: {', '.join(available)})."
                + (f" To use it: {hint}." if hint else "")
            )
    if (names[0] == "TensorrtExecutionProvider" and "CUDAExecutionProvider" in available
            and "CUDAExecutionProvider" not in names):
        names.insert(1, "CUDAExecutionProvider")  # subgraphs TensorRT cannot build run on CUDA
    if "CPUExecutionProvider" not in names:
        # Nodes the accelerator cannot run still need a home; this is node-level placement,
        # not a session-level fallback (that one is detected in check_active).
        names.append("CPUExecutionProvider")
    return names


def check_active(requested: list[str], active: Sequence[str], reason: str | None = None) -> None:
    """Fail when onnxruntime dropped the primary provider (e.g. CUDA libraries missing), with
    ``reason`` when the cause is known."""
    primary = requested[0]
    if primary not in active:
        hint = _INSTALL_HINT.get(primary, "check the provider's installation (edgecnn doctor)")
        raise EdgeCNNError(
            f"{primary} was requested but onnxruntime could not start it"
            + (f" ({reason})" if reason else "")
            + f" and would run on {', '.join(active)} instead. Refusing to fall back silently; {hint}."
        )
