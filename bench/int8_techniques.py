"""Which post-training technique makes a model's int8 file hold: each one's effect on the gates.

    python bench/int8_techniques.py EXPORT_FOLDER [--dataset D] [--out bench/results]

Every technique quantizes the folder's ``model.onnx`` with the u8s8-reduce-range scheme (the one
that holds on every x86 class) and 500 calibration images, and is judged against fp32 by the int8
gates on two sets: 1,000 held-out training images (what ``export`` selects on) and the test
set's first 1,000 (what validation reports). Techniques:

- the conv that reads the image kept in float with its activation;
- that conv in int8 too, with minmax, percentile (99.99) or entropy calibration;
- per-tensor weight scales; depthwise convs kept in float;
- edgecnn's bias correction (:mod:`edgecnn.quantize.bias_correction`, which ``export`` now tries when a
  scheme does not hold), with
  the image conv in float and in int8;
- NNCF's ONNX quantizer (when installed): its fast bias correction (the default), full bias
  correction, and none.

Writes ``int8-techniques-<model>.json`` with the machine's description.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.accuracy.gates import Gates
from edgecnn.accuracy.metrics import agreement_metrics
from edgecnn.data import load_dataset
from edgecnn.export.onnx_metadata import load_proto
from edgecnn.quantize.calibrate import calibration_images, preprocess_for_quantization, selection_images
from edgecnn.quantize.int8_scheme import SCHEMES
from edgecnn.quantize.rewrites import average_pools_as_depthwise_convs, float_image_convs, float_softmax_outputs
from edgecnn.quantize.static import StaticRun
from edgecnn.runtime import Predictor
from edgecnn.store.files import write_json
from edgecnn.timing.machine import machine_info

SCHEME = SCHEMES["u8s8-reduce-range"]


def _judged(path: Path, sets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], names) -> dict[str, Any]:
    out = {}
    for label, (x, y, ref) in sets.items():
        probs = Predictor(path, providers="cpu").predict(x).probabilities
        metrics = agreement_metrics(ref, probs, y, names)
        verdict = Gates().judge("int8", metrics)
        out[label] = {"agreement": metrics.agreement, "firm_agreement": verdict.flips.firm_agreement,
                      "confident_flips": verdict.flips.confident, "accuracy_delta_pp": metrics.accuracy_delta * 100,
                      "worst_class_pp": min((d for d in metrics.per_class_delta.values() if d is not None),
                                            default=0.0) * 100,
                      "max_abs_diff": metrics.max_abs_diff, "passes": verdict.passed, "breaches": verdict.breaches}
    return out


def _nncf(fp32: Path, out: Path, calib: np.ndarray, info, bias: str) -> None:
    import nncf
    import onnx

    dataset = nncf.Dataset([calib[i:i + 1] for i in range(len(calib))], lambda x: {"input": info.feed(x)})
    options: dict[str, Any] = {"fast_bias_correction": bias == "fast"}
    if bias == "none":
        options["advanced_parameters"] = nncf.AdvancedQuantizationParameters(disable_bias_correction=True)
    onnx.save(nncf.quantize(onnx.load(str(fp32)), dataset, subset_size=len(calib), **options), str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    fp32 = args.folder / "model.onnx"
    info = Predictor(fp32).info
    data = load_dataset(args.dataset or info.dataset, image_size=info.input_shape[:2])
    calib = calibration_images(data, 500, 0)
    held_x, held_y = selection_images(data, 500, seed=0)
    test_x, test_y = data.x_test[:1000], data.y_test[:1000]
    reference = Predictor(fp32, providers="cpu")
    sets = {"held-out training": (held_x, held_y, reference.predict(held_x).probabilities),
            "test": (test_x, test_y, reference.predict(test_x).probabilities)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgecnn-techniques-") as tmp:
        tmp = Path(tmp)
        pre = tmp / "pre.onnx"
        preprocess_for_quantization(fp32, pre)
        graph = load_proto(pre)
        average_pools_as_depthwise_convs(graph)
        image, softmax = float_image_convs(graph), float_softmax_outputs(graph)
        depthwise = [n.name for n in graph.graph.node if n.op_type == "Conv"
                     and any(a.name == "group" and a.i > 1 for a in n.attribute)]
        rewritten = tmp / "rewritten.onnx"
        rewritten.write_bytes(graph.SerializeToString())
        techniques = {
            "image conv float": ("minmax", True, image + softmax, False),
            "image conv int8, minmax": ("minmax", True, softmax, False),
            "image conv int8, percentile": ("percentile", True, softmax, False),
            "image conv int8, entropy": ("entropy", True, softmax, False),
            "image conv int8, per-tensor weights": ("minmax", False, softmax, False),
            "image conv int8, depthwise float": ("minmax", True, softmax + depthwise, False),
            "image conv float, bias corrected (edgecnn)": ("minmax", True, image + softmax, True),
            "image conv int8, bias corrected (edgecnn)": ("minmax", True, softmax, True),
        }
        for name, (method, per_channel, float_nodes, corrected) in techniques.items():
            start = time.perf_counter()
            out = tmp / "int8.onnx"
            StaticRun(rewritten, info, calib, held_x, held_y, sets["held-out training"][2], [], Gates(),
                      method, per_channel, corrected).write(SCHEME, float_nodes, out)
            rows.append({"technique": name, "seconds": time.perf_counter() - start, **_judged(out, sets, data.class_names)})
            print(name, rows[-1], flush=True)
        try:
            import nncf  # noqa: F401
        except ImportError:
            print("NNCF not installed: its rows are left out (pip install nncf)")
        else:
            for bias in ("fast", "full", "none"):
                start = time.perf_counter()
                out = tmp / "nncf.onnx"
                _nncf(fp32, out, calib, info, bias)
                rows.append({"technique": f"NNCF, {bias} bias correction", "seconds": time.perf_counter() - start,
                             **_judged(out, sets, data.class_names)})
                print(rows[-1]["technique"], rows[-1], flush=True)
    result = {"model": info.name, "dataset": data.name, "machine": machine_info(), "scheme": SCHEME.name,
              "rows": rows}
    print(f"Saved {write_json(args.out / f'int8-techniques-{info.name}.json', result)}")


if __name__ == "__main__":
    main()
