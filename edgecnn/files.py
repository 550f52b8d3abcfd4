"""Atomic, non-destructive file writes for every artifact edgecnn produces.

Writes go to a temporary file in the destination folder and are renamed into place, so an
interrupted run leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgecnn.errors import EdgeCNNError

# Temporary files carry the writer's PID so that leftovers of a killed process can be told
# apart from a write in progress and swept.
TMP_PREFIX = ".edgecnn-tmp-"
# mkstemp creates files readable by the owner only; finished artifacts get the usual mode.
_UMASK = os.umask(0)
os.umask(_UMASK)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def sweep_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files left in ``folder`` by edgecnn processes that no longer exist.

    A process killed with SIGKILL cannot clean up after itself; the next write does.
    """
    removed = []
    try:
        entries = list(Path(folder).glob(TMP_PREFIX + "*"))
    except OSError:
        return removed
    for entry in entries:
        pid_text = entry.name[len(TMP_PREFIX):].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps ``path``'s suffix because some writers (Keras) insist on it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=path.suffix,
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: object) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def check_overwrite(path: str | os.PathLike, new_data: bytes | None, force: bool) -> bool:
    """Refuse to replace a different existing file unless ``force``.

    Args:
        path: the destination.
        new_data: the bytes about to be written, or None when they are not known yet (any
            existing file then counts as different).
        force: the user asked to replace existing files.

    Returns:
        True when the file must be written, False when it already holds exactly ``new_data``.
    """
    path = Path(path)
    if not path.exists():
        return True
    if new_data is not None and path.read_bytes() == new_data:
        return False
    if force:
        return True
    raise EdgeCNNError(
        f"{path} already exists and differs from what would be written; "
        "pass --force (force=True) to replace it, or choose another --out folder."
    )
