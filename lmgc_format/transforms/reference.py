"""The previous step as context: tensors stored as their difference from the same tensor of a reference.

Checkpoints, optimizer states and federated-learning models come in sequences, and both sides usually
hold the previous one. A weight one step later is a few units in the last place away from the previous
one: stored as that difference (:func:`delta`: both bit patterns as integers in value order, subtracted
with wrapping integer arithmetic, zigzag-coded), its top bytes are zeros and its low bytes small, and
the chunk codecs code those bytes as they code any. This beats ZipNN's XOR of the two (measured on the
sequence pairs of corpus/sequences.py: 3 % smaller for fp32 weights, 12 % for bf16). A gradient one
step later is not near the previous one, so each tensor is coded against the reference only where a
trial on a sample says it codes smaller (:func:`choose`).

Tensors pair by name, shape and dtype (:func:`pairs`). The archive records which tensors are coded
against the reference and a SHA-256 over their reference bytes in tensor-table order (:func:`digest`),
so a decoder given another reference refuses before writing anything. The encoder and the decoder run
:class:`ReferenceDelta` chunk by chunk, reading the reference at the paired offsets (bounded memory).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import zstandard

from lmgc_format.errors import FormatError, InputError, ReferenceMismatchError
from lmgc_format.tensors.source import LM_DTYPES, SourceLayout, TensorEntry, read_layout
from lmgc_format.transforms.filters import ForwardFilter
from lmgc_format.transforms.shuffle import byte_shuffle

WHOLE_BYTES = 1 << 20  # a paired tensor up to this size is tried whole, plain and against the reference
SAMPLE_BYTES = 1 << 17  # a larger one by three pieces of this size: its start, middle and end
# A tensor is coded against the reference when its trial costs at most KEEP_SHARE of plain, or, in a file
# whose paired tensors gain FILE_SHARE in all (weights, Adam moments), SHARED_SHARE: the chunk model codes a
# chunk best when its tensors are alike, all differences or all plain (measured on the tuning families:
# a few tensors of Adam's first moment gaining 1-3 % alone cost 0.1-0.5 % more in their chunk).
KEEP_SHARE, SHARED_SHARE, FILE_SHARE = 0.93, 0.98, 0.97
_PIECE = 1 << 20


@dataclass(frozen=True)
class Reference:
    """A reference file and the tensors of the coded file coded against it: tensor index -> where
    the paired tensor's bytes start in the reference file (absolute offset)."""

    path: Path
    layout: SourceLayout
    offsets: dict[int, int]


def open_reference(path: str | os.PathLike[str]) -> tuple[Path, SourceLayout]:
    p = Path(path)
    try:
        return p, read_layout(p)
    except InputError as exc:
        raise InputError(f"reference {exc}") from None


def pairs(layout: SourceLayout, ref_layout: SourceLayout) -> dict[int, int]:
    """Tensor index of ``layout`` -> absolute offset of the reference tensor with its name, shape and dtype
    (non-empty tensors only)."""
    by_name = {t.name: t for t in ref_layout.tensors}
    out = {}
    for i, t in enumerate(layout.tensors):
        r = by_name.get(t.name)
        if r is not None and r.shape == t.shape and r.dtype == t.dtype and t.nbytes:
            out[i] = ref_layout.data_offset + r.begin
    return out


Cost = Callable[[bytes, TensorEntry, bool], int]  # (bytes, their tensor, whether they are differences)


def shuffle_zstd_cost(sample: bytes, t: TensorEntry, _against: bool = False) -> int:
    """Byte shuffle + zstd: the model-free part of what the chunk codecs find."""
    k = t.item_size if t.dtype in LM_DTYPES else 1
    return len(zstandard.ZstdCompressor(level=3).compress(byte_shuffle(sample, k)))


def choose(
    layout: SourceLayout,
    read: Callable[[int, int], bytes],
    ref: BinaryIO,
    paired: dict[int, int],
    cost: Cost = shuffle_zstd_cost,
) -> dict[int, int]:
    """The paired tensors that code smaller against the reference: ``cost`` (the level's own codecs:
    pipeline/file_plan.py) of the differences against that of the plain bytes, on the whole tensor up to
    WHOLE_BYTES, else on three pieces (a sample from the start alone misjudged Adam's first moment)."""
    trials = {}
    for i, at in paired.items():
        t = layout.tensors[i]
        plain_cost = against_cost = 0
        for begin, n in _pieces(t):
            plain = read(t.begin + begin, n)
            ref.seek(at + begin)
            plain_cost += cost(plain, t, False)
            against_cost += cost(delta(plain, ref.read(n), t.dtype, t.item_size), t, True)
        if plain_cost:
            trials[i] = (plain_cost, against_cost)
    whole = sum(a for _, a in trials.values()) <= FILE_SHARE * sum(p for p, _ in trials.values())
    share = SHARED_SHARE if whole else KEEP_SHARE
    return {i: paired[i] for i, (p, a) in trials.items() if a <= share * p}


def _pieces(t: TensorEntry) -> list[tuple[int, int]]:
    """(offset in the tensor, length) of what :func:`choose` tries: whole values, starting on a row where
    a row fits in a piece (the models look one row up)."""
    if t.nbytes <= WHOLE_BYTES:
        return [(0, t.nbytes)]
    row = t.item_size * (math.prod(t.shape[1:]) if len(t.shape) >= 2 else 1)
    step = row if row <= SAMPLE_BYTES // 2 else t.item_size
    n = SAMPLE_BYTES // step * step
    starts = (0, (t.nbytes // 2) // step * step, (t.nbytes - n) // step * step)
    return [(s, n) for s in starts]


def digest(ref: BinaryIO, layout: SourceLayout, offsets: dict[int, int]) -> bytes:
    """SHA-256 over the reference bytes of the tensors coded against it, in the coded file's tensor-table order."""
    sha = hashlib.sha256()
    for i in sorted(offsets):
        ref.seek(offsets[i])
        left = layout.tensors[i].nbytes
        while left:
            piece = ref.read(min(left, _PIECE))
            if not piece:
                raise InputError("reference file is shorter than its own header says")
            sha.update(piece)
            left -= len(piece)
    return sha.digest()


_UINTS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_INTS = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}
_SIGNED = ("I8", "I16", "I32", "I64")


def _order(u: np.ndarray, dtype: str, inverse: bool = False) -> np.ndarray:
    """Bit patterns as integers in the order of the values they hold (floats: the sign bit set on
    positives, every bit flipped on negatives; signed integers: the sign bit flipped), or back."""
    sign = u.dtype.type(1) << u.dtype.type(8 * u.dtype.itemsize - 1)
    if dtype in LM_DTYPES:
        if inverse:
            return np.where(u & sign, u ^ sign, ~u)
        return np.where(u & sign, ~u, u | sign)
    return u ^ sign if dtype in _SIGNED else u


def delta(new: bytes, old: bytes, dtype: str, size: int) -> bytes:
    """The zigzag-coded difference of ``new`` and ``old`` in value order, value by value (wrapping
    integer arithmetic: exact and portable). A weight one step later is a few units away."""
    u, v = np.frombuffer(new, _UINTS[size]), np.frombuffer(old, _UINTS[size])
    d = (_order(u, dtype) - _order(v, dtype)).view(_INTS[size])
    return ((d << 1) ^ (d >> (8 * size - 1))).view(_UINTS[size]).tobytes()


def undelta(stored: bytes, old: bytes, dtype: str, size: int) -> bytes:
    """The inverse of :func:`delta`: ``new`` from the stored differences and ``old``."""
    z, v = np.frombuffer(stored, _UINTS[size]), np.frombuffer(old, _UINTS[size])
    one = z.dtype.type(1)
    d = (z >> one) ^ (z.dtype.type(0) - (z & one))
    return _order(_order(v, dtype) + d, dtype, inverse=True).tobytes()


class ReferenceDelta:
    """A data-section range against the reference bytes of the tensors coded against it: :meth:`forward`
    (the encoder: :func:`delta`) and :meth:`inverse` (the decoder). Stateless per call: chunks in any
    order, each holding whole values of those tensors (the plan cuts at values when a group is a value,
    which the encoder requires with a reference)."""

    def __init__(self, layout: SourceLayout, path: Path | None, offsets: dict[int, int]) -> None:
        self.layout, self.offsets = layout, dict(offsets)
        self.file: BinaryIO | None = open(path, "rb") if path is not None and offsets else None  # closed by close()

    def forward(self, begin: int, data: bytes) -> bytes:
        return self._apply(begin, data, delta)

    def inverse(self, begin: int, data: bytes) -> bytes:
        return self._apply(begin, data, undelta)

    def _apply(self, begin: int, data: bytes, how: Callable[[bytes, bytes, str, int], bytes]) -> bytes:
        if self.file is None:
            return data
        end = begin + len(data)
        out: bytearray | None = None
        for i, at in self.offsets.items():
            t = self.layout.tensors[i]
            lo, hi = max(begin, t.begin), min(end, t.end)
            if lo >= hi:
                continue
            if (lo - t.begin) % t.item_size or (hi - lo) % t.item_size:
                raise FormatError(f"tensor {t.name!r} is coded against a reference, but a chunk cuts its values")
            self.file.seek(at + lo - t.begin)
            other = self.file.read(hi - lo)
            if len(other) != hi - lo:
                raise InputError("reference file changed while being read")
            if out is None:
                out = bytearray(data)
            out[lo - begin : hi - begin] = how(data[lo - begin : hi - begin], other, t.dtype, t.item_size)
        return bytes(out) if out is not None else data

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def check_tensors(layout: SourceLayout, ref_layout: SourceLayout, tensors: Sequence[int]) -> dict[int, int]:
    """The reference offsets of ``tensors`` (what an archive coded against it), refusing a reference that lacks one
    (by name, shape and dtype)."""
    paired = pairs(layout, ref_layout)
    for i in tensors:
        if i not in paired:
            t = layout.tensors[i]
            raise ReferenceMismatchError(
                f"the reference has no tensor {t.name!r} of shape {list(t.shape)} and dtype {t.dtype}, "
                "which this archive was coded against"
            )
    return {i: paired[i] for i in tensors}


class Forward:
    """What the codecs see of a data-section range: differences from the reference where a tensor is coded
    against it, then the zero-sum filters (which never touch such a tensor). The encoder's side."""

    def __init__(self, filters: ForwardFilter, against: ReferenceDelta | None = None, sha256: bytes = b"") -> None:
        self.inner, self.against = filters, against
        self.filters = filters.filters
        self.reference = dict(against.offsets) if against is not None else {}
        self.reference_sha256 = sha256

    def apply(self, begin: int, raw: bytes) -> bytes:
        return self.inner.apply(begin, self.against.forward(begin, raw) if self.against is not None else raw)

    def close(self) -> None:
        if self.against is not None:
            self.against.close()
