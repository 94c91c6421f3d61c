"""``lmgc-tui bench --speed``: encode and decode throughput of the LM engines, side by side.

Each (engine, dtype) pair really compresses the file to a temporary archive
with every chunk kept LM-coded (no zstd fallback, so the LM does all the work
that is timed), decodes it back and compares the bytes. The model is loaded
before the clock starts; the times are the encoder's and decoder's own.
"""

from __future__ import annotations

import resource
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lmgc_format.events import EventSink, ignore


@dataclass(frozen=True)
class SpeedResult:
    engine: str
    procedure: str  # what the archive recorded
    dtype: str
    batch: int
    window_bytes: int
    data_bytes: int
    tokens: int
    coded_bytes: int  # sum of chunk payloads
    encode_s: float
    decode_s: float
    roundtrip: bool
    peak_rss_mb: float  # of this process so far (a high-water mark: it never goes down)

    @property
    def encode_tps(self) -> float:
        return self.tokens / self.encode_s if self.encode_s else 0.0

    @property
    def decode_tps(self) -> float:
        return self.tokens / self.decode_s if self.decode_s else 0.0

    @property
    def encode_bps(self) -> float:
        return self.data_bytes / self.encode_s if self.encode_s else 0.0

    @property
    def decode_bps(self) -> float:
        return self.data_bytes / self.decode_s if self.decode_s else 0.0

    @property
    def percent(self) -> float:
        return 100.0 * self.coded_bytes / self.data_bytes if self.data_bytes else 0.0

    def to_obj(self) -> dict[str, Any]:
        obj = asdict(self)
        obj.update(
            encode_tok_s=round(self.encode_tps, 1),
            decode_tok_s=round(self.decode_tps, 1),
            encode_bytes_s=round(self.encode_bps, 1),
            decode_bytes_s=round(self.decode_bps, 1),
            percent=round(self.percent, 3),
        )
        return obj


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def measure(
    path: Path,
    engine: str,
    dtype: str,
    *,
    model: str | None = None,
    scheme: str = "comma",
    window_bytes: int = 512,
    batch: int = 16,
    mixing: bool = True,
    top_byte: bool = True,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
) -> SpeedResult:
    from lmgc_format.bench.runner import round_trip
    from lmgc_format.lm.models import get
    from lmgc_format.pipeline.encoder import EncodeOptions

    get(model, dtype)  # load (memoized) before any clock starts
    opts = EncodeOptions(
        model=model,
        scheme=scheme,
        window_bytes=window_bytes,
        batch=batch,
        dtype=dtype,
        engine=engine,
        level="max",  # "auto" would code the fast level too and might keep its archive: no LM to time
        fallback=False,
        mixing=mixing,
        top_byte=top_byte,
    )
    rt = round_trip(path, opts, on_event, cancel)
    enc, dec = rt.encoded, rt.decoded
    return SpeedResult(
        engine=engine,
        procedure=rt.procedure,
        dtype=dtype,
        batch=batch,
        window_bytes=window_bytes,
        data_bytes=enc.data_bytes,
        tokens=enc.tokens,
        coded_bytes=enc.coded_bytes,
        encode_s=enc.seconds,
        decode_s=dec.seconds,
        roundtrip=rt.identical,
        peak_rss_mb=peak_rss_mb(),
    )
