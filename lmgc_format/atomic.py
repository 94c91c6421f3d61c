"""Write-then-rename output files: an interrupted run never leaves a half file under the target name."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from lmgc_format.errors import LmgcError, OutputExistsError


def refuse_existing(target: str | os.PathLike[str], overwrite: bool) -> None:
    """Fail before any long work when the output exists and may not be replaced (a link counts, even one
    that points nowhere), or cannot be written: its directory missing or read-only."""
    path = Path(target)
    if not overwrite and os.path.lexists(path):
        raise OutputExistsError(f"{target} already exists (use -f to overwrite)")
    if path.is_dir():
        raise OutputExistsError(f"{target} is a directory")
    parent = _write_dir(path)
    if not parent.is_dir():
        raise LmgcError(f"cannot write {target}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) and not _is_special(path):
        raise LmgcError(f"cannot write {target}: directory {parent} is not writable")


def _resolved(path: Path) -> Path:
    """Where writing ``path`` really goes: through a symbolic link to its target (as zstd and xz write)."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _is_special(path: Path) -> bool:
    """A device, FIFO or socket: written in place (it cannot be renamed over, and must not be replaced)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _write_dir(path: Path) -> Path:
    real = _resolved(path)
    return real.parent if str(real.parent) else Path(".")


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; restored at once
    os.umask(mask)
    return mask


class AtomicOutput:
    """A temp file beside ``target``; :meth:`commit` fsyncs and renames it into place.

    Anything that leaves without ``commit`` (exception, Ctrl-C, cancel) removes
    the temp file and leaves an existing target untouched. A symbolic link is
    written through (its target is replaced, the link stays); a device, FIFO or
    socket (``/dev/null``, ``/dev/stdout``) is written in place, never replaced.
    """

    def __init__(self, target: str | os.PathLike[str], overwrite: bool) -> None:
        self.given = Path(target)
        self.overwrite = overwrite
        refuse_existing(self.given, overwrite)
        self.target = _resolved(self.given)
        self.temp: Path | None = None
        self._done = False
        # stat() follows links: /dev/stdout -> /proc/self/fd/1 -> a pipe or terminal is special too
        if _is_special(self.given):
            try:
                self.file: BinaryIO = open(self.given, "wb")  # closed by commit/abort
            except OSError as exc:
                raise LmgcError(f"cannot write {self.given}: {exc.strerror}") from None
            return
        parent = _write_dir(self.target)
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".partial", dir=parent)
        except OSError as exc:
            raise LmgcError(f"cannot write in {parent}: {exc.strerror}") from None
        self.temp = Path(name)
        self.file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as exc:
            raise LmgcError(f"cannot write {self.target}: {exc.strerror}") from None

    def commit(self) -> None:
        if self.temp is None:  # a device or FIFO: written in place
            try:
                self.file.close()
            except OSError as exc:
                raise LmgcError(f"cannot write {self.given}: {exc.strerror}") from None
            self._done = True
            return
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            # mkstemp creates 0600; give the result the mode a plain open() would (0666 minus umask)
            os.chmod(self.temp, 0o666 & ~_umask())
            if os.path.lexists(self.given) and not self.overwrite:
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
        if self.temp is not None:
            with contextlib.suppress(OSError):
                self.temp.unlink()
        self._done = True

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()  # no-op after commit
