"""``lmgc-tui bench``: the LM codec and classical codecs on the same tensor bytes.

Every codec's output is decoded and compared with the input before its size counts;
a codec that does not give the bytes back is flagged and left out of the ranking.
Sizes are % of the tensor data (the safetensors data section), the paper's metric.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmgc_format.bench.classical import Classical, Unavailable
from lmgc_format.events import EventSink, ignore
from lmgc_format.pipeline.defaults import DEFAULT_BYTE_ORDER, DEFAULT_ENGINE
from lmgc_format.pipeline.encoder import EncodeOptions
from lmgc_format.tensors.source import SourceLayout, read_layout

if TYPE_CHECKING:  # the encoder/decoder are imported when a round trip runs (they pull in the LM stack)
    from lmgc_format.pipeline.decoder import DecodeResult
    from lmgc_format.pipeline.encoder import EncodeOptions, EncodeResult


@dataclass(frozen=True)
class CodecResult:
    codec: str
    size: int | None  # compressed bytes; None when skipped
    percent: float | None  # of the tensor data
    encode_bps: float | None  # bytes of tensor data per second
    decode_bps: float | None
    roundtrip: bool | None  # None: skipped, or an estimate (nothing decoded)
    note: str = ""
    estimate: bool = False  # size from bench --estimate (estimate.py), not from a real archive

    @property
    def ranked(self) -> bool:
        return bool(self.roundtrip) and self.size is not None


@dataclass(frozen=True)
class FileReport:
    file: str
    dtype: str  # the tensors' dtype, or "mixed"
    data_bytes: int
    results: tuple[CodecResult, ...]
    lm_name: str = "lmgc"

    def best_classical(self) -> CodecResult | None:
        ranked = [r for r in self.results if r.ranked and not r.codec.startswith(self.lm_name)]
        return min(ranked, key=lambda r: r.size or 0) if ranked else None

    def lm_results(self) -> list[CodecResult]:
        return [r for r in self.results if r.codec.startswith(self.lm_name)]

    def to_obj(self) -> dict[str, Any]:
        best = self.best_classical()
        obj: dict[str, Any] = {
            "file": self.file,
            "dtype": self.dtype,
            "data_bytes": self.data_bytes,
            "results": [asdict(r) for r in self.results],
            "best_classical": None if best is None else best.codec,
        }
        obj["lm_vs_best_classical"] = {
            r.codec: round(r.size / best.size, 4)
            for r in self.lm_results()
            if (r.ranked or r.estimate) and best is not None and r.size is not None and best.size
        }
        return obj


@dataclass(frozen=True)
class LmSetting:
    """One lmgc configuration to bench: the encoder's own options (a level, and for ``max`` the LM's
    settings), and what only the bench knows."""

    options: EncodeOptions = field(default_factory=lambda: EncodeOptions(level="max"))
    estimate: bool = False  # one forward pass per window, nothing decoded (estimate.py)
    model_tag: str = ""  # set when several models run side by side: shown in the label

    def label(self) -> str:
        o = self.options
        if o.level != "max":
            return f"lmgc {o.level}"
        notes = [] if o.engine == DEFAULT_ENGINE or self.estimate else [o.engine]
        if o.byte_order != DEFAULT_BYTE_ORDER:
            notes.append(f"{o.byte_order} order")
        if not o.fallback:
            notes.append("no fallback")
        if not o.mixing:
            notes.append("no mix")
        elif not o.top_byte:
            notes.append("no top byte")
        if not o.filters:
            notes.append("no filters")
        if self.estimate:
            notes.append("estimate")
        tag = f" [{self.model_tag}]" if self.model_tag else ""
        return f"lmgc {o.scheme}{tag}" + (f" ({', '.join(notes)})" if notes else "")


@dataclass
class BenchOptions:
    classical: tuple[Classical, ...]
    lm: list[LmSetting] = field(default_factory=lambda: [LmSetting()])
    # ``bench --reference``: the classical codecs code the data XOR-ed with this file's paired tensors
    # (ZipNN's delta method: "XOR+" rows); the lmgc rows code with it as their reference
    reference: Path | None = None


Spans = tuple[tuple[int, int, str], ...]  # (begin, end, dtype) of each tensor in the data section


def _data_section(path: Path, reference: Path | None = None) -> tuple[bytes, str, Spans]:
    """The file's data section (XOR-ed with the reference's paired tensors when one is given), its one
    dtype or "mixed", and where each tensor lies."""
    layout = read_layout(path)
    with path.open("rb") as f:
        f.seek(layout.data_offset)
        data = f.read()
    if reference is not None:
        data = xor_with(layout, data, reference)
    dtypes = {t.dtype for t in layout.tensors if t.nbytes}
    spans = tuple((t.begin, t.end, t.dtype) for t in layout.tensors if t.nbytes)
    return data, (dtypes.pop() if len(dtypes) == 1 else "mixed"), spans


def xor_with(layout: SourceLayout, data: bytes, reference: Path) -> bytes:
    """ZipNN's delta method: each tensor the reference holds with the same name, shape and dtype XOR-ed
    with it, the rest as it is."""
    from lmgc_format.transforms.reference import open_reference, pairs

    path, ref_layout = open_reference(reference)
    out = bytearray(data)
    with path.open("rb") as ref:
        for i, at in pairs(layout, ref_layout).items():
            t = layout.tensors[i]
            ref.seek(at)
            other = np.frombuffer(ref.read(t.nbytes), np.uint8)
            out[t.begin : t.end] = (np.frombuffer(data[t.begin : t.end], np.uint8) ^ other).tobytes()
    return bytes(out)


def _per_tensor(codec: Classical, spans: Spans) -> Classical:
    """A numeric codec on a file of several dtypes (quantized values beside their scales, indices beside
    values) as its users run it: one call per tensor, the bytes between tensors as they are (counted)."""

    def enc(data: bytes, _t: str) -> bytes:
        parts, pos = [], 0
        for begin, end, dtype in spans:
            parts += [data[pos:begin], codec.encode(data[begin:end], dtype)]
            pos = end
        parts.append(data[pos:])
        return b"".join(len(x).to_bytes(8, "little") + x for x in parts)  # lengths: framing, not counted

    def dec(payload: bytes, _t: str, _n: int) -> bytes:
        pieces, pos = [], 0  # gap, tensor, gap, tensor, ..., the bytes after the last tensor
        while pos < len(payload):
            size = int.from_bytes(payload[pos : pos + 8], "little")
            pieces.append(payload[pos + 8 : pos + 8 + size])
            pos += 8 + size
        out = []
        for k, (begin, end, dtype) in enumerate(spans):
            out += [pieces[2 * k], codec.decode(pieces[2 * k + 1], dtype, end - begin)]
        out.append(pieces[-1])
        return b"".join(out)

    return Classical(codec.name, enc, dec, (codec.note + "; " if codec.note else "") + "one call per tensor")


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def run_classical(codec: Classical, data: bytes, dtype: str, spans: Spans = ()) -> CodecResult:
    """One classical codec on a file's data section: its size, speeds and whether it gave the bytes back.
    A numeric codec (``per_tensor``) on a file of several dtypes codes each tensor apart (``spans``)."""
    n = len(data)
    framing = 0
    if dtype == "mixed" and codec.per_tensor and spans:
        codec = _per_tensor(codec, spans)
        framing = 8 * (2 * len(spans) + 1)
    try:
        t0 = time.perf_counter()
        payload = codec.encode(data, dtype)
        t1 = time.perf_counter()
        back = codec.decode(payload, dtype, n)
        t2 = time.perf_counter()
    except Unavailable as exc:
        return CodecResult(codec.name, None, None, None, None, None, f"skipped: {exc}")
    except Exception as exc:  # a baseline failing must not stop the bench; say what happened
        return CodecResult(codec.name, None, None, None, None, False, f"failed: {exc!r}")
    ok = bytes(back) == data
    size = len(payload) - framing
    return CodecResult(
        codec.name,
        size,
        100.0 * size / n if n else None,
        _rate(n, t1 - t0),
        _rate(n, t2 - t1),
        ok,
        codec.note if ok else "did not round-trip: not ranked",
    )


@dataclass(frozen=True)
class RoundTrip:
    """One real encode + decode of a file through a temporary archive."""

    encoded: EncodeResult
    decoded: DecodeResult
    identical: bool  # the decoded file equals the input, byte for byte
    archive_size: int
    procedure: str  # the LM procedure the archive recorded


def round_trip(
    path: Path,
    opts: EncodeOptions,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
) -> RoundTrip:
    """Encode ``path`` to a temp archive with ``opts``, decode it back (model named by the
    archive, or ``opts.model``), compare; the bench's LM rows and ``bench --speed`` both use it."""
    from lmgc_format.container.reader import ArchiveReader
    from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
    from lmgc_format.pipeline.encoder import encode_file

    with tempfile.TemporaryDirectory(prefix="lmgc-bench-") as tmp:
        archive = Path(tmp) / "bench.lmgc"
        restored = Path(tmp) / "restored.safetensors"
        enc = encode_file(path, archive, opts, on_event=on_event, cancel=cancel)
        back = DecodeOptions(model=opts.model, reference=opts.reference)
        dec = decode_file(archive, restored, back, on_event=on_event, cancel=cancel)
        with ArchiveReader(archive) as reader:
            procedure = reader.header.layout.procedure
        return RoundTrip(enc, dec, restored.read_bytes() == path.read_bytes(), os.path.getsize(archive), procedure)


def run_lm(
    path: Path,
    setting: LmSetting,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
) -> CodecResult:
    """Encode to a temp archive, decode it back, compare; size = chunk payloads (tensor data cost).
    With ``setting.estimate`` the size is estimate.py's instead, and nothing is written or decoded."""
    opts = setting.options
    if setting.estimate and opts.level == "max":  # the fast level is quicker coded than estimated
        return _estimated(path, setting.label(), opts, on_event, cancel)
    rt = round_trip(path, opts, on_event, cancel)
    enc, dec = rt.encoded, rt.decoded
    n = enc.data_bytes
    return CodecResult(
        setting.label(),
        enc.coded_bytes,
        100.0 * enc.coded_bytes / n if n else None,
        _rate(n, enc.seconds),
        _rate(n, dec.seconds),
        rt.identical,
        f"whole archive {rt.archive_size:,} B; {rt.procedure}; {enc.tokens:,} tokens, "
        f"{enc.tokens / enc.seconds if enc.seconds else 0:,.0f} tok/s; chunks "
        + ", ".join(f"{name} {count}" for name, count in sorted(enc.codecs.items())),
    )


def _estimated(
    path: Path, label: str, opts: EncodeOptions, on_event: EventSink, cancel: threading.Event | None
) -> CodecResult:
    from lmgc_format.bench.estimate import estimate_file

    est = estimate_file(path, opts, on_event, cancel)
    n = est.data_bytes
    return CodecResult(
        label,
        est.coded_bytes,
        100.0 * est.coded_bytes / n if n else None,
        None,  # the estimate's own speed is not the codec's
        None,
        None,
        f"estimate ({est.procedure}, nothing decoded): {est.tokens:,} tokens in {est.seconds:,.0f} s; chunks "
        + ", ".join(f"{name} {count}" for name, count in sorted(est.codecs.items())),
        estimate=True,
    )


def warm_up() -> None:
    """Load the compiled kernels before any clock starts: numba's first call in a process (~0.3 s: its
    runtime and the cached machine code) is start-up, like Python's, not the codec's time."""
    from lmgc_format.cm import codec as cm_codec
    from lmgc_format.cm import quick_codec
    from lmgc_format.tensors.plan import Window

    sample = bytes(range(64))
    quick_codec.decode(quick_codec.encode(sample, "F32"), "F32", len(sample))
    cm_codec.encode([Window(0, 0, len(sample), 4)], 0, sample, [4])


def bench_file(
    path: Path,
    options: BenchOptions,
    on_event: EventSink = ignore,
    on_codec: Any = None,
    cancel: threading.Event | None = None,
) -> FileReport:
    data, dtype, spans = _data_section(path, options.reference)
    results: list[CodecResult] = []
    for codec in options.classical:
        if options.reference is not None:
            codec = replace(codec, name="XOR+" + codec.name)
        if on_codec:
            on_codec(codec.name)
        results.append(run_classical(codec, data, dtype, spans))
    if options.lm:
        warm_up()
    for setting in options.lm:
        if on_codec:
            on_codec(setting.label())
        results.append(run_lm(path, setting, on_event, cancel))
    return FileReport(str(path), dtype, len(data), tuple(results))
