"""Atomic writes and overwrite protection."""

import os
import stat
import subprocess

import pytest

from edgecnn.errors import OverwriteRefusedError
from edgecnn.store.files import TMP_PREFIX, atomic_path, check_overwrite, write_bytes


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "model.onnx"
    write_bytes(target, b"old")
    write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.onnx"
    write_bytes(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert not list(tmp_path.glob(TMP_PREFIX + "*"))


def test_check_overwrite(tmp_path):
    target = tmp_path / "a.bin"
    assert check_overwrite(target, b"x", force=False)
    target.write_bytes(b"x")
    assert check_overwrite(target, b"x", force=False) is False
    with pytest.raises(OverwriteRefusedError, match="force"):
        check_overwrite(target, b"y", force=False)
    assert check_overwrite(target, b"y", force=True)


def test_a_file_that_appears_during_the_run_is_not_replaced_without_force(tmp_path):
    """Two runs writing one output: the existence check comes before the work, so the final
    step itself must refuse a file that appeared meanwhile."""
    out = tmp_path / "rows.jsonl"
    with pytest.raises(OverwriteRefusedError, match="appeared while this run"):
        with atomic_path(out, replace=False) as tmp:
            tmp.write_text("mine\n")
            out.write_text("the other run's rows\n")  # finished first
    assert out.read_text() == "the other run's rows\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]  # no temporary left
    with atomic_path(out) as tmp:  # replace=True (--force) replaces
        tmp.write_text("mine\n")
    assert out.read_text() == "mine\n"


def test_two_predict_runs_into_one_output_lose_no_rows(tmp_path, tiny_onnx):
    """Started together without --force: one writes the file, the other exits 1 with one line."""
    import subprocess
    import sys

    import numpy as np

    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).integers(0, 256, (100_000, 8, 8), dtype=np.uint8))
    argv = [sys.executable, "-c", "from edgecnn.cli.main import main; main()", "predict",
            str(tiny_onnx), str(tmp_path / "x.npz"), "--out", str(tmp_path / "rows.jsonl"),
            "--batch-size", "256"]
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    done = [(p.wait(timeout=300), p.stderr.read()) for p in runs]
    codes = sorted(code for code, _ in done)
    assert codes == [0, 1], done
    refused = next(err for code, err in done if code == 1)
    assert "error:" in refused and "Traceback" not in refused
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 100_000


@pytest.mark.parametrize("exchange", [True, False])
def test_a_staged_folder_replaces_the_old_set_at_once_and_loses_nothing(tmp_path, monkeypatch, exchange):
    """Inside the block the folder still holds the old set; after it, the new one. A file
    someone else put in the folder meanwhile is kept, a file the run removed is gone, and an
    error leaves the old set as it was."""
    from edgecnn.store import files

    if not exchange:  # a system without renameat2: files moved in one by one, the report last
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    folder = tmp_path / "export"
    folder.mkdir(mode=0o755)
    for name in ("model.onnx", "model.int8.onnx", "report.json"):
        (folder / name).write_text(f"old {name}")
    with files.staged(folder) as stage:
        assert stage.parent == tmp_path and (stage / "model.onnx").read_text() == "old model.onnx"
        files.write_text(stage / "model.onnx", "new")
        files.write_text(stage / "report.json", "new report")
        (stage / "model.int8.onnx").unlink()  # e.g. no int8 scheme held
        assert (folder / "model.onnx").read_text() == "old model.onnx"  # readers see the old set
        (folder / "notes.txt").write_text("mine")  # a user's file, mid-run
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "notes.txt", "report.json"]
    assert folder.stat().st_mode & 0o777 == 0o755  # not mkdtemp's private 0700
    assert (folder / "model.onnx").read_text() == "new" and (folder / "notes.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".edgecnn-tmp-*"))
    with pytest.raises(RuntimeError):
        with files.staged(folder) as stage:
            files.write_text(stage / "model.onnx", "half")
            raise RuntimeError("interrupted")
    assert (folder / "model.onnx").read_text() == "new" and not list(tmp_path.glob(".edgecnn-tmp-*"))


def _mounted_tmpfs(folder):
    """``folder`` as a tmpfs mount point (a Docker volume's shape), or skip where mounting is not allowed."""
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root and CAP_SYS_ADMIN")
    return folder


@pytest.mark.parametrize("kind", ["exchange", "no-renameat2", "mount-point", "symlinked"])
def test_a_staged_folder_keeps_every_entry_of_the_users_and_writes_through_no_symlink(tmp_path, monkeypatch, kind):
    """A subfolder's symlink and FIFO, a file added to it mid-run, a symlink in the folder the
    run does not write, all kept; a symlink named like a file the run writes is replaced by
    the file, its target untouched; a symlinked folder is updated where it points; a mount
    point (which cannot be renamed) gets the new set moved in."""
    from edgecnn.store import files

    outside = tmp_path / "outside.onnx"
    outside.write_text("the user's other model")
    folder = _mounted_tmpfs(tmp_path / "export") if kind == "mount-point" else tmp_path / "export"
    folder.mkdir(exist_ok=True)
    if kind == "no-renameat2":
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    try:
        (folder / "model.onnx").symlink_to(outside)
        (folder / "model.int8.onnx").write_text("old int8")
        (folder / "notes").mkdir()
        (folder / "notes" / "a.txt").write_text("mine")
        (folder / "notes" / "latest").symlink_to("a.txt")
        os.mkfifo(folder / "notes" / "pipe")
        (folder / "data").symlink_to(tmp_path)
        named = folder
        if kind == "symlinked":
            named = tmp_path / "link"
            named.symlink_to(folder)
        with files.staged(named) as stage:
            files.write_text(stage / "model.onnx", "new fp32")
            (stage / "model.int8.onnx").unlink()
            files.write_text(stage / "report.json", "{}")
            (folder / "notes" / "b.txt").write_text("added mid-run")
            (folder / "later.txt").write_text("added mid-run")
        assert not (folder / "model.onnx").is_symlink() and (folder / "model.onnx").read_text() == "new fp32"
        assert outside.read_text() == "the user's other model"
        assert sorted(p.name for p in folder.iterdir()) == ["data", "later.txt", "model.onnx", "notes", "report.json"]
        assert sorted(p.name for p in (folder / "notes").iterdir()) == ["a.txt", "b.txt", "latest", "pipe"]
        assert os.readlink(folder / "notes" / "latest") == "a.txt" and (folder / "notes" / "b.txt").read_text() == "added mid-run"
        assert stat.S_ISFIFO((folder / "notes" / "pipe").lstat().st_mode)
        assert (folder / "data").is_symlink() and os.readlink(folder / "data") == str(tmp_path)
        if kind == "symlinked":
            assert named.is_symlink() and os.readlink(named) == str(folder)
        assert not list(tmp_path.glob(".edgecnn-tmp-*")) and not list(folder.glob(".edgecnn-tmp-*"))
    finally:
        if kind == "mount-point":
            subprocess.run(["umount", str(folder)], check=True)
