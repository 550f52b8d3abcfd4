"""Atomic, non-destructive file writes for every artifact edgecnn produces.

Writes go to a temporary file in the destination folder and are renamed into place, so an
interrupted run leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import hashlib
import json
import os
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from edgecnn.errors import EdgeCNNError, OverwriteRefusedError

F = TypeVar("F", bound=Callable[..., Any])

# Temporary files carry the writer's PID so that leftovers of a killed process can be told
# apart from a write in progress and swept.
TMP_PREFIX = ".edgecnn-tmp-"


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


def ensure_folder(folder: str | os.PathLike) -> Path:
    """The one door for every folder edgecnn writes into: created when missing, and refused in
    one line when it cannot be (a file in the way, a read-only or virtual file system)."""
    path = Path(folder)
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            raise EdgeCNNError(f"Cannot write into {path}: {part} is a file, not a folder.")
        if part.exists():
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgeCNNError(f"Cannot create the folder {path}: {exc.strerror or exc}.") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise EdgeCNNError(f"Cannot write into {path}: permission denied.")
    return path


@contextlib.contextmanager
def removed_if_left_empty(folder: str | os.PathLike) -> Iterator[None]:
    """Remove ``folder``, and the folders above it the block created, again when the block
    fails and left them empty: a refused run leaves no empty output folder behind."""
    path = Path(folder).absolute()
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for made in missing:  # innermost first; stops at the first one holding anything
            if not made.is_dir() or any(made.iterdir()):
                break
            made.rmdir()
        raise


def sweep_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files and folders left in ``folder`` by edgecnn processes that no
    longer exist.

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
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def temporary_folder(beside: str | os.PathLike, purpose: str) -> Iterator[Path]:
    """A scratch folder inside ``beside``, named like the temporary files so that the sweep
    removes it when a SIGKILL leaves it behind."""
    parent = ensure_folder(beside)
    sweep_stale_temporaries(parent)
    folder = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-{purpose}-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def staged(folder: str | os.PathLike) -> Iterator[Path]:
    """A copy of ``folder`` to write a whole new set of files into; when the block succeeds it
    takes the folder's place in one atomic exchange, so a reader sees the old set or the new
    one, never a mix (an interrupted run leaves the old set untouched).

    The copy is made of hard links (no data is copied; an atomic write replaces a link, never
    the file or the symlink's target) beside the folder, named like a temporary so that the
    next write there sweeps it when a SIGKILL leaves it behind. Everything of the user's in the
    folder is kept: subfolders, symlinks and special files are linked as they are, and whatever
    someone else put anywhere in the folder while the block ran is moved into the new set. A
    symlinked ``folder`` is its target. Where two folders cannot be exchanged (a mount point,
    or a system without Linux's renameat2; decided before the block runs where it can be), the
    copy is made inside the folder and the changed entries are moved in one by one, the report
    last: a run interrupted then leaves a report that readers find stale
    (edgecnn.results.evidence).
    """
    path = ensure_folder(folder).resolve()  # (an exchange needs both folders)
    inside = os.path.ismount(path) or not os.access(path.parent, os.W_OK | os.X_OK)
    home = path if inside else path.parent
    sweep_stale_temporaries(home)
    stage = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-stage-{path.name}-", dir=home))
    try:
        # mkdtemp's folder is private (0700); the exchanged folder keeps the old one's mode
        os.chmod(stage, path.stat().st_mode & 0o7777)
        before = _link_tree(path, stage)
        yield stage
        if not inside and _exchange(stage, path):
            _keep_added(stage, path, before)  # the old set is now at the stage's name
        else:
            _move_changed(stage, path, before)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _link_tree(source: Path, dest: Path, prefix: str = "") -> set[str]:
    """Hard-link every entry of ``source`` into ``dest`` as it is (a symlink as a symlink, a
    FIFO as a FIFO; across file systems, copied), folders made and filled alike; the relative
    paths linked."""
    linked = set()
    for entry in source.iterdir():
        if entry.name.startswith(TMP_PREFIX):
            continue
        target = dest / entry.name
        if entry.is_dir() and not entry.is_symlink():
            target.mkdir()
            os.chmod(target, entry.stat().st_mode & 0o7777)
            linked |= _link_tree(entry, target, f"{prefix}{entry.name}/")
        elif not _link(entry, target):
            continue  # a socket or device across file systems: left where it is, kept by the move
        linked.add(prefix + entry.name)
    return linked


def _link(entry: Path, target: Path) -> bool:
    """Link ``entry`` (never its symlink's target) at ``target``, or make a copy of it."""
    try:
        os.link(entry, target, follow_symlinks=False)
        return True
    except OSError:
        pass
    mode = entry.lstat().st_mode
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(entry), target)
    elif stat.S_ISREG(mode):
        shutil.copy2(entry, target)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(target, mode & 0o7777)
    else:
        return False
    return True


def _keep_added(old: Path, new: Path, before: set[str], prefix: str = "") -> None:
    """Move into ``new`` what appeared anywhere in ``old`` that was not there when it was linked
    (``before``): a file the user put in the folder, or in a subfolder, while the run went on."""
    for entry in old.iterdir():
        target, name = new / entry.name, prefix + entry.name
        if entry.name.startswith(TMP_PREFIX):
            continue
        if _real_dir(entry) and _real_dir(target):
            _keep_added(entry, target, before, name + "/")
        elif name not in before and not _real_dir(target):
            _move(entry, target)


def _move_changed(stage: Path, path: Path, before: set[str], prefix: str = "") -> None:
    """Make ``path`` hold ``stage``'s set entry by entry, report last: what the run removed is
    removed, what it wrote or replaced is moved in, what it left alone (the same inode, linked)
    stays, and what appeared in ``path`` meanwhile is kept."""
    staged_names = {e.name for e in stage.iterdir()}
    for entry in path.iterdir():
        if prefix + entry.name in before and entry.name not in staged_names:
            _remove(entry)
    for entry in sorted(stage.iterdir(), key=lambda p: p.name.startswith("report")):
        target = path / entry.name
        if _real_dir(entry) and _real_dir(target):
            _move_changed(entry, target, before, f"{prefix}{entry.name}/")
        elif not (target.exists() or target.is_symlink()) or not os.path.samestat(entry.lstat(), target.lstat()):
            if _real_dir(target) or _real_dir(entry):  # a rename replaces a file by a file only
                _remove(target)
            _move(entry, target)


def _real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _remove(path: Path) -> None:
    if _real_dir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _move(source: Path, target: Path) -> None:
    """Rename ``source`` onto ``target``; across file systems or mount points (a bind mount of
    the same disk refuses a rename too), by a copy beside ``target`` renamed into place."""
    try:
        os.replace(source, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    copy = target.parent / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
    try:
        if _real_dir(source):
            shutil.copytree(source, copy, symlinks=True)
        else:
            _link(source, copy)
        os.replace(copy, target)
    finally:
        _remove(copy)
    _remove(source)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders' names in one step (Linux renameat2 RENAME_EXCHANGE); False where the
    system or file system cannot (a bind mount refuses it as busy)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBUSY, errno.EXDEV):
        return False
    raise EdgeCNNError(f"Cannot put the new files in {b}: {os.strerror(error)}.")


# The folders this process holds the lock of: [descriptor, holders]. Export takes the lock and
# calls quantize and validate, which take it too (an flock on a second descriptor of the same
# folder would refuse its own process); the last holder to leave releases it.
_HELD: dict[Path, list[int]] = {}
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (the directory itself, so no lock file is left):
    two runs writing the same export folder would mix their files. Every command that writes
    into an export folder takes it; within one process it is re-entrant."""
    path = ensure_folder(folder)
    key = path.resolve()
    with _HELD_GUARD:
        entry = _HELD.get(key)
        if entry is None:
            fd = os.open(path, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise EdgeCNNError(
                    f"Another edgecnn process is writing to {path}; wait for it to finish."
                ) from None
            entry = _HELD[key] = [fd, 0]
        entry[1] += 1
    try:
        yield path
    finally:
        with _HELD_GUARD:
            entry[1] -= 1
            if entry[1] == 0:
                del _HELD[key]
                os.close(entry[0])  # closing releases the lock


def writes_into(folder_of: Callable[[Path], Path]) -> Callable[[F], F]:
    """Decorate a function that writes into the folder ``folder_of(its first argument)``: it runs
    holding that folder's lock (a folder that does not exist is left to the function's own
    error, not created)."""
    def decorate(function: F) -> F:
        @functools.wraps(function)
        def locked(target: Any, *args: Any, **kwargs: Any) -> Any:
            folder = folder_of(Path(target))
            if not folder.is_dir():
                return function(target, *args, **kwargs)
            with folder_lock(folder):
                return function(target, *args, **kwargs)
        return locked  # type: ignore[return-value]
    return decorate


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps ``path``'s suffix because some writers (Keras) insist on it. With
    ``replace=False`` the file is put in place by a hard link, which fails when ``path`` exists:
    a file that appeared while this run was writing (another run's results) is never replaced
    by an existence check made before the work.
    """
    path = Path(path)
    if path.is_dir():
        raise EdgeCNNError(f"Cannot write {path}: it is a folder; name a file.")
    ensure_folder(path.parent)
    sweep_stale_temporaries(path.parent)
    # The name is fixed before the file exists, so a signal at any instant finds the cleanup
    # below already in force; O_EXCL keeps another writer's file safe, mode 0o666 obeys umask.
    tmp_path = path.parent / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}{path.suffix}"
    try:
        try:
            os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as exc:  # e.g. /proc, or a file system full or read-only
            raise EdgeCNNError(f"Cannot write into {path.parent}: {exc.strerror or exc}.") from exc
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp_path, path)
        else:
            _put_new(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _put_new(tmp_path: Path, path: Path) -> None:
    """Move ``tmp_path`` to ``path`` unless ``path`` exists, atomically where hard links work."""
    try:
        os.link(tmp_path, path)
        return
    except FileExistsError:
        pass
    except OSError:  # a filesystem without hard links: check and rename as close as they get
        if not path.exists():
            os.replace(tmp_path, path)
            return
    raise OverwriteRefusedError(
        f"{path} appeared while this run was writing it (another run?); it was left as it is "
        "and these results were not written"
    )


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
    raise OverwriteRefusedError(
        f"{path} already exists and differs from what would be written; "
        "ask to replace it (force), or choose another output folder."
    )
