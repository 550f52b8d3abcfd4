"""Atomic writes and overwrite protection."""

import os

import pytest

from edgecnn.errors import OverwriteRefusedError
from edgecnn.files import TMP_PREFIX, atomic_path, check_overwrite, write_bytes


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
