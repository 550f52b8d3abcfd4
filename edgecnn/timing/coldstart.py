"""Cold start: how long a fresh process takes to import the runtime, load a model and answer.

Measured in fresh interpreters because a warm process hides import and first-run costs.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from edgecnn.errors import last_line
from edgecnn.results.bench import ColdStart, ColdStartRun

_RUNTIME = """
import time
t0 = time.perf_counter()
import numpy as np
from edgecnn.runtime import Predictor
t1 = time.perf_counter()
p = Predictor({path!r}, providers="cpu")
t2 = time.perf_counter()
p.predict(np.zeros(p.input_shape, np.uint8))
t3 = time.perf_counter()
import json, sys
print(json.dumps({{"import_s": t1 - t0, "session_s": t2 - t1, "first_result_s": t3 - t2,
                  "total_s": t3 - t0, "tensorflow_loaded": "tensorflow" in sys.modules}}))
"""
# The floor under the runtime's cold start: the two libraries it cannot do without.
_LIBRARIES = """
import time
t0 = time.perf_counter()
import numpy, onnxruntime
print(__import__("json").dumps({"import_s": time.perf_counter() - t0}))
"""
_TENSORFLOW = """
import time
t0 = time.perf_counter()
import tensorflow
print(__import__("json").dumps({"import_s": time.perf_counter() - t0}))
"""


def _median_of(script: str, repeats: int) -> ColdStartRun:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=300)
        if out.returncode != 0:
            return ColdStartRun(error=last_line(out.stderr, "failed"))
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return ColdStartRun(repeats=repeats, **{
        k: (statistics.median(r[k] for r in runs) if isinstance(runs[0][k], float) else runs[0][k]) for k in runs[0]})


def cold_start(model_path: Path, repeats: int = 5, tensorflow: bool = True) -> ColdStart:
    """Median cold-start times of the runtime path; of importing numpy + onnxruntime alone, the
    part edgecnn cannot remove; and of importing TensorFlow for contrast."""
    return ColdStart(runtime=_median_of(_RUNTIME.format(path=str(model_path)), repeats),
                     libraries_import=_median_of(_LIBRARIES, repeats),
                     tensorflow_import=_median_of(_TENSORFLOW, max(1, repeats // 2)) if tensorflow else None)
