"""Bulk inference throughput and memory: one process against Ray on this machine.

    python bench/bulk.py [MODEL.onnx] [--images 100000] [--folder DIR] [--parquet] [--out bench/results]

Writes real Fashion-MNIST images (training then test set, repeated up to --images) as PNG files
into DIR once, then runs ``edgecnn predict DIR --out rows.parquet`` in a fresh process per
configuration: the local engine (onnxruntime's default threads, and one thread), and Ray with
one single-threaded actor per core. For each: wall time of the whole command (Ray's start-up
included), images/s, and peak RSS of the whole process tree (driver, Ray's daemons and actors),
sampled every 50 ms. The rows of every configuration must equal the first one's. With
``--parquet`` the same images are read from one Parquet file of encoded PNGs instead (what
shows whether the driver's memory grows with the dataset: run it at two sizes). Writes
``bulk-<model>-<variant>[-parquet-N].json`` with the machine's description.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgecnn.runtime import Predictor
from edgecnn.store.files import write_json
from edgecnn.timing.machine import machine_info

CONFIGS = (
    ("local", ["--engine", "local"]),
    ("local, 1 thread", ["--engine", "local", "--threads", "1"]),
    ("ray, 1 actor per core", ["--engine", "ray", "--threads", "1"]),
)


def write_pngs(folder: Path, count: int, upscale: int = 1) -> None:
    """``count`` real Fashion-MNIST images as PNG files, 1,000 per subfolder (once), each
    ``upscale`` times larger (the reader fits them back): photo-sized files, same answers."""
    from PIL import Image

    from edgecnn.data import load_dataset

    marker = folder / f".complete-{count}-x{upscale}"
    if marker.exists():
        return
    data = load_dataset("fashion_mnist")
    pool = np.concatenate([data.x_train, data.x_test])[..., 0]
    for i in range(count):
        sub = folder / f"{i // 1000:04d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(pool[i % len(pool)])
        if upscale > 1:
            image = image.resize((28 * upscale, 28 * upscale), Image.Resampling.BICUBIC)
        image.save(sub / f"{i:06d}.png")
    marker.touch()


def write_parquet(folder: Path, count: int) -> Path:
    """The PNGs of ``folder`` as one Parquet file (``path``, ``image`` bytes), 1,000 per row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / f"images-{count}.parquet"
    if not path.exists():
        files = sorted(folder.rglob("*.png"))[:count]
        with pq.ParquetWriter(path, pa.schema([("path", pa.string()), ("image", pa.binary())])) as writer:
            for i in range(0, len(files), 1000):
                chunk = files[i:i + 1000]
                writer.write_table(pa.table({"path": [str(f) for f in chunk],
                                             "image": [f.read_bytes() for f in chunk]}))
    return path


def anon_rss(pid: int) -> int:
    """The process's private resident memory in bytes (RssAnon): its heap, without the pages of
    Ray's shared-memory object store it mapped, which RSS counts."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> tuple[int, int]:
    """(RSS of ``root`` and all its descendants, RSS of ``root``) in bytes, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    page = os.sysconf("SC_PAGE_SIZE")
    sizes = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            sizes[pid] = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except OSError:
            continue
        todo.extend(children.get(pid, []))
    return sum(sizes.values()), sizes.get(root, 0)


def run(model: Path, folder: Path, extra: list[str], out: Path) -> dict:
    """One ``edgecnn predict`` in a fresh process tree; wall time and peak tree RSS."""
    argv = [sys.executable, "-c", "from edgecnn.cli.main import main; main()", "predict",
            str(model), str(folder), "--out", str(out), "--force", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = driver_peak = driver_anon = 0
    while proc.poll() is None:
        tree, driver = tree_rss(proc.pid)
        peak, driver_peak = max(peak, tree), max(driver_peak, driver)
        driver_anon = max(driver_anon, anon_rss(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(extra)} failed:\n{stderr}")
    return {"wall_s": wall, "peak_tree_rss_mib": peak / 2**20,
            "peak_driver_rss_mib": driver_peak / 2**20, "peak_driver_private_mib": driver_anon / 2**20,
            "summary": stderr.strip().splitlines()[-1]}


def rows_digest(path: Path) -> str:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return hashlib.sha256(json.dumps(table.to_pydict()).encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path,
                        default=Path("exported/fashion-cnn/model.int8.onnx"))
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--folder", type=Path,
                        default=Path(tempfile.gettempdir()) / "edgecnn-bulk-pngs")
    parser.add_argument("--parquet", action="store_true", help="Read the images from one Parquet file.")
    parser.add_argument("--upscale", type=int, default=1, help="Write each PNG this many times larger.")
    parser.add_argument("--only", choices=[name for name, _ in CONFIGS], help="Run one configuration.")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    info = Predictor(args.model, providers="cpu").info
    start = time.perf_counter()
    write_pngs(args.folder, args.images, args.upscale)
    print(f"{args.images:,} PNG files in {args.folder} ({time.perf_counter() - start:.0f} s)")
    source = write_parquet(args.folder, args.images) if args.parquet else args.folder
    rows, digest = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in [c for c in CONFIGS if args.only in (None, c[0])]:
            out = Path(tmp) / "rows.parquet"
            result = run(args.model, source, extra, out)
            same = digest is None or rows_digest(out) == digest
            digest = digest or rows_digest(out)
            rows.append({"config": name, "argv": extra, "images": args.images,
                         "images_per_s": args.images / result["wall_s"], "same_rows": same,
                         **result})
            print(f"{name:24s} {rows[-1]['images_per_s']:8,.0f} images/s  wall {result['wall_s']:6.1f} s"
                  f"  peak RSS {result['peak_tree_rss_mib']:7.0f} MiB (driver "
                  f"{result['peak_driver_rss_mib']:.0f}, private {result['peak_driver_private_mib']:.0f})"
                  f"  same rows: {same}")
    base = rows[0]["images_per_s"]
    for row in rows:
        row["throughput_vs_local"] = row["images_per_s"] / base
    result = {"model": info.name, "variant": info.variant, "cpus": os.cpu_count(),
              "source": "parquet" if args.parquet else "png files", "upscale": args.upscale, "machine": machine_info(), "rows": rows}
    stem = f"bulk-{info.name}-{info.variant}" + (f"-parquet-{args.images}" if args.parquet else "") + (
        f"-x{args.upscale}" if args.upscale > 1 else "")
    path = write_json(args.out / f"{stem}.json", result)
    print(f"Saved {path}")
    if not all(r["same_rows"] for r in rows):
        raise SystemExit("The engines wrote different rows.")


if __name__ == "__main__":
    main()
