"""The strict reader's conformance corpus: one crafted archive per rule of docs/FORMAT.md "What a reader
refuses", each with the exact one-line error a conforming reader gives (lmgc_format/container/strict.py).

Every case is a valid archive lmgc wrote, changed in one field, with every length and CRC made right
again: only the reader's consistency checks stand between it and the user. The corpus is generated,
not committed (tests/test_strict.py builds it each run); to keep the files:

    python tests/conformance.py OUT_DIR [--model TINY_MODEL_DIR]
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import torch
import zstandard
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lmgc_format.cm import ints_codec, quick_codec  # noqa: E402
from lmgc_format.container import compact  # noqa: E402
from lmgc_format.container.constants import (  # noqa: E402
    FAST2_PROCEDURE,
    FAST_PROCEDURE,
    PREAMBLE_SIZE,
    TAIL_SIZE,
    Codec,
)
from lmgc_format.container.fixed import Preamble, Tail  # noqa: E402
from lmgc_format.container.reader import ArchiveReader  # noqa: E402
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file  # noqa: E402

U64 = (1 << 64) - 1
SKIPPABLE = (0x184D2A50).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
MADE_UP_LM = {
    "model": {
        "id": "made-up",
        "kind": "gguf",
        "sha256": bytes(32),
        "architecture": "llama",
        "vocab_size": 10,
        "dtype": "float32",
        "bos_id": 0,
    },
    "alphabet": {"size": 16, "sha256": bytes(32), "rule": "ordinary-first"},
    "runtime": {},
}


@dataclass(frozen=True)
class Case:
    name: str
    # "fast" (floats and integers, the fast level), "fast1" (the same as cm-fast-v1 wrote it), "quick" (the same
    # at the quick level), "ints" (integers only), "lm" (the LM level)
    base: str
    edit: Callable[[bytes, ArchiveReader], bytes]
    error: str | Callable[[ArchiveReader], str]  # the exact message, or how to make it from the base


# -- editing an archive whose every CRC and length stays right -------------------------------------


def header_of(archive: bytes) -> dict[str, Any]:
    pre = Preamble.unpack(archive[:PREAMBLE_SIZE])
    return compact._unblob(archive[PREAMBLE_SIZE : PREAMBLE_SIZE + pre.header_len], "header")


def with_header(archive: bytes, obj: dict[str, Any], *, minor: int | None = None, blob: bytes | None = None) -> bytes:
    """``archive`` with the compact header ``obj`` (or the raw ``blob``), its CRC right."""
    old = Preamble.unpack(archive[:PREAMBLE_SIZE])
    body = blob if blob is not None else bytes([compact.PLAIN]) + msgpack.packb(obj, use_bin_type=True)
    pre = Preamble(old.major, old.minor if minor is None else minor, len(body), zlib.crc32(body), old.flags)
    return pre.pack() + body + archive[PREAMBLE_SIZE + old.header_len :]


def index_of(archive: bytes) -> dict[str, Any]:
    tail = Tail.unpack(archive[-TAIL_SIZE:])
    return msgpack.unpackb(archive[len(archive) - TAIL_SIZE - tail.index_len : -TAIL_SIZE], raw=False)


def with_index(archive: bytes, obj: dict[str, Any]) -> bytes:
    tail = Tail.unpack(archive[-TAIL_SIZE:])
    raw = msgpack.packb(obj, use_bin_type=True)
    return archive[: len(archive) - TAIL_SIZE - tail.index_len] + raw + Tail(len(raw), zlib.crc32(raw)).pack()


def edit_header(**changes: Any) -> Callable[[bytes, ArchiveReader], bytes]:
    def edit(archive: bytes, _: ArchiveReader) -> bytes:
        obj = header_of(archive)
        obj.update(changes)
        return with_header(archive, obj)

    return edit


def edit_index(change: Callable[[dict[str, Any], ArchiveReader], None]) -> Callable[[bytes, ArchiveReader], bytes]:
    def edit(archive: bytes, r: ArchiveReader) -> bytes:
        obj = index_of(archive)
        change(obj, r)
        return with_index(archive, obj)

    return edit


def with_chunk(archive: bytes, r: ArchiveReader, i: int, codec: int, payload: bytes) -> bytes:
    """``archive`` with chunk ``i`` replaced by ``payload`` coded ``codec``, offsets and CRCs right."""
    obj = index_of(archive)
    body_start = r.payload_offset(0)
    parts = [r.read_chunk(j)[1] for j in range(len(r.plan))]
    parts[i] = payload
    c = obj["c"]
    c[4 * i : 4 * i + 4] = [codec, len(payload), zlib.crc32(payload), 0]
    tail = Tail.unpack(archive[-TAIL_SIZE:])
    index_start = len(archive) - TAIL_SIZE - tail.index_len
    raw = msgpack.packb(obj, use_bin_type=True)
    assert r.payload_offset(len(r.plan) - 1) + r.index.chunks[-1].payload_length == index_start
    return archive[:body_start] + b"".join(parts) + raw + Tail(len(raw), zlib.crc32(raw)).pack()


def chunk_data(r: ArchiveReader, source: bytes, i: int) -> bytes:
    plan = r.plan[i]
    start = r.layout.data_offset + plan.begin
    return source[start : start + plan.nbytes]


def first(r: ArchiveReader, codec: int) -> int:
    return next(i for i, e in enumerate(r.index.chunks) if e.codec == codec)


def plain_chunk(r: ArchiveReader) -> int:
    return next(i for i, p in enumerate(r.plan) if not p.lm and p.tensor >= 0)


def zstd_chunk(payload: Callable[[bytes], bytes]) -> Callable[[bytes, ArchiveReader], bytes]:
    """The fast base's first plain chunk (an integer tensor) as a zstd chunk of ``payload(its bytes)``."""

    def edit(archive: bytes, r: ArchiveReader) -> bytes:
        i = plain_chunk(r)
        return with_chunk(archive, r, i, Codec.ZSTD, payload(chunk_data(r, r.source_bytes, i)))  # type: ignore[attr-defined]

    return edit


def set_minor(minor: int) -> Callable[[bytes, ArchiveReader], bytes]:
    def edit(archive: bytes, _: ArchiveReader) -> bytes:
        obj = header_of(archive)
        obj["p"] = "lockstep-kv-v1"  # what lmgc <= 0.15's LM level recorded for a file with no float tensor
        return with_header(archive, obj, minor=minor)

    return edit


def payload_bits(r: ArchiveReader, tensor: int) -> int:
    """The bits of the payloads of the chunks that hold some of ``tensor``'s bytes."""
    held = [tensor in ({w.tensor for w in p.windows} if p.lm else {p.tensor}) for p in r.plan]
    return 8 * sum(e.payload_length for e, h in zip(r.index.chunks, held, strict=True) if h)


def _zstd(data: bytes, **kw: Any) -> bytes:
    return zstandard.ZstdCompressor(**kw).compress(data)


def _quick_payload(r: ArchiveReader, i: int) -> bytes:
    payload = quick_codec.encode_chunk(r.plan[i], r.layout, chunk_data(r, r.source_bytes, i))  # type: ignore[attr-defined]
    assert payload is not None
    return payload


def _ints_payload(r: ArchiveReader, i: int) -> bytes:
    payload = ints_codec.encode_chunk(r.plan[i], r.layout, chunk_data(r, r.source_bytes, i))  # type: ignore[attr-defined]
    assert payload is not None
    return payload


def _unused(codec: int, procedure: str) -> Callable[[ArchiveReader], str]:
    """The error for the base's first chunk of ``codec`` under a header that names ``procedure``."""
    name = Codec.NAMES[codec]
    return lambda r: f"index: chunk {first(r, codec)} is coded {name}, which procedure {procedure!r} does not use"


def _model_bits(obj: dict[str, Any], i: int, bits: int) -> None:
    obj["c"][4 * i + 3] = bits


CASES: tuple[Case, ...] = (
    # the procedure against the chunks
    Case("procedure-stored", "fast", edit_header(p="stored"),
         "header.p: 'stored' names a stored archive (preamble flag 8), and this one is coded"),
    Case("procedure-lockstep-on-fast-chunks", "fast1", edit_header(p="lockstep-kv-v1"),
         _unused(Codec.CM_FAST, "lockstep-kv-v1")),
    Case("procedure-int8-on-fast-chunks", "fast1", edit_header(p="lmgc-int8-v1+cm-int-v2"),
         _unused(Codec.CM_FAST, "lmgc-int8-v1+cm-int-v2")),
    Case("procedure-lm-without-lm-chunk", "ints", edit_header(p="lmgc-llama-v1+cm-top-v4"),
         "header.p: procedure 'lmgc-llama-v1+cm-top-v4' codes no chunk of this archive (one without an LM "
         "chunk names cm-fast-v1)"),
    Case("procedure-legacy-form-in-1.6", "ints", set_minor(6),
         "header.p: procedure 'lockstep-kv-v1' codes no chunk of this archive (one without an LM chunk names "
         "cm-fast-v1)"),
    Case("procedure-fast-on-lm-chunks", "lm", edit_header(p="cm-fast-v1"),
         lambda r: f"index: chunk {first(r, Codec.LM)} is coded lm, but procedure 'cm-fast-v1' names no LM"),
    # records only an LM reads
    Case("lm-record-without-lm-chunk", "fast", edit_header(lm=MADE_UP_LM),
         "header.lm: names model 'made-up', but no chunk is LM-coded"),
    Case("lm-record-etc-passwd", "fast",
         edit_header(lm={**MADE_UP_LM, "model": {**MADE_UP_LM["model"], "id": "/etc/passwd"}}),
         "header.lm: names model '/etc/passwd', but no chunk is LM-coded"),
    Case("head-evil", "fast", edit_header(hd="evil"),
         "header.hd: unknown head 'evil' (one of restricted, full, or none)"),
    Case("head-escapes", "fast", edit_header(hd="\x1b]0;pwned\x07"),
         "header.hd: unknown head '\\x1b]0;pwned\\x07' (one of restricted, full, or none)"),
    Case("head-without-model", "fast", edit_header(hd="full"), "header.hd: head 'full' in an archive without a model"),
    Case("scheme-without-model", "fast", edit_header(s="space"),
         "header.s: serialization scheme 'space' in an archive without an LM"),
    Case("scheme-unknown", "fast", edit_header(s="klingon"), "header: unknown serialization scheme 'klingon'"),
    Case("byte-order-without-model", "fast", edit_header(o="stored"),
         "header.o: byte order 'stored' in an archive without an LM"),
    Case("coder-made-up", "lm",
         lambda a, r: with_header(a, {**header_of(a), "lm": {**header_of(a)["lm"], "coder": {"name": "made-up"}}}),
         lambda r: f"header.coder: 'made-up' {{'name': 'made-up'}} is not the coder of procedure "
                   f"{r.header.layout.procedure!r}"),
    Case("model-kind-unknown", "lm",
         lambda a, r: with_header(a, {**header_of(a), "lm": {**header_of(a)["lm"], "model": {
             **header_of(a)["lm"]["model"], "kind": "evil"}}}),
         "header.lm.model: unknown kind 'evil' (packaged, hf-dir, gguf)"),
    # the index's counters
    Case("tokens-without-lm-chunk", "fast", edit_index(lambda o, r: o.update(k=1000)),
         "index.k: 1,000 LM tokens, but no chunk is LM-coded"),
    Case("no-tokens-with-lm-chunks", "lm", edit_index(lambda o, r: o.pop("k")),
         "index.k: no LM token, but some chunk is LM-coded"),
    Case("tensor-bits-huge", "fast", edit_index(lambda o, r: o["b"].__setitem__(0, U64)),
         lambda r: f"index.b: tensor {r.tensors[0].name!r} is said to cost {float(U64):,.0f} bits, more than the "
                   f"{payload_bits(r, 0):,} bits of the payloads that hold it"),
    Case("time-huge", "fast", edit_index(lambda o, r: o.update(s=U64)),
         f"index.s: an encode time of {U64:,} ms is out of range (0 to 2**53)"),
    Case("gap-bits-huge", "fast", edit_index(lambda o, r: o.update(g=10**12)),
         "index.g: bytes outside the tensors are said to cost 1,000,000,000,000 bits, more than the 0 bits of "
         "the payloads that hold them"),
    Case("lm-bits-without-lm", "fast", edit_index(lambda o, r: o.update(lb=[1] * len(o["b"]))),
         lambda r: f"index.lb: LM bits for tensor {r.tensors[0].name!r} in an archive without an LM"),
    Case("model-bits-huge", "fast",
         edit_index(lambda o, r: _model_bits(o, first(r, Codec.CM_FAST2), U64)),
         lambda r: f"index: chunk {first(r, Codec.CM_FAST2)} has {U64:,} model bits for "
                   f"{r.plan[first(r, Codec.CM_FAST2)].nbytes:,} bytes (at most 256 a byte)"),
    Case("model-bits-on-plain-chunk", "fast", edit_index(lambda o, r: _model_bits(o, plain_chunk(r), 8)),
         lambda r: f"index: chunk {plain_chunk(r)} has model bits, but no model codes a chunk outside float tensors"),
    # zstd payloads: exactly one frame that declares the chunk's length
    Case("zstd-two-frames", "fast", zstd_chunk(lambda d: _zstd(d) + _zstd(b"")),
         lambda r: f"{r.describe_chunk(plain_chunk(r))} holds {len(_zstd(b'')):,} bytes after its zstd frame "
                   "(one frame only)"),
    Case("zstd-skippable-prefix", "fast", zstd_chunk(lambda d: SKIPPABLE + _zstd(d)),
         lambda r: f"{r.describe_chunk(plain_chunk(r))} is not a zstd frame (a skippable or foreign frame comes "
                   "first)"),
    Case("zstd-no-content-size", "fast", zstd_chunk(lambda d: _zstd(d, write_content_size=False)),
         lambda r: f"{r.describe_chunk(plain_chunk(r))}: its zstd frame does not declare its content size"),
    Case("zstd-wrong-content-size", "fast", zstd_chunk(lambda d: _zstd(d + b"\0")),
         lambda r: f"{r.describe_chunk(plain_chunk(r))}: its zstd frame declares "
                   f"{r.plan[plain_chunk(r)].nbytes + 1:,} bytes, the chunk holds {r.plan[plain_chunk(r)].nbytes:,}"),
    # the quick level (format 1.7): its codec only under its procedure, and its procedure with no model's codec
    Case("quick-chunk-in-fast-archive", "fast", lambda a, r: with_chunk(a, r, 0, Codec.QUICK, _quick_payload(r, 0)),
         "index: chunk 0 is coded quick-v1, which procedure 'cm-fast-v2' does not use"),
    Case("fast-procedure-on-quick-chunks", "quick", edit_header(p="cm-fast-v1"),
         _unused(Codec.QUICK, "cm-fast-v1")),
    Case("cm-ints-chunk-in-quick-archive", "quick",
         lambda a, r: with_chunk(a, r, plain_chunk(r), Codec.CM_INTS, _ints_payload(r, plain_chunk(r))),
         lambda r: f"index: chunk {plain_chunk(r)} is coded cm-ints-v1, which procedure 'quick-v1' does not use"),
    Case("quick-procedure-in-1.6", "quick", lambda a, r: with_header(a, header_of(a), minor=6),
         lambda r: f"index: chunk {first(r, Codec.QUICK)} uses a format 1.7 codec in a (1, 6) archive"),
    # the fast level's two procedures (format 1.8): each codec only under its own, cm-fast-v2 not before 1.8
    Case("fast2-chunks-under-cm-fast-v1", "fast", edit_header(p="cm-fast-v1"),
         _unused(Codec.CM_FAST2, "cm-fast-v1")),
    Case("fast1-chunks-under-cm-fast-v2", "fast1", edit_header(p="cm-fast-v2"),
         _unused(Codec.CM_FAST, "cm-fast-v2")),
    Case("fast2-procedure-in-1.7", "fast", set_minor(7),
         lambda r: f"index: chunk {first(r, Codec.CM_FAST2)} uses a format 1.8 codec in a (1, 7) archive"),
    Case("header-two-zstd-frames", "fast",
         lambda a, r: with_header(a, {}, blob=bytes([compact.ZSTD]) + _zstd(msgpack.packb(header_of(a),
                                  use_bin_type=True)) + _zstd(b"")),
         f"header holds {len(_zstd(b'')):,} bytes after its zstd frame (one frame only)"),
)  # fmt: skip


# -- the bases ------------------------------------------------------------------------------------


def make_bases(directory: Path, model: str | None) -> dict[str, Path]:
    """The archives the cases start from: lmgc's own output at the fast level (floats and integers;
    integers only) and, given the tiny test model, at the LM level."""
    rng = np.random.default_rng(5)
    g = (rng.standard_normal((48, 64)) * 1e-3).astype(np.float32)
    fast = {"w": torch.from_numpy(g), "steps": torch.arange(400, dtype=torch.int32) * 7 % 13}
    files = {
        "fast": fast,
        "fast1": {k: v.clone() for k, v in fast.items()},
        "quick": {k: v.clone() for k, v in fast.items()},
        "ints": {"q": torch.from_numpy(rng.integers(-8, 8, 3000).astype(np.int8)), "i": torch.arange(500)},
        "lm": {"w": torch.from_numpy(g[:4, :40].copy())},
    }
    out = {}
    for name, tensors in files.items():
        if name == "lm" and model is None:
            continue
        src = directory / f"base_{name}.safetensors"
        save_file(tensors, str(src))
        arc = directory / f"base_{name}.lmgc"
        level = {"lm": "max", "quick": "quick"}.get(name, "fast")
        procedure = FAST_PROCEDURE if name == "fast1" else FAST2_PROCEDURE
        opts = EncodeOptions(level=level, model=model or "", fallback=name != "lm", fast_procedure=procedure)
        encode_file(src, arc, opts, overwrite=True)
        out[name] = arc
    return out


def build(case: Case, base: Path) -> tuple[bytes, str]:
    """The crafted archive of ``case`` and its exact error."""
    archive = base.read_bytes()
    with ArchiveReader(base) as r:
        r.source_bytes = base.with_suffix(".safetensors").read_bytes()  # type: ignore[attr-defined]
        crafted = case.edit(archive, r)
        error = case.error if isinstance(case.error, str) else case.error(r)
    return crafted, error


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", help="the tiny test model's directory (tests/tiny_model.py), for the LM cases")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bases = make_bases(args.out, args.model)
    for case in CASES:
        if case.base not in bases:
            continue
        crafted, error = build(case, bases[case.base])
        (args.out / f"{case.name}.lmgc").write_bytes(crafted)
        (args.out / f"{case.name}.error").write_text(error + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
