"""`videopeft.io`'s folder writer: a folder of several files appears whole or not at all."""
from __future__ import annotations

import pytest

from videopeft.io import atomic_dir


def test_atomic_dir_fills_the_folder_only_when_the_writer_succeeds(tmp_path):
    out = tmp_path / "export"
    out.mkdir()  # an empty folder is replaced
    with atomic_dir(out) as tmp:
        (tmp / "config.json").write_text("{}")
        (tmp / "base").mkdir()
        (tmp / "base" / "model.safetensors").write_bytes(b"x")
        assert not (out / "config.json").exists()  # nothing visible while writing
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "base", "base/model.safetensors", "config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no temporary left


def test_atomic_dir_leaves_nothing_when_the_writer_fails(tmp_path):
    out = tmp_path / "export"
    with pytest.raises(RuntimeError, match="verification failed"):
        with atomic_dir(out) as tmp:
            (tmp / "config.json").write_text("{}")
            raise RuntimeError("verification failed")
    assert list(tmp_path.iterdir()) == []
