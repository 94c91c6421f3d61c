"""How quick-v1 cuts a value into planes (quick_codec.py): the exponent first, then the sign with the
mantissa 8 bits at a time from the top; an integer's bytes from the most significant. Compiled with numba:
plane by plane, so each loop has one shift and vectorises."""

from __future__ import annotations

import numba as nb
import numpy as np

# dtype -> (value bytes, where plane 0 starts, its width in bits, a float: sign and mantissa follow it)
FIELDS: dict[str, tuple[int, int, int, bool]] = {
    "F32": (4, 23, 8, True),
    "BF16": (2, 7, 8, True),
    "F16": (2, 10, 5, True),
    "F64": (8, 55, 8, True),
    "I8": (1, 0, 8, False),
    "U8": (1, 0, 8, False),
    "BOOL": (1, 0, 8, False),
    "I16": (2, 8, 8, False),
    "U16": (2, 8, 8, False),
    "I32": (4, 24, 8, False),
    "U32": (4, 24, 8, False),
    "I64": (8, 56, 8, False),
    "U64": (8, 56, 8, False),
}


def planes_of(dtype: str) -> list[int]:
    """The width in bits of each plane of a ``dtype`` value."""
    _, shift, width, is_float = FIELDS[dtype]
    rest = shift + 1 if is_float else shift
    widths = [width]
    while rest > 0:
        widths.append(min(8, rest))
        rest -= 8
    return widths


@nb.njit(cache=True, nogil=True)
def split(vals: np.ndarray, size: int, shift: int, width: int, is_float: bool, planes: np.ndarray) -> None:
    # plane by plane: loops of one shift each, which the compiler vectorises
    rest = shift + 1 if is_float else shift
    sh = np.uint64(shift)
    sign = np.uint64(8 * size - 1)
    mask0 = np.uint64((1 << width) - 1)
    low = np.uint64((1 << shift) - 1)
    n = vals.shape[0]
    for i in range(n):
        planes[0, i] = (np.uint64(vals[i]) >> sh) & mask0
    for p in range(1, planes.shape[0]):
        hi = rest - 8 * (p - 1)
        lo = np.uint64(max(hi - 8, 0))
        m = np.uint64((1 << (hi - max(hi - 8, 0))) - 1)
        if is_float:
            for i in range(n):
                u = np.uint64(vals[i])
                planes[p, i] = (((u & low) | ((u >> sign) << sh)) >> lo) & m
        else:
            for i in range(n):
                planes[p, i] = ((np.uint64(vals[i]) & low) >> lo) & m


@nb.njit(cache=True, nogil=True)
def join(planes: np.ndarray, size: int, shift: int, is_float: bool, vals: np.ndarray) -> None:
    rest = shift + 1 if is_float else shift
    sh = np.uint64(shift)
    sign = np.uint64(8 * size - 1)
    n = vals.shape[0]
    for i in range(n):
        vals[i] = np.uint64(planes[0, i]) << sh
    for p in range(1, planes.shape[0]):
        hi = rest - 8 * (p - 1)
        lo = max(hi - 8, 0)
        if is_float and p == 1:  # the sign: the plane's top bit
            top_bit = np.uint64(hi - lo - 1)
            low = np.uint64((1 << (hi - lo - 1)) - 1)
            for i in range(n):
                b = np.uint64(planes[p, i])
                vals[i] |= ((b >> top_bit) << sign) | ((b & low) << np.uint64(lo))
        else:
            for i in range(n):
                vals[i] |= np.uint64(planes[p, i]) << np.uint64(lo)


def values(data: bytes, size: int) -> np.ndarray:
    """The chunk's values as native unsigned integers of their size (the bytes are little-endian)."""
    vals = np.frombuffer(data, dtype=f"<u{size}")
    return vals if vals.dtype.isnative else vals.astype(vals.dtype.newbyteorder("="))
