"""Hardware targets: named onnxruntime session configurations (built in or from a TOML file).

A target fixes everything that changes latency besides the model: provider and its options,
thread counts, graph optimisation level and execution mode. Results record the target by name
and value so two result files can be compared honestly.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from edgecnn.errors import EdgeCNNError
from edgecnn.results.bench import TargetSettings
from edgecnn.runtime.providers import ALIASES
from edgecnn.runtime.session import check_threads
from edgecnn.store.toml_file import read_toml

_OPT_LEVELS = ("disable", "basic", "extended", "all")
_MODES = ("sequential", "parallel")


@dataclass(frozen=True)
class Target(TargetSettings):
    """One way of running a model; ``intra_op_threads`` 0 means onnxruntime's default (all cores)."""

    def __post_init__(self) -> None:
        if self.graph_optimization not in _OPT_LEVELS:
            raise EdgeCNNError(
                f"Target '{self.name}': graph_optimization must be one of {', '.join(_OPT_LEVELS)}, "
                f"got '{self.graph_optimization}'."
            )
        if self.execution_mode not in _MODES:
            raise EdgeCNNError(
                f"Target '{self.name}': execution_mode must be one of {', '.join(_MODES)}."
            )
        for name in ("intra_op_threads", "inter_op_threads"):
            check_threads(f"Target '{self.name}': {name}", getattr(self, name))

    @property
    def threads(self) -> int:
        """The intra-op threads this target really uses."""
        return self.intra_op_threads or os.cpu_count() or 1

    def with_threads(self, threads: int) -> Target:
        return replace(self, name=f"{self.name}@{threads}t", intra_op_threads=threads)

    def session_options(self, ort: Any) -> Any:
        """onnxruntime SessionOptions for this target."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = self.inter_op_threads
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.graph_optimization]
        options.execution_mode = (
            ort.ExecutionMode.ORT_PARALLEL
            if self.execution_mode == "parallel"
            else ort.ExecutionMode.ORT_SEQUENTIAL
        )
        options.log_severity_level = 3
        return options

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


BUILTIN: dict[str, Target] = {
    t.name: t
    for t in (
        Target("cpu-1t", "cpu", intra_op_threads=1,
               description="one CPU core: an edge-class device"),
        Target("cpu", "cpu", description="all CPU cores"),
        Target("cuda", "cuda", description="NVIDIA GPU through the CUDA provider"),
        Target("tensorrt", "tensorrt", provider_options={"trt_fp16_enable": True},
               description="NVIDIA GPU through TensorRT (engine built on first run)"),
        Target("openvino", "openvino", provider_options={"precision": "FP32"},
               description="Intel CPU/GPU/NPU through the OpenVINO provider"),
    )
}


def load_targets(path: str | Path) -> dict[str, Target]:
    """User targets from a TOML file: one ``[targets.NAME]`` table per target (a file may
    declare only ``[devices.NAME]``)."""
    data = read_toml(path)
    tables = data.get("targets", {})
    if not isinstance(tables, dict) or not (tables or data.get("devices")):
        raise EdgeCNNError(f"{path} defines no [targets.NAME] or [devices.NAME] tables.")
    targets = {}
    for name, values in tables.items():
        try:
            targets[name] = Target(name=name, **values)
        except TypeError as exc:
            raise EdgeCNNError(f"{path}: target '{name}': {exc}") from exc
    return targets


def resolve_targets(
    names: list[str], targets_file: str | Path | None = None, threads: list[int] | None = None
) -> list[Target]:
    """Targets by name (built-in or from ``targets_file``), expanded over ``threads`` if given."""
    known = dict(BUILTIN)
    if targets_file:
        known.update(load_targets(targets_file))
    chosen = []
    for name in names:
        if name not in known and name.lower() in ALIASES:
            known[name] = Target(name, name.lower(), description=f"{ALIASES[name.lower()]} defaults")
        if name not in known:
            raise EdgeCNNError(
                f"Unknown target '{name}'. Available: {', '.join(known)} "
                "(define more in a targets TOML file)."
            )
        chosen.append(known[name])
    if threads:
        chosen = [t.with_threads(n) for t in chosen for n in threads]
    return chosen
