"""The compact header and index of format 1.4 (preamble flag 4, docs/FORMAT.md "Compact layout").

Same records as the 1.0-1.3 layout (header.py's ``Header`` and ``Index``), written small: one-letter
keys, fields left out where they hold their default or mean nothing for the archive (no LM: no
model, runtime or coder), the safetensors header as a tensor table when safetensors' writer would
produce it (canonical.py), integer bit counts, an 8-byte digest of the original. Frame heads are
gone: the index lists each chunk's codec, payload length and CRC, and offsets follow from the plan.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import zstandard

from lmgc_format.container.canonical import Table, rebuild, table_of
from lmgc_format.container.constants import MAX_HEADER_LEN, lm_coder
from lmgc_format.container.header import AlphabetRecord, Header, Index, ModelRecord, WindowLayout
from lmgc_format.container.sections import field, pack, unpack
from lmgc_format.container.zstdcap import one_frame
from lmgc_format.errors import FormatError
from lmgc_format.tensors.serialize import BYTE_ORDERS, DEFAULT_BYTE_ORDER, DEFAULT_SCHEME, SCHEMES
from lmgc_format.tensors.source import DTYPE_SIZES, MAX_RANK, MAX_TENSORS
from lmgc_format.transforms.filters import KINDS

# The header blob's first byte: how the msgpack map after it is stored
PLAIN, ZSTD = 0, 1
DIGEST_BYTES = 8  # of the original file's SHA-256: an end-to-end check, as zstd's and xz's checksums
CHUNK_FIELDS = 4  # codec, payload length, payload CRC-32, model bits


def _blob(obj: dict[str, Any]) -> bytes:
    plain = pack(obj)
    packed = zstandard.ZstdCompressor(level=19, write_content_size=False).compress(plain)
    return bytes([ZSTD]) + packed if len(packed) < len(plain) else bytes([PLAIN]) + plain


def _unblob(raw: bytes, what: str) -> dict[str, Any]:
    if not raw:
        raise FormatError(f"{what} is empty")
    if raw[0] == PLAIN:
        return unpack(raw[1:], what)
    if raw[0] != ZSTD:
        raise FormatError(f"{what}: unknown encoding {raw[0]}")
    try:
        plain = one_frame(raw[1:], MAX_HEADER_LEN, what)
    except zstandard.ZstdError as exc:
        raise FormatError(f"{what} is not a valid zstd frame ({exc})") from None
    return unpack(plain, what)


def header_obj(h: Header, with_source: bool = True) -> dict[str, Any]:
    """The compact map of header ``h``; without the source description when asked
    (what inspect weighs the tensor table with)."""
    lay = h.layout
    obj: dict[str, Any] = {"v": h.created_by}
    if with_source:
        found = table_of(h.source_header)
        if found is None:
            obj["j"] = h.source_header
            obj["n"] = h.source_size
        else:
            table, metadata = found
            obj["t"] = table
            if metadata is not None:
                obj["m"] = metadata
            if h.source_size != _implied_size(h.source_header, table):
                obj["n"] = h.source_size
    obj["w"] = [lay.window_bytes, lay.batch, lay.bytes_per_group, lay.plain_chunk_bytes]
    obj["p"] = lay.procedure
    if h.scheme != DEFAULT_SCHEME:
        obj["s"] = h.scheme
    if h.byte_order != DEFAULT_BYTE_ORDER:
        obj["o"] = h.byte_order
    if lay.head != "none":
        obj["hd"] = lay.head
    if h.model is not None:  # the LM's records, and what its float procedures need to match
        obj["lm"] = {
            "model": _binary_digest(dict(h.model.__dict__)),
            "alphabet": None if h.alphabet is None else _binary_digest(dict(h.alphabet.__dict__)),
            "runtime": h.runtime,
        }
        if h.coder != lm_coder(lay.procedure):
            obj["lm"]["coder"] = h.coder
    if h.filters:  # flat [tensor, kind number, ...]: a kind's number is its place in filters.KINDS
        # (a kind this version does not know stays a string: a reader refuses it, as it would a crafted one)
        obj["f"] = [v for tensor, kind in h.filters for v in (tensor, KINDS.index(kind) if kind in KINDS else kind)]
    if h.rows:  # flat [tensor, row length, ...]
        obj["r"] = [v for row in h.rows for v in row]
    if h.reference_tensors:
        obj["x"] = {"h": h.reference_sha256, "t": list(h.reference_tensors)}
    return obj


def header_to_bytes(h: Header) -> bytes:
    return _blob(header_obj(h))


def header_blob_size(h: Header, with_source: bool = True) -> int:
    return len(_blob(header_obj(h, with_source)))


def _binary_digest(record: dict[str, Any]) -> dict[str, Any]:
    """A record whose ``sha256`` is hex, with the digest as 32 bytes (half the size, and zstd cannot
    shrink hex digits below ~4 bits each); fields that are None are left out."""
    return {**{k: v for k, v in record.items() if v is not None}, "sha256": bytes.fromhex(record["sha256"])}


def _hex_digest(record: Any, what: str) -> Any:
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), bytes) or len(record["sha256"]) != 32:
        raise FormatError(f"{what}: sha256 must be 32 bytes")
    return {**record, "sha256": record["sha256"].hex()}


def _pairs(flat: Any, key: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(flat, list) or len(flat) % 2 or not all(type(v) is int and v >= 0 for v in flat):
        raise FormatError(f"header.{key}: must be a flat list of integer pairs")
    return tuple((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))


def _implied_size(header_json: bytes, table: Table) -> int:
    data = 0
    for _, dtype, shape in table:
        data += math.prod(shape) * DTYPE_SIZES[dtype]
    return 8 + len(header_json) + data


def _table(obj: Any) -> Table:
    w = "header.t"
    if not isinstance(obj, list) or len(obj) > MAX_TENSORS:
        raise FormatError(f"{w}: not a tensor table")
    for row in obj:
        if (
            not isinstance(row, list)
            or len(row) != 3
            or not isinstance(row[0], str)
            or row[1] not in DTYPE_SIZES
            or not isinstance(row[2], list)
            or len(row[2]) > MAX_RANK
            or not all(type(n) is int and 0 <= n < 1 << 62 for n in row[2])
        ):
            raise FormatError(f"{w}: malformed entry")
    return obj


def header_from_bytes(raw: bytes) -> Header:
    obj = _unblob(raw, "header")
    w = "header"
    if "t" in obj:
        if "j" in obj:
            raise FormatError("header: both a tensor table and a stored JSON header")
        table = _table(obj["t"])
        metadata = obj.get("m")
        if metadata is not None and not (
            isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
        ):
            raise FormatError("header.m: metadata must map strings to strings")
        source_header = rebuild(table, metadata)
        size = obj["n"] if "n" in obj else _implied_size(source_header, table)
    else:
        source_header = field(obj, "j", bytes, w)
        size = obj.get("n")
    if type(size) is not int or size < 0:
        raise FormatError("header: source size missing or invalid")
    scheme = obj.get("s", DEFAULT_SCHEME)
    if scheme not in SCHEMES:
        raise FormatError(f"header: unknown serialization scheme {scheme!r}")
    byte_order = obj.get("o", DEFAULT_BYTE_ORDER)
    if byte_order not in BYTE_ORDERS:
        raise FormatError(f"header: unknown byte order {byte_order!r}")
    windows = field(obj, "w", list, w)
    if len(windows) != 4 or not all(type(v) is int for v in windows):
        raise FormatError("header.w: window layout must be four integers")
    layout = WindowLayout.from_obj(
        {
            "window_bytes": windows[0],
            "batch": windows[1],
            "bytes_per_group": windows[2],
            "plain_chunk_bytes": windows[3],
            "head": obj.get("hd", "none"),
            "procedure": field(obj, "p", str, w),
        }
    )
    model = alphabet = None
    runtime: dict[str, Any] = {}
    coder: dict[str, Any] = {}
    if "lm" in obj:
        lm = field(obj, "lm", dict, w)
        model = ModelRecord.from_obj(_hex_digest(field(lm, "model", dict, "header.lm"), "header.lm.model"))
        alphabet_obj = lm.get("alphabet")
        if alphabet_obj is None:
            raise FormatError("header.lm: a model needs its alphabet")
        alphabet = AlphabetRecord.from_obj(_hex_digest(alphabet_obj, "header.lm.alphabet"))
        runtime = field(lm, "runtime", dict, "header.lm")
        coder = field(lm, "coder", dict, "header.lm") if "coder" in lm else lm_coder(layout.procedure)
    filters = _pairs(obj.get("f", []), "f")
    if not all(kind < len(KINDS) for _, kind in filters):
        raise FormatError("header.f: unknown filter kind (a newer lmgc wrote this archive)")
    rows = _pairs(obj.get("r", []), "r")
    ref_tensors: tuple[int, ...] = ()
    ref_sha = b""
    if "x" in obj:
        x = field(obj, "x", dict, w)
        ref_sha = field(x, "h", bytes, "header.x")
        listed = field(x, "t", list, "header.x")
        if len(ref_sha) != 32 or not listed or not all(type(v) is int and v >= 0 for v in listed):
            raise FormatError("header.x: a reference needs its 32-byte SHA-256 and the tensors coded against it")
        if any(b <= a for a, b in itertools.pairwise(listed)):
            raise FormatError("header.x: the tensors coded against the reference must increase")
        ref_tensors = tuple(listed)
    return Header(
        created_by=field(obj, "v", str, w),
        source_header=source_header,
        source_size=size,
        scheme=scheme,
        byte_order=byte_order,
        layout=layout,
        model=model,
        alphabet=alphabet,
        runtime=runtime,
        coder=coder,
        filters=tuple((tensor, KINDS[kind]) for tensor, kind in filters),
        rows=rows,
        reference_tensors=ref_tensors,
        reference_sha256=ref_sha,
    )


def index_to_bytes(index: Index) -> bytes:
    """The compact index of ``index``: plain msgpack (it is mostly numbers)."""
    obj: dict[str, Any] = {
        "c": [v for c in index.chunks for v in (c.codec, c.payload_length, c.payload_crc, c.model_bits)],
        "b": [math.ceil(b) for b in index.tensor_bits],
        "h": index.sha256[:DIGEST_BYTES],
        "s": round(index.seconds * 1000),
    }
    if any(index.tensor_model_bits):
        obj["lb"] = [math.ceil(b) for b in index.tensor_model_bits]
    if index.gap_bits:
        obj["g"] = math.ceil(index.gap_bits)
    if index.tokens:
        obj["k"] = index.tokens
    return pack(obj)


def _naturals(values: Any, what: str, limit: int = 1 << 64) -> list[int]:
    if not isinstance(values, list) or not all(type(v) is int and 0 <= v < limit for v in values):
        raise FormatError(f"index: malformed {what}")
    return values


def _milliseconds(ms: int) -> int:
    """The index's encode time, within what a float of seconds holds exactly (2**53 ms: 285,000 years)."""
    if ms < 0 or ms >= 1 << 53:
        raise FormatError(f"index.s: an encode time of {ms:,} ms is out of range (0 to 2**53)")
    return ms


def index_from_bytes(raw: bytes) -> tuple[list[tuple[int, int, int, int]], dict[str, Any]]:
    """The chunk rows (codec, payload length, CRC, model bits) and the rest of the compact index, checked
    for types; offsets are the reader's to compute (it knows the plan)."""
    obj = unpack(raw, "index")
    flat = _naturals(obj.get("c"), "chunk list")
    if len(flat) % CHUNK_FIELDS:
        raise FormatError("index: chunk list is not made of whole entries")
    rows = [(flat[i], flat[i + 1], flat[i + 2], flat[i + 3]) for i in range(0, len(flat), CHUNK_FIELDS)]
    bits = _naturals(obj.get("b"), "tensor bits")
    lm_bits = _naturals(obj.get("lb", [0] * len(bits)), "LM tensor bits")
    if len(lm_bits) != len(bits):
        raise FormatError("index: malformed LM tensor bits")
    digest = field(obj, "h", bytes, "index")
    if len(digest) != DIGEST_BYTES:
        raise FormatError(f"index: the digest must be {DIGEST_BYTES} bytes")
    rest = {
        "tensor_bits": tuple(float(b) for b in bits),
        "tensor_model_bits": tuple(float(b) for b in lm_bits),
        "gap_bits": float(_naturals([obj.get("g", 0)], "gap bits")[0]),
        "sha256": digest,
        "tokens": _naturals([obj.get("k", 0)], "token count")[0],
        "seconds": _milliseconds(field(obj, "s", int, "index")) / 1000,
    }
    return rows, rest
