"""Every failure a user can cause is an :class:`LmgcError`.

The CLI catches ``LmgcError`` at the top, prints its message on one line and
exits with :attr:`LmgcError.exit_code`; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class LmgcError(Exception):
    """Base class of every error lmgc raises on purpose."""

    exit_code = 1


class InputError(LmgcError):
    """The input file (safetensors) is missing, unreadable or malformed."""

    exit_code = 3


class FormatError(LmgcError):
    """A ``.lmgc`` archive is malformed, truncated or of an unknown version."""

    exit_code = 4


class CorruptChunkError(FormatError):
    """A chunk failed its CRC or could not be decoded back to the original bytes."""

    exit_code = 5


class IntegrityError(LmgcError):
    """Decoded data does not match the SHA-256 stored in the archive."""

    exit_code = 5


class ModelError(LmgcError):
    """A model could not be found or loaded."""

    exit_code = 6


class ModelMismatchError(LmgcError):
    """The archive was made with another model/procedure than the one at hand."""

    exit_code = 7


class ReferenceMismatchError(ModelMismatchError):
    """The archive was coded against a reference file, and the one at hand (if any) is not it."""


class OutputExistsError(LmgcError):
    """The output exists and overwriting was not allowed."""

    exit_code = 8


class UnsupportedError(LmgcError):
    """A valid request this version cannot carry out (e.g. a scheme the tokenizer cannot express)."""

    exit_code = 9


class CancelledError(LmgcError):
    """The caller asked the work to stop."""

    exit_code = 130
