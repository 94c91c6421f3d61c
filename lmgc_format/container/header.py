"""The archive header and index as typed records, with strict (de)serialization."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import zstandard

from lmgc_format.container.constants import (
    MAJOR,
    MAX_BATCH,
    MAX_BYTES_PER_GROUP,
    MAX_HEADER_LEN,
    MAX_WINDOW_BYTES,
    MINOR,
)
from lmgc_format.container.sections import field, pack, unpack
from lmgc_format.container.zstdcap import one_frame
from lmgc_format.errors import FormatError
from lmgc_format.tensors.serialize import BYTE_ORDERS, SCHEMES
from lmgc_format.transforms.filters import parse_pairs

PROCEDURE = "lockstep-kv-v1"  # see predictor.py: BOS first, B windows per step, finished rows fed BOS


@dataclass(frozen=True)
class ModelRecord:
    id: str
    kind: str
    sha256: str
    architecture: str
    vocab_size: int
    dtype: str
    bos_id: int

    @classmethod
    def from_obj(cls, obj: Any) -> ModelRecord:
        w = "header.model"
        if not isinstance(obj, dict):
            raise FormatError(f"{w} is not a map")
        return cls(
            field(obj, "id", str, w),
            field(obj, "kind", str, w),
            field(obj, "sha256", str, w),
            field(obj, "architecture", str, w),
            field(obj, "vocab_size", int, w),
            field(obj, "dtype", str, w),
            field(obj, "bos_id", int, w),
        )


@dataclass(frozen=True)
class AlphabetRecord:
    """The alphabet is derived from the model's vocabulary and the scheme (alphabet.py);
    the archive pins it by size and SHA-256 instead of storing ~1 KB of rows."""

    size: int
    sha256: str
    # How the alphabet was drawn from the vocabulary (alphabet.RULES); format 1.4 records it, older
    # archives leave it None and the decoder matches their digest (alphabet.for_tokenizer).
    rule: str | None = None

    @classmethod
    def from_obj(cls, obj: Any) -> AlphabetRecord:
        w = "header.alphabet"
        if not isinstance(obj, dict):
            raise FormatError(f"{w} is not a map")
        rule = obj.get("rule")
        if rule is not None and not isinstance(rule, str):
            raise FormatError(f"{w}.rule must be a string")
        out = cls(field(obj, "size", int, w), field(obj, "sha256", str, w), rule)
        if not 2 <= out.size <= 1 << 18 or len(out.sha256) != 64:
            raise FormatError(f"{w} is out of range")
        return out


@dataclass(frozen=True)
class WindowLayout:
    window_bytes: int
    batch: int
    bytes_per_group: int  # 0: one group per value (the dtype's size)
    plain_chunk_bytes: int
    head: str  # "restricted" | "full": how logits over the alphabet were computed
    procedure: str = PROCEDURE

    @classmethod
    def from_obj(cls, obj: Any) -> WindowLayout:
        w = "header.windows"
        if not isinstance(obj, dict):
            raise FormatError(f"{w} is not a map")
        out = cls(
            field(obj, "window_bytes", int, w),
            field(obj, "batch", int, w),
            field(obj, "bytes_per_group", int, w),
            field(obj, "plain_chunk_bytes", int, w),
            field(obj, "head", str, w),
            field(obj, "procedure", str, w),
        )
        if not (
            1 <= out.window_bytes <= MAX_WINDOW_BYTES
            and 1 <= out.batch <= MAX_BATCH
            and out.bytes_per_group <= MAX_BYTES_PER_GROUP
        ):
            raise FormatError(f"{w}: window layout out of range")
        if not 1 <= out.plain_chunk_bytes <= 1 << 30:
            raise FormatError(f"{w}: plain_chunk_bytes out of range")
        return out


@dataclass(frozen=True)
class Header:
    created_by: str
    source_header: bytes  # the safetensors JSON header, verbatim
    source_size: int
    scheme: str
    byte_order: str  # "msb_first" | "stored"
    layout: WindowLayout
    model: ModelRecord | None  # None when no chunk needed a model
    alphabet: AlphabetRecord | None
    runtime: dict[str, Any]
    coder: dict[str, Any]
    extra: dict[str, Any] = dc_field(default_factory=dict)
    # [tensor index, filter kind] pairs (filters.py), format 1.2; checked against the tensor
    # table by the reader (filters.check_filters). Written only when there are some.
    filters: tuple[tuple[int, str], ...] = ()
    # [tensor index, row length in groups] of flat tensors coded as rows (rows.py), format 1.3; checked
    # against the tensor table by the reader. Written only when there are some.
    rows: tuple[tuple[int, int], ...] = ()
    # Format 1.6: the tensors stored as differences from a reference file's (transforms/reference.py), increasing,
    # and the SHA-256 of those reference bytes in table order. Compact layout only.
    reference_tensors: tuple[int, ...] = ()
    reference_sha256: bytes = b""

    def to_bytes(self) -> bytes:
        """msgpack, zstd-compressed (the safetensors JSON inside compresses ~3x)."""
        return zstandard.ZstdCompressor(level=19).compress(pack(self.to_obj()))

    def to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "format": [MAJOR, MINOR],
            "created_by": self.created_by,
            "source": {"kind": "safetensors", "header_json": self.source_header, "size": self.source_size},
            "serialization": {"scheme": self.scheme, "byte_order": self.byte_order, "alphabet_mode": "occurring"},
            "windows": {
                "window_bytes": self.layout.window_bytes,
                "batch": self.layout.batch,
                "bytes_per_group": self.layout.bytes_per_group,
                "plain_chunk_bytes": self.layout.plain_chunk_bytes,
                "head": self.layout.head,
                "procedure": self.layout.procedure,
            },
            "model": None if self.model is None else dict(self.model.__dict__),
            "alphabet": None if self.alphabet is None else {"size": self.alphabet.size, "sha256": self.alphabet.sha256},
            "runtime": self.runtime,
            "coder": self.coder,
        }
        if self.filters:
            obj["filters"] = [list(f) for f in self.filters]
        if self.rows:
            obj["rows"] = [list(r) for r in self.rows]
        return obj

    @classmethod
    def from_bytes(cls, raw: bytes) -> Header:
        try:
            plain = one_frame(raw, MAX_HEADER_LEN, "header")
        except zstandard.ZstdError as exc:
            raise FormatError(f"header is not a valid zstd frame ({exc})") from None
        obj = unpack(plain, "header")
        w = "header"
        src = field(obj, "source", dict, w)
        ser = field(obj, "serialization", dict, w)
        scheme = field(ser, "scheme", str, "header.serialization")
        if scheme not in SCHEMES:
            raise FormatError(f"header: unknown serialization scheme {scheme!r}")
        byte_order = field(ser, "byte_order", str, "header.serialization")
        if byte_order not in BYTE_ORDERS:
            raise FormatError(f"header: unknown byte order {byte_order!r}")
        model_obj = obj.get("model")
        alphabet_obj = obj.get("alphabet")
        alphabet = None if alphabet_obj is None else AlphabetRecord.from_obj(alphabet_obj)
        model = None if model_obj is None else ModelRecord.from_obj(model_obj)
        if (model is None) != (alphabet is None):
            raise FormatError("header: model and alphabet must both be present or both absent")
        runtime = field(obj, "runtime", dict, w)
        coder = field(obj, "coder", dict, w)
        filters = parse_pairs(obj.get("filters", []))
        rows_obj = obj.get("rows", [])
        if not isinstance(rows_obj, list) or not all(
            isinstance(r, list) and len(r) == 2 and type(r[0]) is int and type(r[1]) is int for r in rows_obj
        ):
            raise FormatError("header.rows: every entry must be [tensor index, row length]")
        return cls(
            created_by=field(obj, "created_by", str, w),
            source_header=field(src, "header_json", bytes, "header.source"),
            source_size=field(src, "size", int, "header.source"),
            scheme=scheme,
            byte_order=byte_order,
            layout=WindowLayout.from_obj(field(obj, "windows", dict, w)),
            model=model,
            alphabet=alphabet,
            runtime=runtime,
            coder=coder,
            filters=filters,
            rows=tuple((r[0], r[1]) for r in rows_obj),
        )


@dataclass(frozen=True)
class ChunkEntry:
    frame_offset: int
    codec: int
    data_offset: int
    data_length: int
    payload_length: int
    payload_crc: int
    model_bits: int

    def row(self) -> list[int]:
        return [
            self.frame_offset,
            self.codec,
            self.data_offset,
            self.data_length,
            self.payload_length,
            self.payload_crc,
            self.model_bits,
        ]


@dataclass(frozen=True)
class Index:
    chunks: tuple[ChunkEntry, ...]
    tensor_bits: tuple[float, ...]  # coded bits attributed to each tensor (table order)
    tensor_model_bits: tuple[float, ...]  # what the LM alone would spend on each tensor (0 if never LM-coded)
    gap_bits: float  # coded bits of bytes that belong to no tensor
    sha256: bytes  # of the original file
    tokens: int  # LM tokens coded
    seconds: float  # encode wall time

    def to_bytes(self) -> bytes:
        return pack(
            {
                "chunks": [c.row() for c in self.chunks],
                "tensor_bits": list(self.tensor_bits),
                "tensor_model_bits": list(self.tensor_model_bits),
                "gap_bits": self.gap_bits,
                "sha256": self.sha256,
                "tokens": self.tokens,
                "seconds": self.seconds,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Index:
        obj = unpack(raw, "index")
        w = "index"
        rows = field(obj, "chunks", list, w)
        chunks = []
        for r in rows:
            if (
                not isinstance(r, list)
                or len(r) != 7
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 64 for v in r)
            ):
                raise FormatError("index: malformed chunk entry")
            chunks.append(ChunkEntry(*r))
        bits = field(obj, "tensor_bits", list, w)
        model_bits = field(obj, "tensor_model_bits", list, w)
        for name, values in (("tensor_bits", bits), ("tensor_model_bits", model_bits)):
            if len(values) != len(bits) or not all(
                isinstance(b, (int, float)) and not isinstance(b, bool) and b >= 0 for b in values
            ):
                raise FormatError(f"index: malformed {name}")
        sha = field(obj, "sha256", bytes, w)
        if len(sha) != 32:
            raise FormatError("index: sha256 must be 32 bytes")
        return cls(
            tuple(chunks),
            tuple(float(b) for b in bits),
            tuple(float(b) for b in model_bits),
            float(field(obj, "gap_bits", (int, float), w)),
            sha,
            field(obj, "tokens", int, w),
            float(field(obj, "seconds", (int, float), w)),
        )
