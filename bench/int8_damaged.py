"""Files damaged on purpose: what each int8 gate says of a file with one layer's scale broken.

    python bench/int8_damaged.py EXPORT_FOLDER [--dataset D] [--factors 0.5,2] [--out bench/results]

For every Conv / Gemm / MatMul of the folder's ``model.int8.onnx`` whose weights are dequantized
from an initializer scale, that scale is multiplied by each factor, one layer at a time, and the
file is judged against fp32 on the test set's first 1,000 images by the int8 gates. Each row says
which gates break, so that the confident-flip rule can be read against the others: a damaged
file the other gates let through is what that rule is for. Writes
``int8-damaged-<model>.json`` with the machine's description.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from edgecnn.accuracy.gates import Gates
from edgecnn.accuracy.metrics import agreement_metrics
from edgecnn.data import load_dataset
from edgecnn.runtime import Predictor
from edgecnn.store.files import write_json
from edgecnn.timing.machine import machine_info


def _weight_scales(model) -> list[tuple[str, str]]:
    """(layer, scale initializer) of each layer whose weights a DequantizeLinear makes."""
    initializers = {t.name for t in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    found = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1:
            weights = producers.get(node.input[1])
            if weights is not None and weights.op_type == "DequantizeLinear" and weights.input[1] in initializers:
                found.append((node.name, weights.input[1]))
    return found


def main() -> None:
    import onnx
    from onnx import numpy_helper

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--factors", default="0.5,2")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    fp32, int8 = args.folder / "model.onnx", args.folder / "model.int8.onnx"
    info = Predictor(fp32).info
    data = load_dataset(args.dataset or info.dataset, image_size=info.input_shape[:2])
    x, y = data.x_test[:1000], data.y_test[:1000]
    reference = Predictor(fp32, providers="cpu").predict(x).probabilities
    gates = Gates()

    def judged(path: Path) -> dict:
        metrics = agreement_metrics(reference, Predictor(path, providers="cpu").predict(x).probabilities, y,
                                    data.class_names)
        verdict = gates.judge("int8", metrics)
        return {"agreement": metrics.agreement, "firm_agreement": verdict.flips.firm_agreement,
                "confident_flips": verdict.flips.confident, "accuracy_delta_pp": metrics.accuracy_delta * 100,
                "mean_abs_diff": metrics.mean_abs_diff, "max_abs_diff": metrics.max_abs_diff,
                "passes": verdict.passed, "breaches": verdict.breaches,
                "other_gates_pass": not [b for b in verdict.breaches if "confident" not in b]}

    rows = [{"layer": None, "factor": 1.0, **judged(int8)}]
    with tempfile.TemporaryDirectory(prefix="edgecnn-damaged-") as tmp:
        for factor in (float(f) for f in args.factors.split(",")):
            for layer, scale in _weight_scales(onnx.load(str(int8))):
                model = onnx.load(str(int8))
                tensor = next(t for t in model.graph.initializer if t.name == scale)
                tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * np.float32(factor), scale))
                broken = Path(tmp) / "broken.onnx"
                onnx.save(model, str(broken))
                rows.append({"layer": layer, "factor": factor, **judged(broken)})
                r = rows[-1]
                print(f"x{factor:<4g} {layer[-44:]:44s} agreement {r['agreement']:.3f} confident "
                      f"{r['confident_flips']:4d} mean |Δp| {r['mean_abs_diff']:.4f} "
                      f"{'passes' if r['passes'] else 'fails'}"
                      f"{'' if r['other_gates_pass'] else ' (other gates)'}", flush=True)
    damaged = rows[1:]
    summary = {"files": len(damaged), "fail": sum(not r["passes"] for r in damaged),
               "pass_other_gates": sum(r["other_gates_pass"] for r in damaged),
               "confident_flips_of_those": sorted(r["confident_flips"] for r in damaged if r["other_gates_pass"]),
               "mean_abs_diff_of_those": sorted(r["mean_abs_diff"] for r in damaged if r["other_gates_pass"]),
               "lowest_mean_abs_diff": min(r["mean_abs_diff"] for r in damaged)}
    print(summary)
    result = {"model": info.name, "dataset": data.name, "machine": machine_info(), "undamaged": rows[0],
              "summary": summary, "rows": damaged}
    print(f"Saved {write_json(args.out / f'int8-damaged-{info.name}.json', result)}")


if __name__ == "__main__":
    main()
