"""Serialization schemes of LM-GC: tensor bytes <-> the text the language model reads.

Every scheme turns a window of raw bytes into a byte string ("text") and back.
Hex schemes write each group of ``bytes_per_group`` bytes (one value, in the
order the bytes are stored) as lowercase hex digits, with an optional prefix
per group and a separator between groups. ``iso`` reads every byte as a
latin-1 character and writes that text as UTF-8 (what a tokenizer sees).

The decoder does not know how many tokens a window has; it stops when the text
decoded so far is complete (:meth:`Scheme.is_complete`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmgc_format.errors import CorruptChunkError, UnsupportedError

_HEX = b"0123456789abcdef"
_CONTINUATION = bytes(range(0x80, 0xC0))


@dataclass(frozen=True)
class Scheme:
    name: str
    separator: bytes
    prefix: bytes
    hex: bool  # False: latin-1 characters written as UTF-8

    def allowed_bytes(self) -> frozenset[int]:
        """Every byte that can occur in this scheme's text."""
        if not self.hex:
            return frozenset(range(0x80)) | {0xC2, 0xC3} | frozenset(range(0x80, 0xC0))
        return frozenset(_HEX) | frozenset(self.separator) | frozenset(self.prefix)

    def text_length(self, data_len: int, group: int) -> int:
        """Length of the text of ``data_len`` bytes (hex schemes only)."""
        groups = -(-data_len // group)
        return 2 * data_len + groups * len(self.prefix) + max(groups - 1, 0) * len(self.separator)

    def to_text(self, data: bytes, group: int) -> bytes:
        if not self.hex:
            return data.decode("latin-1").encode("utf-8")
        parts = [self.prefix + data[i : i + group].hex().encode("ascii") for i in range(0, len(data), group)]
        return self.separator.join(parts)

    def is_complete(self, text: bytes | bytearray, data_len: int, group: int) -> bool:
        """True once ``text`` holds the whole window; raises if it went past it."""
        if self.hex:
            need = self.text_length(data_len, group)
            if len(text) > need:
                raise CorruptChunkError("decoded text is longer than its window")
            return len(text) == need
        # UTF-8 of latin-1: one lead byte (<0x80 or >=0xC0) per character.
        chars = len(bytes(text).translate(None, _CONTINUATION))
        if chars > data_len:
            raise CorruptChunkError("decoded text is longer than its window")
        return chars == data_len and (not text or text[-1] < 0x80 or 0x80 <= text[-1] < 0xC0)

    def from_text(self, text: bytes, data_len: int, group: int) -> bytes:
        """Inverse of :meth:`to_text`; checks the structure exactly."""
        try:
            if not self.hex:
                data = text.decode("utf-8").encode("latin-1")
            else:
                digits = bytearray()
                pos = 0
                for i in range(0, data_len, group):
                    n = min(group, data_len - i)
                    if i:
                        if text[pos : pos + len(self.separator)] != self.separator:
                            raise ValueError("separator")
                        pos += len(self.separator)
                    if text[pos : pos + len(self.prefix)] != self.prefix:
                        raise ValueError("prefix")
                    pos += len(self.prefix)
                    digits += text[pos : pos + 2 * n]
                    pos += 2 * n
                if pos != len(text):
                    raise ValueError("length")
                if any(b not in _HEX for b in digits):
                    raise ValueError("digit")
                data = bytes.fromhex(digits.decode("ascii"))
        except (ValueError, UnicodeError):
            raise CorruptChunkError(f"decoded text is not valid {self.name!r} text") from None
        if len(data) != data_len:
            raise CorruptChunkError("decoded text has the wrong number of bytes")
        return data


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("none", b"", b"", True),
        Scheme("space", b" ", b"", True),
        Scheme("comma", b",", b"", True),
        Scheme("comma_space", b", ", b"", True),
        Scheme("semicolon", b";", b"", True),
        Scheme("0x", b" ", b"0x", True),
        Scheme("iso", b"", b"", False),
    )
}
DEFAULT_SCHEME = "comma"


def get_scheme(name: str) -> Scheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise UnsupportedError(f"unknown scheme {name!r} (choose from {', '.join(SCHEMES)})") from None


BYTE_ORDERS = ("msb_first", "stored")
DEFAULT_BYTE_ORDER = "msb_first"


def reorder(data: bytes, group: int) -> bytes:
    """Reverse the bytes of every group (an involution): little-endian values become
    most-significant-byte first, so sign and exponent lead each group's text.

    Measured on samples/convnet_digits_fp32 (SmolLM2-135M, comma, full-window
    ideal code length): 82.7 % of the original as stored vs 78.7 % msb-first.
    """
    if group <= 1:
        return data
    whole = len(data) - len(data) % group
    head = np.frombuffer(data, dtype=np.uint8, count=whole).reshape(-1, group)[:, ::-1].tobytes()
    return head + data[whole:][::-1]


def group_size(bytes_per_group: int, item_size: int) -> int:
    """``bytes_per_group`` 0 means one group per value (the dtype's size)."""
    return bytes_per_group if bytes_per_group > 0 else item_size
