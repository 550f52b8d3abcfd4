"""What tells an honest int8 file from a damaged one, over seeds: the evidence for the int8 gates.

    python bench/int8_gates.py [--train 6000] [--epochs 4] [--seeds 0,1,2,3,4] [--no-damaged]
                               [--work DIR] [--out bench/results]

For each seed, a MobileNetV2-0.35 at 96x96 RGB (behind its own ``Rescaling(1/127.5, -1)``,
BatchNorm momentum 0.9) is trained on real Fashion-MNIST images resized and stacked to RGB (4
epochs on 6,000 by default; ``tests/test_edge_models.py`` had 3 on 3,000 until 5aea2c5), tested
on 1,000, and exported to fp32. Its honest
int8 files (u8s8-reduce-range, 500 calibration images, the image conv in float and in int8,
with and without bias correction) are judged against fp32 on the 1,000 held-out training images
``export`` selects on and on the 1,000 test images validation reports; the bias-corrected int8
file with the image conv in int8 is then damaged on purpose, each layer's weight scale halved
and doubled in turn, and judged on the test images.

Each row keeps what a gate could be built on: per class the images, the answers lost (fp32
right, int8 wrong) and gained, the confident flips, agreement beyond near-ties, the accuracy
change, and the mean probability shift (half the L1 distance between the two probability
vectors, averaged over images: the same scale for 2 classes or 1,000). Writes
``int8-gates-mobilenetv2-0.35-96-<train>x<epochs>.json`` with the machine's description.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SIZE = 96


def _data(folder: Path, train: int) -> Path:
    """``train`` training and 1,000 test images of Fashion-MNIST at 96x96 RGB, as an npz."""
    import tensorflow as tf

    from edgecnn.data import load_dataset

    path = folder / f"data-{train}.npz"
    if path.exists():
        return path
    data = load_dataset("fashion_mnist").subset(train=train, test=1000, seed=0)

    def rgb(x: np.ndarray) -> np.ndarray:
        resized = tf.image.resize(x, (SIZE, SIZE)).numpy().round().clip(0, 255).astype(np.uint8)
        return np.repeat(resized, 3, axis=-1)

    np.savez(path, x_train=rgb(data.x_train), y_train=data.y_train, x_test=rgb(data.x_test), y_test=data.y_test)
    return path


def _trained(folder: Path, data: Path, seed: int, epochs: int) -> Path:
    import keras

    path = folder / f"mobilenet-{data.stem}-{epochs}-{seed}.keras"
    if path.exists():
        return path
    keras.utils.set_random_seed(seed)
    net = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35, weights=None, classes=10)
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, net(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)))
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    arrays = np.load(data)
    model.fit(arrays["x_train"].astype(np.float32), arrays["y_train"], epochs=epochs, batch_size=64, verbose=0)
    model.save(path)
    return path


def _exported(folder: Path, keras_file: Path, data: Path) -> Path:
    out = folder / keras_file.stem
    if not (out / "model.onnx").exists():
        subprocess.run([sys.executable, "-c", "from edgecnn.cli.main import main; main()", "export", str(keras_file), "--dataset", str(data),
                        "--out", str(out), "--no-quantize", "--no-validate", "--no-time", "--force"], check=True)
    return out / "model.onnx"


def row(reference: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """What any gate could judge of ``probs`` against ``reference`` on labelled images."""
    from edgecnn.accuracy.gates import Gates
    from edgecnn.accuracy.metrics import agreement_metrics

    names = tuple(str(c) for c in range(reference.shape[1]))
    metrics = agreement_metrics(reference, probs, labels, names)
    verdict = Gates().judge("int8", metrics)
    ref_right, right = reference.argmax(1) == labels, probs.argmax(1) == labels
    classes = [{"images": int((labels == c).sum()), "lost": int((ref_right & ~right & (labels == c)).sum()),
                "gained": int((~ref_right & right & (labels == c)).sum())} for c in range(reference.shape[1])]
    shift = 0.5 * np.abs(probs.astype(np.float64) - reference.astype(np.float64)).sum(1)
    return {"agreement": metrics.agreement, "firm_agreement": verdict.flips.firm_agreement,
            "confident_flips": verdict.flips.confident, "accuracy_delta_pp": metrics.accuracy_delta * 100,
            "worst_class_pp": min(d for d in metrics.per_class_delta.values() if d is not None) * 100,
            "mean_shift": float(shift.mean()), "max_abs_diff": metrics.max_abs_diff,
            "passes": verdict.passed, "breaches": verdict.breaches, "classes": classes}


def _weight_scales(model) -> list[tuple[str, str]]:
    initializers = {t.name for t in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    return [(node.name, producers[node.input[1]].input[1]) for node in model.graph.node
            if node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1
            and node.input[1] in producers and producers[node.input[1]].op_type == "DequantizeLinear"
            and producers[node.input[1]].input[1] in initializers]


def _seed_rows(fp32: Path, data_path: Path, seed: int, tmp: Path, damaged: bool) -> dict[str, Any]:
    import onnx
    from onnx import numpy_helper

    from edgecnn.accuracy.gates import Gates
    from edgecnn.data import load_dataset
    from edgecnn.export.onnx_metadata import load_proto
    from edgecnn.quantize.calibrate import calibration_images, preprocess_for_quantization, selection_images
    from edgecnn.quantize.int8_scheme import SCHEMES
    from edgecnn.quantize.rewrites import average_pools_as_depthwise_convs, float_image_convs, float_softmax_outputs
    from edgecnn.quantize.static import StaticRun
    from edgecnn.runtime import Predictor

    info = Predictor(fp32).info
    data = load_dataset(str(data_path), image_size=(SIZE, SIZE))
    calib = calibration_images(data, 500, 0)
    sel_x, sel_y = selection_images(data, 500, seed=0)
    sets = {"held-out": (sel_x, sel_y), "test": (data.x_test, data.y_test)}
    fp32_probs = {k: Predictor(fp32, providers="cpu").predict(x).probabilities for k, (x, _) in sets.items()}
    pre = tmp / "pre.onnx"
    preprocess_for_quantization(fp32, pre)
    graph = load_proto(pre)
    average_pools_as_depthwise_convs(graph)
    image_convs = float_image_convs(graph)
    softmax = float_softmax_outputs(graph)
    pre.write_bytes(graph.SerializeToString())
    out: dict[str, Any] = {"seed": seed, "honest": {}, "damaged": []}
    for label, floats, corrected in (("image conv float", image_convs + softmax, False),
                                     ("image conv int8", softmax, False),
                                     ("image conv float, bias corrected", image_convs + softmax, True),
                                     ("image conv int8, bias corrected", softmax, True)):
        path = tmp / f"{label.replace(' ', '-').replace(',', '')}.onnx"
        StaticRun(pre, info, calib, sel_x, sel_y, fp32_probs["held-out"], [], Gates(),
                  bias_correction=corrected).write(SCHEMES["u8s8-reduce-range"], floats, path)
        out["honest"][label] = {k: row(fp32_probs[k], Predictor(path, providers="cpu").predict(x).probabilities, y)
                                for k, (x, y) in sets.items()}
        r = out["honest"][label]["test"]
        print(f"seed {seed} {label}: test agreement {r['agreement']:.3f} mean shift {r['mean_shift']:.4f} "
              f"worst class {r['worst_class_pp']:+.1f} pp {'passes' if r['passes'] else r['breaches']}", flush=True)
    int8 = tmp / "image-conv-int8-bias-corrected.onnx"
    x, y = sets["test"]
    for factor in (0.5, 2.0) if damaged else ():
        for layer, scale in _weight_scales(onnx.load(str(int8))):
            model = onnx.load(str(int8))
            tensor = next(t for t in model.graph.initializer if t.name == scale)
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * np.float32(factor), scale))
            broken = tmp / "broken.onnx"
            onnx.save(model, str(broken))
            probs = Predictor(broken, providers="cpu").predict(x).probabilities
            out["damaged"].append({"layer": layer, "factor": factor, **row(fp32_probs["test"], probs, y)})
    passing = [r for r in out["damaged"] if r["passes"]]
    print(f"seed {seed}: {len(out['damaged'])} damaged files, {len(passing)} pass today's gates", flush=True)
    return out


def main() -> None:
    from edgecnn.store.files import write_json
    from edgecnn.timing.machine import machine_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "edgecnn-int8-gates")
    parser.add_argument("--train", type=int, default=6000, help="training images")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--no-damaged", dest="damaged", action="store_false", help="honest files only")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = _data(args.work, args.train)
    seeds = []
    for seed in (int(s) for s in args.seeds.split(",")):
        start = time.perf_counter()
        fp32 = _exported(args.work, _trained(args.work, data, seed, args.epochs), data)
        with tempfile.TemporaryDirectory(prefix="edgecnn-gates-") as tmp:
            seeds.append(_seed_rows(fp32, data, seed, Path(tmp), args.damaged))
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    result = {"model": "mobilenetv2-0.35-96", "train_images": args.train, "epochs": args.epochs,
              "machine": machine_info(), "seeds": seeds,
              "model_note": "keras.applications.MobileNetV2(alpha=0.35, 96x96x3, weights=None) behind "
                            "Rescaling(1/127.5, -1), BatchNorm momentum 0.9, trained on Fashion-MNIST images "
                            "resized to 96x96 and stacked to RGB"}
    name = f"int8-gates-mobilenetv2-0.35-96-{args.train}x{args.epochs}.json"
    print(f"Saved {write_json(args.out / name, result)}")


if __name__ == "__main__":
    main()
