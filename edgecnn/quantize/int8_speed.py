"""Which quantized op types stay in float in the int8 file, decided by timing (as TensorRT picks
each layer's precision), not assumed.

onnxruntime's quantizer puts Q/DQ around every op it can. On the CPU provider some of the int8
ops that result have no fused kernel, or one slower than the float op plus the conversions it
saves: QLinearLeakyRelu, QLinearAveragePool, an int8 MaxPool after a float conv, QLinearAdd in a
residual (bench/results/suite.md). The other way round, the conv that reads the image is kept
float because that is faster on most graphs, but in a residual net its float output makes
onnxruntime run the Add and the MaxPool after it in NCHW, where uint8 MaxPool has no fast kernel
(12x the float time, measured); and where the layers after it are a LeakyReLU and a pool, the
float-to-int8 boundary costs more (a full-size NCHWc reorder and quantize) than their int8
kernels save. So once a scheme holds the gates, the image conv is tried in int8, then the layers
after it up to the next conv in float, then each op type still quantized in float, one change at
a time: a change is kept when the whole file is then measured faster here, at batch 1 and 64 on
one thread, timed in alternation with the best file so far, and still holds every gate on every
class (each change moves the int8 answers too; on a barely trained model a float depthwise conv
can cost a class 3 pp).
"""

from __future__ import annotations

import functools
import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.export.graph import readers_of
from edgecnn.export.onnx_metadata import load_proto
from edgecnn.quantize.int8_scheme import Scheme, Trial
from edgecnn.quantize.static import StaticRun
from edgecnn.timing.engines import bare_session
from edgecnn.timing.measure import Budget, measure_interleaved
from edgecnn.timing.targets import BUILTIN

log = logging.getLogger(__name__)

# Ops that only move data: quantized, they run on uint8 for free; in float they would add Q/DQ.
_MOVES = frozenset({"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Concat",
                    "Split", "Slice", "Gather", "Pad"})
# A change is kept only for a clear win: 5 % on the geometric mean of both batch sizes and no
# batch size more than 2 % slower. Interleaved medians on a quiet 2-core VM wander by 1-3 %, so a
# smaller margin would make the choice (and the file's bytes) depend on the noise of the moment.
_MARGIN, _WORSE = 0.95, 1.02
_BUDGETS = {1: Budget(warmup=30, runs=600, duration=0.5, min_runs=60),
            64: Budget(warmup=3, runs=60, duration=0.8, min_runs=8)}


@dataclass
class SpeedChoice:
    """What the speed search settled on: the float nodes, and the changes it kept."""

    float_nodes: list[str]
    float_types: list[str] = field(default_factory=list)  # op types (or a block) moved to float
    int8_nodes: list[str] = field(default_factory=list)  # float nodes moved to int8
    trial: Trial | None = None  # the gate check of the last change kept; None when none was


def quantized_groups(graph: Any, quantized: Any, skip: list[str]) -> dict[str, list[str]]:
    """Node names of ``graph`` that ``quantized`` (its QDQ model) runs in int8, by op type.

    A node is quantized when it reads a DequantizeLinear and either a QuantizeLinear reads its
    output or it reads int8 weights (a matrix product with float logits); a float node after a
    quantized one reads a DequantizeLinear too. Depthwise convs are a group of their own:
    onnxruntime runs them with other kernels than dense ones.
    """
    nodes = quantized.graph.node
    producers = {out: node for node in nodes for out in node.output}
    quantizes = {node.input[0] for node in nodes if node.op_type == "QuantizeLinear"}
    weights = {init.name for init in quantized.graph.initializer}

    def dequantized(name: str) -> bool:
        return name in producers and producers[name].op_type == "DequantizeLinear"

    int8 = {node.name for node in nodes
            if any(dequantized(name) for name in node.input)
            and (any(out in quantizes for out in node.output)
                 or any(dequantized(name) and producers[name].input[0] in weights for name in node.input[1:]))}
    groups: dict[str, list[str]] = {}
    for node in graph.graph.node:
        if node.name in int8 and node.name not in skip and node.op_type not in _MOVES:
            groups.setdefault(_group(node), []).append(node.name)
    return groups


def _group(node: Any) -> str:
    if node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute):
        return "Conv (depthwise)"
    return node.op_type


def choose(
    run: StaticRun,
    scheme: Scheme,
    quantized: Path,
    start: list[str],
    image: list[str],
    batches: dict[int, np.ndarray],
) -> SpeedChoice:
    """Try the image conv in int8, the layers after it in float, then each quantized op type of
    ``quantized`` in float, keeping each change that makes the file faster and holds the gates.

    Args:
        run: the static quantization that made ``quantized``: candidates are written and gated
            through it, with ``scheme``.
        scheme: the int8 scheme that held the gates.
        quantized: its int8 file, made with ``start`` in float; replaced by the faster file when
            a change is kept.
        start: the nodes already in float (for accuracy, for speed or by request).
        image: those of ``start`` that make the conv reading the image (float because that is
            faster on most graphs, not for accuracy).
        batches: preprocessed float images by batch size, for the timing.
    """
    graph = load_proto(run.graph)
    groups = quantized_groups(graph, load_proto(quantized), start)
    image = [name for name in image if name in start]
    after = [name for name in _after(graph, image) if name not in start]
    changes = [("the image conv", image, False)] if image else []
    changes += [("the layers after the image conv", after, True)] if after else []
    changes += [(op_type, nodes, True) for op_type, nodes in groups.items()]
    choice = SpeedChoice(list(start))
    work = quantized.with_name("speed-search")
    work.mkdir(exist_ok=True)
    best = work / "best.onnx"
    shutil.copyfile(quantized, best)
    try:
        for i, (name, nodes, to_float) in enumerate(changes):
            label = f"{name} in {'float' if to_float else 'int8'} ({len(nodes)} node(s))"
            candidate = work / f"candidate-{i}.onnx"
            trial = [*choice.float_nodes, *nodes] if to_float else [n for n in choice.float_nodes if n not in nodes]
            run.write(scheme, trial, candidate)
            ratios = _ratios(candidate, best, batches)
            faster = math.prod(ratios.values()) ** (1 / len(ratios)) <= _MARGIN and max(ratios.values()) <= _WORSE
            log.info(f"    {label}: " + ", ".join(f"batch {b} x{r:.2f}" for b, r in ratios.items())
                     + f" the time of the best int8 file so far{': faster, gating it' if faster else ''}")
            gated = run.gate(scheme, candidate) if faster else None
            if gated is None or not gated.passed:
                if gated is not None:
                    log.info(f"    {label} not kept: {gated.failure}")
                continue
            choice.trial, choice.float_nodes = gated, trial
            if to_float:
                choice.float_types.append(name)
            else:
                choice.int8_nodes += nodes
            candidate.replace(best)
        if choice.trial is not None:
            shutil.copyfile(best, quantized)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return choice


def _after(graph: Any, image: list[str]) -> list[str]:
    """The nodes that follow the image conv's nodes one reader each, up to the next dense conv
    or matrix product (the layer whose int8 kernel pays for the boundary)."""
    readers = readers_of(graph)
    by_name = {node.name: node for node in graph.graph.node}
    outputs = {o.name for o in graph.graph.output}
    chain: list[str] = []
    node = by_name.get(image[-1]) if image else None
    while node is not None and len(node.output) == 1 and node.output[0] not in outputs:
        users = readers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type in ("Gemm", "MatMul") or _group(users[0]) == "Conv":
            break
        node = users[0]
        chain.append(node.name)
    return chain


def _ratios(candidate: Path, best: Path, batches: dict[int, np.ndarray]) -> dict[int, float]:
    """candidate's median latency over best's at each batch size, one thread, in alternation."""
    ratios = {}
    for size, images in batches.items():
        inputs = [images[i:i + size] for i in range(0, len(images) - size + 1, size)][:8]
        makers = {name: functools.partial(bare_session, path, BUILTIN["cpu-1t"])
                  for name, path in (("best", best), ("candidate", candidate))}
        timed = measure_interleaved(makers, {name: inputs for name in makers}, _BUDGETS.get(size, _BUDGETS[1]))
        ratios[size] = timed["candidate"]["p50_ms"] / timed["best"]["p50_ms"]
    return ratios
