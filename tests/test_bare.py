"""Bare tensors (lmgc_format/bare.py): one tensor with no container, what the zarr 3 codec stores."""

from __future__ import annotations

import numpy as np
import pytest
import zstandard

from lmgc_format import bare
from lmgc_format.container.constants import FAST2_PROCEDURE, FAST_PROCEDURE, Codec
from lmgc_format.errors import CorruptChunkError, FormatError, LmgcError, UnsupportedError
from tests.conftest import gradient_like


def cases() -> dict[str, tuple[np.ndarray, str]]:
    g = gradient_like((96, 300), 1).numpy()
    head = g[:10].copy()
    head[-1] = -head[:-1].sum(0, dtype=np.float32)  # columns sum to zero, as a softmax head's do (filters)
    return {
        "matrix": (g, "F32"),
        "flat": (np.tile(g[0], 40), "F32"),  # rows inferred for a flat tensor
        "f16": (g.astype(np.float16), "F16"),
        "f64": (g[:20].astype(np.float64), "F64"),
        "int8": (np.random.default_rng(0).integers(-7, 8, (64, 64)).astype(np.int8), "I8"),
        "tiny": (np.arange(3, dtype=np.float32), "F32"),  # stored
        "noise": (np.random.default_rng(1).integers(0, 256, 4096).astype(np.uint8), "U8"),  # stored: no gain
        "scalar": (np.array(1.5, np.float32), "F32"),
        "empty": (np.zeros((0, 7), np.float32), "F32"),
        "head": (head, "F32"),
    }


@pytest.mark.parametrize("name", list(cases()))
@pytest.mark.parametrize("procedure", [FAST2_PROCEDURE, FAST_PROCEDURE])
def test_round_trip_and_its_few_bytes(name: str, procedure: str) -> None:
    """Layout 2 (cm-fast-v2, what lmgc 0.18 writes) and layout 1 (cm-fast-v1, lmgc 0.16-0.17's)."""
    arr, dtype = cases()[name]
    payload = bare.encode(arr.tobytes(), dtype, arr.shape, procedure=procedure)
    assert bare.decode(payload, dtype, arr.shape) == arr.tobytes()
    assert payload[0] & 0xF8 == (bare.TAG2 if procedure == FAST2_PROCEDURE else bare.TAG)
    assert bare.overhead(payload, dtype, arr.shape) <= 16


def test_layout_2_codes_floats_with_cm_fast_v2_and_layout_1_with_cm_fast_v1() -> None:
    arr, dtype = cases()["matrix"]
    for procedure, codec in ((FAST2_PROCEDURE, Codec.CM_FAST2), (FAST_PROCEDURE, Codec.CM_FAST)):
        payload = bare.encode(arr.tobytes(), dtype, arr.shape, procedure=procedure)
        parsed = bare._parse(payload, dtype, arr.shape)
        assert not isinstance(parsed, bytes) and parsed[0].layout.procedure == procedure
        assert codec in {c for c, _ in parsed[2]}


def test_what_is_not_a_bare_tensor_is_refused_by_name() -> None:
    arr, dtype = cases()["matrix"]
    payload = bare.encode(arr.tobytes(), dtype, arr.shape)
    with pytest.raises(FormatError, match=r"first byte is 0x28.*another codec"):
        bare.decode(zstandard.ZstdCompressor().compress(arr.tobytes()), dtype, arr.shape)
    with pytest.raises(FormatError, match="first byte is nothing"):
        bare.decode(b"", dtype, arr.shape)
    with pytest.raises(LmgcError):  # the chunk table no longer fits
        bare.decode(payload[:8], dtype, arr.shape)
    damaged = bytearray(payload)
    damaged[len(damaged) // 2] ^= 4
    with pytest.raises(LmgcError):  # a damaged coded chunk: refused, never wrong values
        bare.decode(bytes(damaged), dtype, arr.shape)
    crc_at = bare.overhead(payload, dtype, arr.shape) - 4
    forged = payload[:crc_at] + bytes(4) + payload[crc_at + 4 :]
    with pytest.raises(CorruptChunkError, match="CRC-32"):
        bare.decode(forged, dtype, arr.shape)
    with pytest.raises(LmgcError):  # another shape than it was coded with
        bare.decode(payload, dtype, (arr.shape[1], arr.shape[0] + 1))
    with pytest.raises(UnsupportedError, match="'C64'"):
        bare.encode(b"\0" * 8, "C64", (1,))
    with pytest.raises(UnsupportedError, match="not a F32 tensor"):
        bare.encode(b"\0" * 7, "F32", (2,))
