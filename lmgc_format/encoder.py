"""Streaming encoder: safetensors file -> .lmgc archive."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from . import __version__, runtime
from .alphabet import RULE as ALPHABET_RULE
from .atomic import refuse_existing
from .chunk_encoder import ChunkEncoder
from .cm import codec as cm_codec
from .cm.pool import default_workers, ordered_map
from .container.constants import MAX_BATCH, MAX_BYTES_PER_GROUP, MAX_WINDOW_BYTES, Codec, lm_coder
from .container.header import AlphabetRecord, Header, Index, ModelRecord, WindowLayout
from .container.writer import ArchiveWriter, write_stored
from .defaults import DEFAULT_BATCH, DEFAULT_ENGINE, DEFAULT_WINDOW_BYTES, ENGINE_CHOICES
from .errors import UnsupportedError
from .events import ChunkDone, EventSink, Finished, Notice, Progress, Started, ignore
from .filters import ForwardFilter, choose_filters, mark_plan
from .levels import (
    DEFAULT_LEVEL,
    DEFAULT_TIME_BUDGET,
    FAST_BATCH,
    FAST_WINDOW_BYTES,
    FLOAT_LM_BYTES_PER_SECOND,
    LM_BYTES_PER_SECOND,
    LevelChoice,
    choose_level,
)
from .lmchunk import INT_MIXING
from .lmsetup import LmSetup, prepare_lm
from .mixing import mixing_for
from .models import DEFAULT_DTYPE, LoadedModel, get
from .parallel import Pool, WorkerSetup, check_workers, start_pool
from .plan import PLAIN_CHUNK_BYTES, ChunkPlan, Window, plan_chunks, value_size
from .predictor import INT8_PROCEDURE, TRANSFORMERS_PROCEDURE, procedure_for
from .rows import MIN_VALUES, SAMPLE_VALUES, TRIAL_VALUES, candidate_rows, exponent_fields
from .serialize import BYTE_ORDERS, DEFAULT_BYTE_ORDER, DEFAULT_SCHEME, get_scheme
from .shuffle import byte_shuffle
from .source import LM_DTYPES, SourceLayout, read_layout

FAST_ZSTD_LEVEL = 3  # the fast level's codec for plain chunks (integer tensors, gaps)
# Files smaller than this are stored without trying (and without loading a model): the archive's own
# bytes (~120 beyond the tensor table) cannot be won back. Larger ones are stored when coding does not
# win either (container/writer.py), so no archive exceeds its file by more than 24 bytes.
STORE_BELOW = 256


@dataclass(frozen=True)
class EncodeOptions:
    model: str | None = None  # packaged name, HF directory or .gguf file; None: the default
    scheme: str = DEFAULT_SCHEME
    byte_order: str = DEFAULT_BYTE_ORDER  # "msb_first" (sign/exponent first) or "stored" (as in the file, the paper)
    window_bytes: int = DEFAULT_WINDOW_BYTES
    batch: int = DEFAULT_BATCH
    bytes_per_group: int = 0  # 0: the dtype's size
    dtype: str = DEFAULT_DTYPE
    threads: int | None = None  # torch threads; None keeps torch's default
    device: str | None = None
    plain_chunk_bytes: int = PLAIN_CHUNK_BYTES
    restricted_head: bool = True
    fallback: bool = True  # False: keep the LM payload even where zstd/raw is smaller (to measure the LM)
    engine: str = DEFAULT_ENGINE  # "auto" | "lmgc" | "transformers" (predictor.ENGINES)
    mixing: bool = True  # mix the LM with the chunk's statistics (mixing.py); hex schemes only
    top_byte: bool = True  # with mixing: code every value's top byte apart (topbyte.py, cm-top-v4)
    workers: int = 1  # >1: LM chunks coded in that many processes (parallel.py), same bytes out
    ray: str | None = None  # a Ray address, "auto" or "local": workers are Ray actors (0 workers: one per CPU)
    filters: bool = True  # store tensors whose lines sum to zero (softmax heads, LayerNorm streams) filtered
    level: str = DEFAULT_LEVEL  # "fast" (no LM), "max" (the LM) or "auto" (levels.py)
    time_budget: float = DEFAULT_TIME_BUDGET  # seconds the LM level may take under "auto"

    def check(self) -> None:
        choose_level(0, self.level, self.time_budget)  # refuses unknown levels and budgets
        get_scheme(self.scheme)
        if self.byte_order not in BYTE_ORDERS:
            raise UnsupportedError(f"byte order must be one of {', '.join(BYTE_ORDERS)}")
        if not 1 <= self.window_bytes <= MAX_WINDOW_BYTES:
            raise UnsupportedError(f"window bytes must be between 1 and {MAX_WINDOW_BYTES}")
        if not 1 <= self.batch <= MAX_BATCH:
            raise UnsupportedError(f"batch must be between 1 and {MAX_BATCH}")
        if not 0 <= self.bytes_per_group <= MAX_BYTES_PER_GROUP:
            raise UnsupportedError(f"bytes per group must be between 0 (dtype size) and {MAX_BYTES_PER_GROUP}")
        if self.engine not in ENGINE_CHOICES:
            raise UnsupportedError(f"engine must be one of {', '.join(ENGINE_CHOICES)}")
        check_workers(self.workers, self.ray)


@dataclass(frozen=True)
class EncodeResult:
    source_size: int
    archive_size: int
    sha256: str
    seconds: float
    tokens: int
    codecs: dict[str, int] = field(default_factory=dict)  # codec name -> chunk count
    data_bytes: int = 0  # bytes of the safetensors data section
    coded_bytes: int = 0  # sum of chunk payloads (what the data cost, without container overhead)
    # The file was stored as it is (format 1.4): coding it would not have made it smaller. ``codecs`` and
    # ``coded_bytes`` then still say what coding gave (empty for files too small to try).
    stored: bool = False

    @property
    def ratio(self) -> float:
        return self.archive_size / self.source_size if self.source_size else 0.0


def float_bytes(layout: SourceLayout) -> int:
    """Bytes of the tensors the models code (floats); the rest is stored raw or with zstd."""
    return sum(t.nbytes for t in layout.tensors if t.dtype in LM_DTYPES)


def level_for(layout: SourceLayout, opts: EncodeOptions) -> LevelChoice:
    """What ``opts.level`` means for this file (``auto``: levels.py)."""
    return choose_level(float_bytes(layout), opts.level, opts.time_budget, fast_threads(opts), lm_rate(opts))


def lm_rate(opts: EncodeOptions) -> float:
    """The LM level's measured encoding rate for these options, before any model is loaded: the portable
    procedure's where procedure_for would pick it (engine auto or int8, a hex scheme, mixing with top
    bytes), else the float procedures'."""
    portable = opts.engine in ("auto", "int8") and get_scheme(opts.scheme).hex and opts.mixing and opts.top_byte
    return LM_BYTES_PER_SECOND if portable else FLOAT_LM_BYTES_PER_SECOND


def fast_threads(opts: EncodeOptions) -> int:
    """The fast level's coding threads: ``threads`` when given, else one per CPU."""
    return opts.threads or default_workers()


@dataclass(frozen=True)
class _Job:
    """One encode_file call: what is coded into what, how, whom to tell, and when it started."""

    source: str | os.PathLike[str]
    target: str | os.PathLike[str]
    layout: SourceLayout
    opts: EncodeOptions
    overwrite: bool
    on_event: EventSink
    cancel: threading.Event | None
    start: float
    model: LoadedModel | None


def encode_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    options: EncodeOptions | None = None,
    *,
    overwrite: bool = False,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
    model: LoadedModel | None = None,
) -> EncodeResult:
    """Compress ``source`` into ``target``. Nothing is left under ``target`` unless it succeeds."""
    opts = options or EncodeOptions()
    opts.check()
    start = time.monotonic()
    layout = read_layout(source)
    refuse_existing(target, overwrite)
    if Path(source).resolve() == Path(target).resolve():
        raise UnsupportedError("output would overwrite the input")
    job = _Job(source, target, layout, opts, overwrite, on_event, cancel, start, model)
    if opts.fallback and layout.file_size < STORE_BELOW:  # fallback=False: code with the LM, to measure it
        return _store(job)
    choice = level_for(layout, opts)
    if choice.message:
        on_event(Notice(choice.message))
    if choice.level == "fast":
        return _encode_fast(job)
    if choice.requested == "auto" and opts.fallback:
        return _encode_smaller(job)
    return _encode_lm(job)


def _encode_smaller(job: _Job) -> EncodeResult:
    """``auto`` within the time budget: the LM level, and the fast level beside it (a second at most on
    what the LM can code in the budget); the smaller whole archive is kept. The LM level's header carries
    its model record and runtime (~330 bytes), more than the LM saves on the smallest files."""
    with tempfile.TemporaryDirectory(dir=Path(job.target).resolve().parent, prefix=".lmgc-fast-") as tmp:
        fast_path = Path(tmp) / "fast.lmgc"
        fast = _encode_fast(replace(job, target=fast_path, overwrite=True, on_event=ignore))
        lm = _encode_lm(job)
        if fast.archive_size >= lm.archive_size:
            return lm
        os.replace(fast_path, job.target)
    job.on_event(
        Notice(
            f"kept the fast level's archive, {fast.archive_size:,} bytes: the LM level's was {lm.archive_size:,} "
            "(its header records the model and runtime); --level max keeps the LM's"
        )
    )
    return replace(fast, seconds=time.monotonic() - job.start, tokens=lm.tokens)


def lm_procedure(opts: EncodeOptions, lm: LoadedModel) -> str:
    """The LM procedure (``engine+mixing``) an encoder with ``opts`` records for ``lm``: by default the
    portable ``lmgc-int8-v1+cm-int-v1`` where the model fits the int8 engine; a float engine with
    ``mixing.py``'s mixing when asked for (``--engine lmgc``), or where the int8 coding cannot run (a
    scheme that is not hex, ``--no-mix``, ``--no-top-byte``)."""
    scheme = get_scheme(opts.scheme)
    portable_ok = scheme.hex and opts.mixing and opts.top_byte
    engine = procedure_for(opts.engine, lm, opts.restricted_head, portable=portable_ok)
    if engine == INT8_PROCEDURE:  # the portable engine codes with its own integer mixing, always
        if not portable_ok:
            raise UnsupportedError(
                f"the int8 engine needs a hex scheme with mixing and the top byte apart (scheme {scheme.name!r})"
            )
        return f"{engine}+{INT_MIXING}"
    mixing = mixing_for(scheme, opts.mixing, opts.top_byte)  # mixing.py works on hex text only
    return engine + ("+" + mixing if mixing else "")


def _encode_lm(job: _Job) -> EncodeResult:
    """The LM level: float chunks coded by the LM with the whole modelling stack (intchunk.py by default;
    mixing.py and topbyte.py for the float procedures)."""
    source, target, layout, opts = job.source, job.target, job.layout, job.opts
    overwrite, on_event, cancel, start, model = job.overwrite, job.on_event, job.cancel, job.start, job.model
    plan, forward, rows = plan_for(source, layout, opts)
    scheme = get_scheme(opts.scheme)

    import torch

    # With workers, each process runs this many threads (1 unless told): the archive records it.
    parallel = opts.workers != 1 or opts.ray is not None
    threads = opts.threads or (1 if parallel else None)
    if threads:
        torch.set_num_threads(threads)
    setup: LmSetup | None = None
    procedure = TRANSFORMERS_PROCEDURE  # recorded even when no chunk needs a model
    if any(c.lm for c in plan):
        lm = model or get(opts.model, opts.dtype, opts.device)
        procedure = lm_procedure(opts, lm)
        setup = prepare_lm(lm, scheme.name, procedure, opts.restricted_head)
        if procedure.startswith(TRANSFORMERS_PROCEDURE) and lm.device.startswith("cuda") and opts.dtype == "bfloat16":
            # Seen on an H100 (BENCHMARKS.md "CUDA"): that archive did not decode, even in the same process.
            on_event(
                Notice(
                    "transformers in bfloat16 on CUDA did not reproduce its own predictions in lmgc's test: "
                    "check this archive with --verify, or use --engine lmgc"
                )
            )
    header = _header(
        layout,
        opts,
        forward,
        rows,
        head=setup.predictor.head_mode if setup else "none",
        procedure=procedure,
        model=ModelRecord(**setup.lm.info.__dict__) if setup else None,
        alphabet=AlphabetRecord(setup.alphabet.size, setup.alphabet.digest(), ALPHABET_RULE) if setup else None,
        device=setup.lm.device if setup else "cpu",
        coder=lm_coder(procedure),
    )
    digest = getattr(setup.predictor, "digest", None) if setup else None
    if digest is not None:  # a portable engine: the integers it computes with (decoder.py checks them)
        header.runtime["engine_sha256"] = digest[:16]  # 64 bits: to catch a different model, not an attack
    on_event(Started("encode", str(source), layout.data_size))
    msb_first = opts.byte_order == "msb_first"
    pool: Pool | None = None
    if parallel and setup is not None:
        alphabet_digest = setup.alphabet.digest()
        pool = start_pool(
            WorkerSetup.of(setup.lm, scheme.name, procedure, opts.restricted_head, header.runtime, alphabet_digest),
            opts.workers,
            opts.ray,
        )
    writer = ArchiveWriter(target, header, overwrite, source if opts.fallback else None)
    chunks = ChunkEncoder(layout, setup, msb_first=msb_first, fallback=opts.fallback, pool=pool, cancel=cancel)
    upcoming = iter([c for c in plan if c.lm])

    def submit_ahead(ahead: BinaryIO) -> None:
        """Keep the workers busy a few LM chunks ahead, read through a second handle."""
        while chunks.in_flight < chunks.lookahead:
            nxt = next(upcoming, None)
            if nxt is None:
                return
            ahead.seek(layout.data_offset + nxt.begin)
            raw = ahead.read(nxt.nbytes)
            chunks.submit(nxt, raw, forward.apply(nxt.begin, raw))

    try:
        tally = _Tally(layout, writer, on_event)
        with open(source, "rb") as ahead:
            for chunk, raw, stored in _read_chunks(source, layout, plan, forward, tally):
                base = tally.done_bytes

                def step(fraction: float, n: int, base: int = base, size: int = chunk.nbytes) -> None:
                    tally.tokens += n
                    on_event(Progress("encode", base + int(size * fraction), layout.data_size, tally.tokens))

                if pool is not None and chunk.lm:
                    submit_ahead(ahead)
                codec, payload, window_bits = chunks.code(chunk, raw, stored, step)
                tally.add(chunk, raw, codec, payload, window_bits)
        size, digest = tally.finish(time.monotonic() - start)
    except BaseException:
        writer.abort()
        raise
    finally:
        if pool is not None:
            pool.close()
    return tally.result(size, digest, time.monotonic() - start)


def _read_chunks(
    source: str | os.PathLike[str], layout: SourceLayout, plan: list[ChunkPlan], forward: ForwardFilter, tally: _Tally
) -> Iterator[tuple[ChunkPlan, bytes, bytes]]:
    """Each chunk's source bytes and what the codecs see (``stored``: raw, unless filtered), in file
    order; the file's header goes into the tally's SHA-256 first (chunks follow as they are written)."""
    with open(source, "rb") as f:
        tally.sha.update(f.read(layout.data_offset))
        for chunk in plan:
            f.seek(layout.data_offset + chunk.begin)
            raw = f.read(chunk.nbytes)
            if len(raw) != chunk.nbytes:
                raise UnsupportedError(f"{source} changed while being read")
            yield chunk, raw, forward.apply(chunk.begin, raw)


class _Tally:
    """What the encoder learns while it writes chunks: the source's SHA-256, bits per tensor,
    codec counts and progress; ends in the index and the result."""

    def __init__(self, layout: SourceLayout, writer: ArchiveWriter, on_event: EventSink) -> None:
        self.layout, self.writer, self.on_event = layout, writer, on_event
        self.sha = hashlib.sha256()
        self.tensor_bits = [0.0] * len(layout.tensors)
        self.tensor_model_bits = [0.0] * len(layout.tensors)
        self.gap_bits = 0.0
        self.tokens = 0
        self.codecs: dict[str, int] = {}
        self.done_bytes = 0

    def add(self, chunk: ChunkPlan, raw: bytes, codec: int, payload: bytes, window_bits: list[float]) -> None:
        """Write one chunk (``raw``: its source bytes) and account for it."""
        layout = self.layout
        self.sha.update(raw)
        entry = self.writer.add_chunk(codec, chunk.begin, chunk.nbytes, payload, round(sum(window_bits)))
        if codec != Codec.CM_FAST:  # the LM's ideal bits, whichever codec was kept
            for w, b in zip(chunk.windows, window_bits, strict=False):
                self.tensor_model_bits[w.tensor] += b
        shares = _attribute(chunk, codec, len(payload) * 8, window_bits)
        for ti, bits in shares.items():
            if ti >= 0:
                self.tensor_bits[ti] += bits
            else:
                self.gap_bits += bits
        name = Codec.NAMES[codec]
        self.codecs[name] = self.codecs.get(name, 0) + 1
        self.done_bytes += chunk.nbytes
        self.on_event(
            ChunkDone(
                chunk.index,
                name,
                chunk.begin,
                chunk.nbytes,
                entry.payload_length,
                tuple(
                    (layout.tensors[ti].name if ti >= 0 else "(gap)", nbytes, shares[ti])
                    for ti, nbytes in _bytes_by_tensor(chunk).items()
                ),
            )
        )
        self.on_event(Progress("encode", self.done_bytes, layout.data_size, self.tokens))

    def finish(self, seconds: float) -> tuple[int, bytes]:
        """Write the index and footer: the archive's size and the source's SHA-256."""
        digest = self.sha.digest()
        index = Index(
            tuple(self.writer.entries),
            tuple(self.tensor_bits),
            tuple(self.tensor_model_bits),
            self.gap_bits,
            digest,
            self.tokens,
            seconds,
        )
        return self.writer.finish(index), digest

    def result(self, size: int, digest: bytes, seconds: float) -> EncodeResult:
        layout = self.layout
        self.on_event(Finished("encode", layout.file_size, size, digest.hex(), seconds, self.tokens))
        coded = sum(e.payload_length for e in self.writer.entries)
        return EncodeResult(
            layout.file_size,
            size,
            digest.hex(),
            seconds,
            self.tokens,
            self.codecs,
            layout.data_size,
            coded,
            stored=self.writer.stored,
        )


def _store(job: _Job) -> EncodeResult:
    """A file too small for any model to pay for the archive's own bytes, stored as it is (24 bytes more)."""
    source, target, layout = job.source, job.target, job.layout
    overwrite, on_event, start = job.overwrite, job.on_event, job.start
    on_event(Started("encode", str(source), layout.data_size))
    size, digest = write_stored(target, source, overwrite)
    seconds = time.monotonic() - start
    on_event(Finished("encode", layout.file_size, size, digest.hex(), seconds, 0))
    return EncodeResult(layout.file_size, size, digest.hex(), seconds, 0, {}, layout.data_size, 0, stored=True)


def _header(
    layout: SourceLayout,
    opts: EncodeOptions,
    forward: ForwardFilter,
    rows: tuple[tuple[int, int], ...],
    *,
    head: str,
    procedure: str,
    model: ModelRecord | None,
    alphabet: AlphabetRecord | None,
    device: str,
    coder: dict[str, Any],
) -> Header:
    """The archive header for ``layout`` coded with ``opts``' layout; the keywords are what the level
    decides (the LM's procedure and records, or the fast level's)."""
    return Header(
        created_by=f"lmgc {__version__}",
        source_header=layout.header_bytes,
        source_size=layout.file_size,
        scheme=get_scheme(opts.scheme).name,
        byte_order=opts.byte_order,
        layout=WindowLayout(
            window_bytes=opts.window_bytes,
            batch=opts.batch,
            bytes_per_group=opts.bytes_per_group,
            plain_chunk_bytes=opts.plain_chunk_bytes,
            head=head,
            procedure=procedure,
        ),
        model=model,
        alphabet=alphabet,
        # Only the float LM procedures need the runtime (to refuse a mismatch); describing it imports
        # torch and runs a probe: ~1.6 s that a fast-level run would spend on a record it never writes.
        runtime=runtime.describe(device) if model is not None else {},
        coder=coder,
        filters=tuple((f.tensor, f.kind) for f in forward.filters),
        rows=rows,
    )


def _encode_fast(job: _Job) -> EncodeResult:
    """The fast level: float chunks by the compiled context-mixing model (cm/), no LM, on threads."""
    source, target, layout, opts = job.source, job.target, job.layout, job.opts
    overwrite, on_event, cancel, start = job.overwrite, job.on_event, job.cancel, job.start
    fast = replace(opts, window_bytes=FAST_WINDOW_BYTES, batch=FAST_BATCH, bytes_per_group=0, byte_order="msb_first")
    plan, forward, rows = plan_for(source, layout, fast)
    header = _header(
        layout,
        fast,
        forward,
        rows,
        head="none",
        procedure=cm_codec.NAME,
        model=None,
        alphabet=None,
        device="cpu",
        coder=dict(cm_codec.CODER),
    )
    on_event(Started("encode", str(source), layout.data_size))
    item_sizes = [t.item_size for t in layout.tensors]
    writer = ArchiveWriter(target, header, overwrite, source if opts.fallback else None)

    def code(item: tuple[ChunkPlan, bytes, bytes]) -> tuple[int, bytes, list[float]]:
        """The smallest of the context-mixing codec (float chunks), zstd, byte shuffle + zstd and raw.
        The zstd passes cost ~4 % of the encode time (a 19 MB SmolLM2 gradient, 2 threads) and win where
        long runs repeat: an embedding's gradient or Adam state whose rows are mostly exact zeros
        (BENCHMARKS.md "Corpus"), which the codec pays for value by value."""
        chunk, _, stored = item
        options: list[tuple[int, bytes, list[float]]] = [(Codec.RAW, stored, [])]
        zstd = zstandard.ZstdCompressor(level=FAST_ZSTD_LEVEL)
        options.append((Codec.ZSTD, zstd.compress(stored), []))
        size = value_size(chunk, layout)
        if size > 1:
            options.append((Codec.SHUFFLE_ZSTD, zstd.compress(byte_shuffle(stored, size)), []))
        if chunk.lm:
            coded = cm_codec.encode(chunk.windows, chunk.begin, stored, item_sizes)
            if coded is not None:
                options.append((Codec.CM_FAST, *coded))
        return min(options, key=lambda o: (len(o[1]), o[0]))

    try:
        tally = _Tally(layout, writer, on_event)
        chunks = _read_chunks(source, layout, plan, forward, tally)
        for (chunk, raw, _), (codec, payload, bits) in ordered_map(code, chunks, fast_threads(opts), cancel):
            tally.add(chunk, raw, codec, payload, bits)
        size, digest = tally.finish(time.monotonic() - start)
    except BaseException:
        writer.abort()
        raise
    return tally.result(size, digest, time.monotonic() - start)


def plan_for(
    source: str | os.PathLike[str], layout: SourceLayout, opts: EncodeOptions
) -> tuple[list[ChunkPlan], ForwardFilter, tuple[tuple[int, int], ...]]:
    """The chunk plan, the zero-sum filters worth keeping for this file (none when ``opts.filters``
    is off; filters.py) and the row lengths found for flat tensors (rows.py; header ``rows``), the
    plan's windows marked where a filter stores distances. Reads every float tensor before the
    header is written: once for the filters, and flat ones once more for their rows."""
    with open(source, "rb") as f:

        def read(offset: int, size: int) -> bytes:
            f.seek(layout.data_offset + offset)
            data = f.read(size)
            if len(data) != size:
                raise UnsupportedError(f"{source} changed while being read")
            return data

        rows = flat_rows(layout, read) if opts.bytes_per_group == 0 else ()
        plan = plan_chunks(
            layout, opts.window_bytes, opts.batch, opts.bytes_per_group, opts.plain_chunk_bytes, dict(rows)
        )
        if not opts.filters:
            return plan, ForwardFilter(layout, (), {}), rows
        filters, words = choose_filters(layout, read, opts.bytes_per_group)
    return mark_plan(plan, layout, filters), ForwardFilter(layout, filters, words), rows


def flat_rows(layout: SourceLayout, read: Callable[[int, int], bytes]) -> tuple[tuple[int, int], ...]:
    """Row lengths of flat float tensors that code smaller as rows: for each 1-D tensor, the candidates
    the exponents' autocorrelation suggests (rows.py), each tried with the fast level's model on a
    sample; one is kept when it saves at least 0.5 % of the sample."""
    found = []
    for ti, t in enumerate(layout.tensors):
        if t.dtype not in LM_DTYPES or len(t.shape) != 1 or t.shape[0] < MIN_VALUES:
            continue
        g = t.item_size
        head = read(t.begin, min(t.nbytes, SAMPLE_VALUES * g))
        candidates = [r for r in candidate_rows(exponent_fields(head, g)) if r <= t.shape[0] // 2]
        if not candidates:
            continue
        sample = head[: TRIAL_VALUES * g]

        def cost(row: int, sample: bytes = sample, g: int = g) -> int:
            coded = cm_codec.encode([Window(0, 0, len(sample), g, 0, row, -1)], 0, sample, [g])
            return len(coded[0]) if coded is not None else len(sample)

        base = cost(0)
        best_cost, best = min((cost(r), r) for r in candidates)
        if best_cost <= base * 0.995:
            found.append((ti, best))
    return tuple(found)


def _bytes_by_tensor(chunk: ChunkPlan) -> dict[int, int]:
    if not chunk.lm:
        return {chunk.tensor: chunk.nbytes}
    out: dict[int, int] = {}
    for w in chunk.windows:
        out[w.tensor] = out.get(w.tensor, 0) + w.nbytes
    return out


def _attribute(chunk: ChunkPlan, codec: int, payload_bits: int, window_bits: list[float]) -> dict[int, float]:
    """Split a chunk's real coded bits over its tensors: by model bits for LM chunks, by bytes otherwise."""
    if codec in (Codec.LM, Codec.CM_FAST) and sum(window_bits) > 0:
        total = sum(window_bits)
        out: dict[int, float] = {}
        for w, b in zip(chunk.windows, window_bits, strict=True):
            out[w.tensor] = out.get(w.tensor, 0.0) + payload_bits * b / total
        return out
    sizes = _bytes_by_tensor(chunk)
    return {ti: payload_bits * n / chunk.nbytes for ti, n in sizes.items()}
