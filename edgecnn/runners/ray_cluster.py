"""Ray as edgecnn's scale-out engine: connecting, and turning its workers' errors into lines.

Ray is optional (``pip install 'edgecnn[scale]'``). ``--engine ray`` connects to the cluster in
``RAY_ADDRESS`` when it is set, otherwise starts a Ray on this machine for the run. Models and
images travel to the workers through Ray's object store, so the workers need no shared folder
for them (image *files* named by path must be readable on every node). The validation matrix
on Ray is :mod:`edgecnn.runners.ray`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from typing import Any

from edgecnn._optional import require
from edgecnn.errors import EdgeCNNError

ENGINES = ("local", "ray")
# A node that *is* an instruction-set class (a real Graviton, an AVX2 laptop) advertises it as a
# custom resource, e.g. `ray start --resources '{"isa:arm64-i8mm": 1}'`; rows of that class are
# then scheduled there and run natively instead of under qemu.
ISA_RESOURCE_PREFIX = "isa:"
# A Ray started here for one run: a small object store (results and image references are small).
LOCAL_OBJECT_STORE_BYTES = 512 * 1024**2
log = logging.getLogger(__name__)
_ERROR_LINE = re.compile(r"edgecnn\.errors\.\w+: (.+)")


def resolve_engine(engine: str | None) -> str:
    """``engine``, or by default ``ray`` when ``RAY_ADDRESS`` names a cluster, else ``local``."""
    if engine is None:
        return "ray" if os.environ.get("RAY_ADDRESS") else "local"
    if engine not in ENGINES:
        raise EdgeCNNError(f"Unknown engine '{engine}'; use one of {', '.join(ENGINES)}.")
    return engine


@contextlib.contextmanager
def connected() -> Iterator[Any]:
    """The ``ray`` module, initialised: joins an already running Ray (a test's, a notebook's), the
    cluster in ``RAY_ADDRESS``, or starts one here for the duration of the block."""
    ray = require("ray", "--engine ray")
    data = require("ray.data", "--engine ray")
    started = not ray.is_initialized()
    if started:
        quiet = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        if os.environ.get("RAY_ADDRESS"):
            ray.init(**quiet)  # Ray reads the address itself
        else:
            ray.init(num_cpus=os.cpu_count(), object_store_memory=LOCAL_OBJECT_STORE_BYTES, **quiet)
    # Ray Data logs a failed task's traceback itself; edgecnn reports the error once, as one line.
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    context = data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in input order
    context.enable_progress_bars = False  # edgecnn reports progress itself
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def labelled_isas() -> set[str]:
    """Instruction-set classes some node of the cluster advertises (see ISA_RESOURCE_PREFIX)."""
    with connected() as ray:
        return {name.removeprefix(ISA_RESOURCE_PREFIX) for name in ray.cluster_resources()
                if name.startswith(ISA_RESOURCE_PREFIX)}


def user_error(exc: BaseException) -> EdgeCNNError | None:
    """The EdgeCNNError a Ray worker raised, unwrapped from Ray's exceptions around it: Ray
    tasks keep it as ``cause``; Ray Data keeps only its traceback's text."""
    first = exc
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, EdgeCNNError) and "ray" not in type(exc).__module__:
            return exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    found = _ERROR_LINE.search(str(first))
    return EdgeCNNError(found.group(1).strip()) if found else None


@contextlib.contextmanager
def worker_errors() -> Iterator[None]:
    """Inside the block, an EdgeCNNError a Ray worker raised comes out as one EdgeCNNError with
    its message (see ``user_error``); any other exception passes unchanged."""
    try:
        yield
    except Exception as exc:
        cause = user_error(exc)
        if cause is None:
            raise
        raise EdgeCNNError(str(cause)) from None
