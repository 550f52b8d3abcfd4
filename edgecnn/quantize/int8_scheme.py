"""Choosing the static int8 scheme by measurement on every instruction-set class it is meant for.

onnxruntime's U8S8 kernels on x86 without VNNI add pairs of u8 x s8 products into int16 with
saturation (VPMADDUBSW); with 7-bit weights ("reduce range") those sums cannot overflow, and U8U8
uses another kernel. A scheme is kept only when it holds the int8 gate on held-out training
images on each declared class that can be run here (natively or under qemu-user); a class that
cannot be run is accepted only for a scheme that cannot saturate there by construction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.accuracy.gates import Gates, int8_drops
from edgecnn.accuracy.metrics import agreement_metrics
from edgecnn.runners.base import CellRun, Runner
from edgecnn.runners.plan import class_runner, probed
from edgecnn.runners.qemu import unavailable_reason
from edgecnn.runtime.isa import host_isa

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scheme:
    """A static QDQ scheme: uint8 activations, these weights, and where it is known to break."""

    name: str
    weights: str
    reduce_range: bool
    saturates_on: frozenset[str]
    why: str


# Tried in this order. u8s8-reduce-range comes first although u8s8 is slightly faster on a VNNI
# CPU (bench/results/int8-schemes-fashion-cnn.json): no kernel can saturate it, so it gives the
# same answers on every class, where u8s8 loses accuracy on x86 without VNNI (bench/README.md).
# u8s8 is next, for models whose 7-bit weights lose too much, kept only where it holds on every
# class; u8u8 last (no faster than fp32 on VNNI). `--scheme u8s8 --isa x86-vnni` buys u8s8's
# speed for VNNI-only use.
SCHEMES: dict[str, Scheme] = {s.name: s for s in (
    Scheme("u8s8-reduce-range", "int8", True, frozenset(),
           "7-bit weights: pair sums stay inside int16, so no x86 kernel saturates and every "
           "class computes the same answers; 2 % slower than u8s8 on VNNI"),
    Scheme("u8s8", "int8", False, frozenset({"x86-avx2"}),
           "8-bit weights: most precise and fastest on VNNI, but its int16 pair sums saturate on "
           "x86 without VNNI"),
    Scheme("u8u8", "uint8", False, frozenset(),
           "no saturation on any kernel, but no faster than fp32 on VNNI CPUs"),
)}


@dataclass
class Trial:
    """One scheme measured on the declared classes."""

    scheme: str
    float_nodes: list[str] = field(default_factory=list)
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)
    unchecked: dict[str, str] = field(default_factory=dict)
    failure: str | None = None
    speed: dict[str, Any] | None = None  # what the speed search kept in float (edgecnn.quantize.int8_speed)
    bias_corrected: bool = False

    @property
    def passed(self) -> bool:
        return self.failure is None

    @property
    def label(self) -> str:
        """The scheme and what was changed from it, as the log and a failure name it."""
        return (self.scheme + (", bias corrected" if self.bias_corrected else "")
                + (f" with {len(self.float_nodes)} node(s) in float" if self.float_nodes else ""))


def static_options(scheme: Scheme, quant: Any) -> dict[str, Any]:
    """``quantize_static`` keyword arguments for ``scheme``."""
    weights = quant.QuantType.QInt8 if scheme.weights == "int8" else quant.QuantType.QUInt8
    return {"activation_type": quant.QuantType.QUInt8, "weight_type": weights,
            "reduce_range": scheme.reduce_range}


def check(
    scheme: Scheme,
    int8_path: Path,
    images: np.ndarray,
    labels: np.ndarray,
    fp32_probs: np.ndarray,
    isas: list[str],
    gates: Gates,
) -> Trial:
    """Measure ``int8_path`` against fp32 on each class in ``isas`` with validation's int8 gates
    (accuracy drop, agreement, worst class); the first class that breaks one fails it. The
    host's class goes first, and an emulated class that computes the same outputs as the host
    on a probe takes the host's (:func:`edgecnn.runners.plan.probed`)."""
    trial = Trial(scheme.name)
    names = tuple(str(c) for c in range(fp32_probs.shape[1]))
    host: tuple[Runner, CellRun] | None = None
    for isa in sorted(isas, key=lambda name: name != host_isa()):
        reason = unavailable_reason(isa)
        if reason:
            if isa in scheme.saturates_on:
                trial.failure = f"known to saturate on {isa}, which cannot be checked here ({reason})"
                return trial
            trial.unchecked[isa] = reason
            continue
        runner = class_runner(isa)
        if host is not None and runner.emulated:
            host_runner, host_cell = host
            cell = probed(runner, [int8_path], images, ["int8"], host_runner, lambda: host_cell)
        else:
            cell = runner.run([int8_path], images)
            host = (runner, cell) if not runner.emulated else host
        cell.check(isa, 1, len(images), fp32_probs.shape[1])
        metrics = agreement_metrics(fp32_probs, cell.probs[0], labels, names)
        drop, worst = int8_drops(metrics)
        same = cell.same(0)
        trial.measured[isa] = {"accuracy_drop": drop, "agreement": metrics.agreement,
                               "worst_class_drop": worst, "emulated": cell.provenance.emulated,
                               "decided": same.words if same else f"measured on {len(labels):,} images"}
        log.info(f"    {scheme.name} on {isa}: {0.0 - drop * 100:+.2f} pp, agreement "
                 f"{metrics.agreement:.2%}, worst class {0.0 - worst * 100:+.1f} pp vs fp32 on "
                 f"{len(labels)} held-out training images" + (f" ({same.words})" if same else ""))
        broken = gates.int8_breaches(metrics)
        if broken:
            trial.failure = f"{' and '.join(broken)} on {isa}, {len(labels)} held-out training images"
            return trial
    return trial


def summary(chosen: Trial, rejected: list[Trial], images: int) -> dict[str, Any]:
    """What goes into the model's metadata and report: the choice and why."""
    return {
        "scheme": chosen.scheme,
        "scheme_reason": SCHEMES[chosen.scheme].why,
        "selection_images": images,
        "isa_checked": chosen.measured,
        "isa_unchecked": chosen.unchecked,
        **({"speed": chosen.speed} if chosen.speed is not None else {}),
        "rejected_schemes": [{"scheme": t.scheme, "float_nodes": t.float_nodes,
                              "bias_corrected": t.bias_corrected, "reason": t.failure} for t in rejected],
    }
