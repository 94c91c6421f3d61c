from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmgc_format.errors import CorruptChunkError, UnsupportedError
from lmgc_format.tensors.serialize import SCHEMES, get_scheme, reorder


def test_paper_schemes_look_as_documented() -> None:
    data = bytes.fromhex("0000803fcdcc4cbd")
    assert get_scheme("none").to_text(data, 4) == b"0000803fcdcc4cbd"
    assert get_scheme("space").to_text(data, 4) == b"0000803f cdcc4cbd"
    assert get_scheme("comma").to_text(data, 4) == b"0000803f,cdcc4cbd"
    assert get_scheme("comma_space").to_text(data, 4) == b"0000803f, cdcc4cbd"
    assert get_scheme("semicolon").to_text(data, 4) == b"0000803f;cdcc4cbd"
    assert get_scheme("0x").to_text(data, 4) == b"0x0000803f 0xcdcc4cbd"
    assert get_scheme("iso").to_text(b"A\xe9", 4) == "Aé".encode()


@given(st.sampled_from(list(SCHEMES)), st.binary(min_size=1, max_size=64), st.integers(1, 8))
def test_text_roundtrip_and_completion(name: str, data: bytes, group: int) -> None:
    s = get_scheme(name)
    text = s.to_text(data, group)
    assert set(text) <= s.allowed_bytes()
    assert s.from_text(text, len(data), group) == data
    assert s.is_complete(text, len(data), group)
    assert not s.is_complete(text[:-1], len(data), group) or (not s.hex and text[-1:] < b"\x80")
    if s.hex:
        assert len(text) == s.text_length(len(data), group)


@pytest.mark.parametrize("name", [n for n in SCHEMES if n != "iso"])
def test_malformed_text_is_rejected(name: str) -> None:
    s = get_scheme(name)
    good = s.to_text(b"\x01\x02\x03\x04\x05\x06\x07\x08", 4)
    with pytest.raises(CorruptChunkError):
        s.is_complete(good + b"0", 8, 4)
    with pytest.raises(CorruptChunkError):
        s.from_text(good[:-1] + b"g", 8, 4)


def test_unknown_scheme() -> None:
    with pytest.raises(UnsupportedError, match="choose from"):
        get_scheme("base64")


@given(st.binary(max_size=40), st.integers(1, 8))
def test_reorder_is_an_involution(data: bytes, group: int) -> None:
    assert reorder(reorder(data, group), group) == data
    if group == 4 and len(data) >= 4:
        assert reorder(data, 4)[:4] == data[:4][::-1]  # msb first for little-endian fp32
