"""Write-then-rename outputs: nothing partial under the target name, normal file modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lmgc_format.atomic import AtomicOutput
from lmgc_format.errors import OutputExistsError


def test_commit_gives_umask_mode_and_content(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    old = os.umask(0o022)
    try:
        with AtomicOutput(target, overwrite=False) as out:
            out.write(b"abc")
            assert not target.exists()
            out.commit()
    finally:
        os.umask(old)
    assert target.read_bytes() == b"abc"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_leaving_without_commit_removes_the_temp_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), AtomicOutput(target, overwrite=True) as out:
        out.write(b"new, half written")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_existing_output_is_refused_without_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="-f"):
        AtomicOutput(target, overwrite=False)
