"""Classical lossless codecs as baselines, each as (encode, decode) over raw tensor bytes.

Optional libraries are imported lazily: a codec whose library is missing reports why
(``pip install lmgc[bench]``) instead of disappearing from the table. Codecs that need a
numeric dtype (fpzip, zfp) say so when the bytes are not of one they support.
FLAC and PNG are used as the paper used them: the bytes as 16-bit PCM / 8-bit grayscale.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import zstandard


class Unavailable(Exception):
    """The codec cannot run here (missing library or unsupported dtype); the message says why."""


@dataclass(frozen=True)
class Classical:
    name: str
    encode: Callable[[bytes, str], bytes]  # (data, safetensors dtype) -> payload
    decode: Callable[[bytes, str, int], bytes]  # (payload, dtype, original length) -> data
    note: str = ""
    per_tensor: bool = False  # a numeric codec: on a file of several dtypes the bench calls it per tensor


def _need(module: str) -> object:
    try:
        return __import__(module)
    except ImportError:
        raise Unavailable(
            f"needs the {module!r} package: pip install 'lmgc[bench]' (in a clone: pip install -e '.[bench]')"
        ) from None


_NUMPY = {"F64": np.float64, "F32": np.float32, "F16": np.float16}


def _floats(data: bytes, dtype: str, codec: str, allowed: tuple[str, ...]) -> np.ndarray:
    if dtype not in allowed:
        raise Unavailable(f"{codec} codes {'/'.join(allowed)} only, not {dtype}")
    return np.frombuffer(data, dtype=_NUMPY[dtype]).copy()  # fpzip needs a writable array


# -- general-purpose byte codecs -------------------------------------------------------------


def _zstd(level: int) -> Classical:
    return Classical(
        f"zstd -{level}",
        lambda d, _t: zstandard.ZstdCompressor(level=level).compress(d),
        lambda p, _t, n: zstandard.ZstdDecompressor().decompress(p, max_output_size=n),
    )


def _brotli_enc(d: bytes, _t: str) -> bytes:
    return _need("brotli").compress(d, quality=11)  # type: ignore[attr-defined, no-any-return]


def _brotli_dec(p: bytes, _t: str, _n: int) -> bytes:
    return _need("brotli").decompress(p)  # type: ignore[attr-defined, no-any-return]


def _ppmd_enc(d: bytes, _t: str) -> bytes:
    return _need("pyppmd").compress(d, max_order=6, mem_size=16 << 20)  # type: ignore[attr-defined, no-any-return]


def _ppmd_dec(p: bytes, _t: str, _n: int) -> bytes:
    return _need("pyppmd").decompress(p, max_order=6, mem_size=16 << 20)  # type: ignore[attr-defined, no-any-return]


def _blosc2(shuffle: str) -> Classical:
    def enc(d: bytes, dtype: str) -> bytes:
        blosc2 = _need("blosc2")
        from lmgc_format.tensors.source import DTYPE_SIZES

        flt = blosc2.Filter.BITSHUFFLE if shuffle == "bitshuffle" else blosc2.Filter.SHUFFLE  # type: ignore[attr-defined]
        return blosc2.compress(  # type: ignore[attr-defined, no-any-return]
            d,
            typesize=DTYPE_SIZES.get(dtype, 1),
            clevel=9,
            filter=flt,
            codec=blosc2.Codec.ZSTD,  # type: ignore[attr-defined]
        )

    def dec(p: bytes, _t: str, _n: int) -> bytes:
        return bytes(_need("blosc2").decompress(p))  # type: ignore[attr-defined]

    return Classical(f"blosc2 {shuffle}+zstd", enc, dec)


def _byte_split_xz() -> Classical:
    """Each value's bytes split into planes (byte 0 of every value, then byte 1, ...), then xz -9: the
    classical answer to floats, whose exponent bytes repeat while the mantissa bytes do not."""
    from lmgc_format.tensors.source import DTYPE_SIZES
    from lmgc_format.transforms.shuffle import byte_shuffle, byte_unshuffle

    def enc(d: bytes, dtype: str) -> bytes:
        return lzma.compress(byte_shuffle(d, DTYPE_SIZES.get(dtype, 1)), preset=9)

    def dec(p: bytes, dtype: str, _n: int) -> bytes:
        return byte_unshuffle(lzma.decompress(p), DTYPE_SIZES.get(dtype, 1))

    return Classical("bytesplit+xz -9", enc, dec)


# -- float codecs -----------------------------------------------------------------------------


def _fpzip_enc(d: bytes, dtype: str) -> bytes:
    arr = _floats(d, dtype, "fpzip", ("F32", "F64"))
    return _need("fpzip").compress(arr, precision=0)  # type: ignore[attr-defined, no-any-return]


def _fpzip_dec(p: bytes, dtype: str, _n: int) -> bytes:
    return np.ascontiguousarray(_need("fpzip").decompress(p)).astype(_NUMPY[dtype]).tobytes()  # type: ignore[attr-defined]


def _zfp_enc(d: bytes, dtype: str) -> bytes:
    arr = _floats(d, dtype, "zfp", ("F32", "F64"))
    return _need("zfpy").compress_numpy(arr)  # type: ignore[attr-defined, no-any-return]  # no tolerance: reversible


def _zfp_dec(p: bytes, dtype: str, _n: int) -> bytes:
    return np.ascontiguousarray(_need("zfpy").decompress_numpy(p)).astype(_NUMPY[dtype]).tobytes()  # type: ignore[attr-defined]


_ZIPNN_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}


def _zipnn(dtype: str) -> object:
    if dtype not in _ZIPNN_DTYPES:
        raise Unavailable(f"ZipNN codes {'/'.join(_ZIPNN_DTYPES)} only, not {dtype}")
    zipnn = _need("zipnn")
    return zipnn.ZipNN(input_format="byte", bytearray_dtype=_ZIPNN_DTYPES[dtype])  # type: ignore[attr-defined]


def _zipnn_enc(d: bytes, dtype: str) -> bytes:
    return bytes(_zipnn(dtype).compress(bytearray(d)))  # type: ignore[attr-defined]  # a copy: ZipNN mutates its input


def _zipnn_dec(p: bytes, dtype: str, _n: int) -> bytes:
    return bytes(_zipnn(dtype).decompress(p))  # type: ignore[attr-defined]


_PCO_TYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2"}
_PCO_TYPES |= {"I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "u1"}


def _pcodec_enc(d: bytes, dtype: str) -> bytes:
    """pcodec (the numerical codec of choice for such arrays) at level 8, 8-bit types enabled; bfloat16 as
    its 16-bit patterns. Bytes past the last whole value would not round-trip: refused."""
    pcodec = _need("pcodec")
    if dtype not in _PCO_TYPES:
        raise Unavailable(f"pcodec codes numbers, not {dtype}")
    arr = np.frombuffer(d, dtype=_PCO_TYPES[dtype])
    if arr.nbytes != len(d):
        raise Unavailable("pcodec needs whole values")
    config = pcodec.ChunkConfig(compression_level=8, enable_8_bit=True)  # type: ignore[attr-defined]
    return pcodec.standalone.simple_compress(arr, config)  # type: ignore[attr-defined, no-any-return]


def _pcodec_dec(p: bytes, dtype: str, _n: int) -> bytes:
    pcodec = _need("pcodec")
    return pcodec.standalone.simple_decompress(p).astype(_PCO_TYPES[dtype]).tobytes()  # type: ignore[attr-defined, no-any-return]


# -- media codecs, as the paper used them ---------------------------------------------------------


def _flac_enc(d: bytes, _t: str) -> bytes:
    sf = _need("soundfile")
    pcm = np.frombuffer(d + b"\0" * (len(d) % 2), dtype="<i2")
    buf = io.BytesIO()
    sf.write(buf, pcm, 48000, format="FLAC", subtype="PCM_16")  # type: ignore[attr-defined]
    return buf.getvalue()


def _flac_dec(p: bytes, _t: str, n: int) -> bytes:
    sf = _need("soundfile")
    pcm, _ = sf.read(io.BytesIO(p), dtype="int16")  # type: ignore[attr-defined]
    return pcm.astype("<i2").tobytes()[:n]  # type: ignore[no-any-return]


def _png_enc(d: bytes, _t: str) -> bytes:
    _need("PIL")
    from PIL import Image

    width = max(1, min(4096, math.isqrt(len(d)) or 1))
    height = -(-len(d) // width)
    pixels = np.zeros(width * height, dtype=np.uint8)
    pixels[: len(d)] = np.frombuffer(d, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels.reshape(height, width), mode="L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _png_dec(p: bytes, _t: str, n: int) -> bytes:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(p))).tobytes()[:n]


CODECS: tuple[Classical, ...] = (
    Classical("gzip -9", lambda d, _t: gzip.compress(d, 9, mtime=0), lambda p, _t, _n: gzip.decompress(p)),
    Classical("bz2 -9", lambda d, _t: bz2.compress(d, 9), lambda p, _t, _n: bz2.decompress(p)),
    Classical(
        "xz -9e",
        lambda d, _t: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME),
        lambda p, _t, _n: lzma.decompress(p),
    ),
    _zstd(3),  # zstd's default: the speed end of the classical curve
    _zstd(19),
    _zstd(22),
    Classical("brotli 11", _brotli_enc, _brotli_dec),
    Classical("PPMd o6", _ppmd_enc, _ppmd_dec),
    _blosc2("shuffle"),
    _blosc2("bitshuffle"),
    _byte_split_xz(),
    Classical("fpzip", _fpzip_enc, _fpzip_dec, "lossless mode (precision 0)", per_tensor=True),
    Classical("zfp", _zfp_enc, _zfp_dec, "reversible mode", per_tensor=True),
    Classical("ZipNN", _zipnn_enc, _zipnn_dec, per_tensor=True),
    Classical("pcodec", _pcodec_enc, _pcodec_dec, "level 8", per_tensor=True),
    Classical("FLAC", _flac_enc, _flac_dec, "bytes as 16-bit PCM"),
    Classical("PNG", _png_enc, _png_dec, "bytes as 8-bit grayscale"),
)

NAMES = tuple(c.name for c in CODECS)


def by_name(names: list[str] | None) -> tuple[Classical, ...]:
    if not names:
        return CODECS
    wanted = {n.lower().replace(" ", "") for n in names}
    picked = tuple(c for c in CODECS if c.name.lower().replace(" ", "") in wanted)
    known = {c.name.lower().replace(" ", "") for c in CODECS}
    unknown = sorted(wanted - known)
    if unknown:
        from lmgc_format.errors import UnsupportedError

        raise UnsupportedError(f"unknown codec(s) {', '.join(unknown)}; known: {', '.join(NAMES)}")
    return picked
