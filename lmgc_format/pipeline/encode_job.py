"""What one encode is: its options, its result, the job both levels share, and the header they write."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from lmgc_format import __version__
from lmgc_format.cm.pool import default_workers
from lmgc_format.container.constants import (
    FAST2_PROCEDURE,
    FAST_PROCEDURE,
    MAX_BATCH,
    MAX_BYTES_PER_GROUP,
    MAX_WINDOW_BYTES,
)
from lmgc_format.container.header import AlphabetRecord, Header, ModelRecord, WindowLayout
from lmgc_format.errors import UnsupportedError
from lmgc_format.events import EventSink
from lmgc_format.lm import runtime
from lmgc_format.lm.models import DEFAULT_DTYPE, LoadedModel
from lmgc_format.pipeline.defaults import DEFAULT_BATCH, DEFAULT_ENGINE, DEFAULT_WINDOW_BYTES, ENGINE_CHOICES
from lmgc_format.pipeline.levels import (
    DEFAULT_LEVEL,
    DEFAULT_TIME_BUDGET,
    FLOAT_LM_BYTES_PER_SECOND,
    LM_BYTES_PER_SECOND,
    LevelChoice,
    choose_level,
)
from lmgc_format.pipeline.parallel import check_workers
from lmgc_format.tensors.plan import PLAIN_CHUNK_BYTES
from lmgc_format.tensors.serialize import BYTE_ORDERS, DEFAULT_BYTE_ORDER, DEFAULT_SCHEME, get_scheme
from lmgc_format.tensors.source import LM_DTYPES, SourceLayout
from lmgc_format.transforms.reference import Forward


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
    reference: str | None = None  # a safetensors file the decoder holds too: tensors may be coded against it
    # The fast level's procedure: cm-fast-v2 (format 1.8); cm-fast-v1 where chunk codec 9 cannot be said
    # (bare tensors' 3-bit codec numbers, bare.py) and for tests that write the cm-fast-v1 golden.
    fast_procedure: str = FAST2_PROCEDURE

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
        if self.fast_procedure not in (FAST_PROCEDURE, FAST2_PROCEDURE):
            raise UnsupportedError(f"the fast level's procedure is {FAST2_PROCEDURE} or {FAST_PROCEDURE}")


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
    return choose_level(
        float_bytes(layout), opts.level, opts.time_budget, fast_threads(opts), lm_rate(opts), opts.fallback
    )


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
class Job:
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


def build_header(
    layout: SourceLayout,
    opts: EncodeOptions,
    forward: Forward,
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
        # Only an LM serializes values: without one the header says the defaults (container/strict.py)
        scheme=get_scheme(opts.scheme).name if model is not None else DEFAULT_SCHEME,
        byte_order=opts.byte_order if model is not None else DEFAULT_BYTE_ORDER,
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
        reference_tensors=tuple(sorted(forward.reference)),
        reference_sha256=forward.reference_sha256,
    )
