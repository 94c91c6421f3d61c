"""Write-then-rename output files: an interrupted run never leaves a half file under the target name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from .errors import LmgcError, OutputExistsError


def refuse_existing(target: str | os.PathLike[str], overwrite: bool) -> None:
    """Fail before any long work when the output exists and may not be replaced."""
    if not overwrite and Path(target).exists():
        raise OutputExistsError(f"{target} already exists (use -f to overwrite)")


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; restored at once
    os.umask(mask)
    return mask


class AtomicOutput:
    """A temp file beside ``target``; :meth:`commit` fsyncs and renames it into place.

    Anything that leaves without ``commit`` (exception, Ctrl-C, cancel) removes
    the temp file and leaves an existing target untouched.
    """

    def __init__(self, target: str | os.PathLike[str], overwrite: bool) -> None:
        self.target = Path(target)
        self.overwrite = overwrite
        refuse_existing(self.target, overwrite)
        if self.target.is_dir():
            raise OutputExistsError(f"{self.target} is a directory")
        parent = self.target.parent if str(self.target.parent) else Path(".")
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".partial", dir=parent)
        except OSError as exc:
            raise LmgcError(f"cannot write in {parent}: {exc.strerror}") from None
        self.temp = Path(name)
        self.file: BinaryIO = os.fdopen(fd, "wb")
        self._done = False

    def write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as exc:
            raise LmgcError(f"cannot write {self.target}: {exc.strerror}") from None

    def commit(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            # mkstemp creates 0600; give the result the mode a plain open() would (0666 minus umask)
            os.chmod(self.temp, 0o666 & ~_umask())
            if self.target.exists() and not self.overwrite:
                raise OutputExistsError(f"{self.target} appeared while working (use -f to overwrite)")
            os.replace(self.temp, self.target)
            with contextlib.suppress(OSError):  # directory fsync is not possible everywhere
                dfd = os.open(self.target.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except OSError as exc:
            self.abort()
            raise LmgcError(f"cannot write {self.target}: {exc.strerror}") from None
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            self.temp.unlink()
        self._done = True

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()  # no-op after commit
