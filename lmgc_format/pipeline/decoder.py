"""Streaming decoder: .lmgc archive -> the original safetensors file, byte for byte.

``verify`` is the same pass with no output file: every CRC checked, every
chunk decoded, the SHA-256 of the result compared with the stored one.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from lmgc_format.atomic import AtomicOutput, refuse_existing
from lmgc_format.cm.pool import default_workers
from lmgc_format.container import lzma2
from lmgc_format.container.constants import Codec
from lmgc_format.container.procedures import portable_procedure
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.container.zstdcap import one_frame
from lmgc_format.errors import (
    CancelledError,
    CorruptChunkError,
    FormatError,
    IntegrityError,
    ModelError,
    ModelMismatchError,
    ReferenceMismatchError,
    UnsupportedError,
)
from lmgc_format.events import EventSink, Finished, Notice, Progress, Started, ignore
from lmgc_format.lm import runtime
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.lmchunk import decode_windows
from lmgc_format.lm.lmsetup import ExpectedAlphabet, prepare_lm
from lmgc_format.lm.models import PACKAGED, LoadedModel, get
from lmgc_format.lm.predictor import Predictor, split_procedure
from lmgc_format.pipeline.compiled_chunks import decode_compiled
from lmgc_format.pipeline.hashing import BackgroundSha256
from lmgc_format.pipeline.parallel import Pool, WorkerSetup, check_workers, result, start_pool
from lmgc_format.pipeline.ray_tasks import RayTasks
from lmgc_format.tensors.plan import value_size
from lmgc_format.tensors.serialize import get_scheme
from lmgc_format.transforms.filters import InverseFilter
from lmgc_format.transforms.reference import ReferenceDelta, check_tensors, digest, open_reference
from lmgc_format.transforms.shuffle import bit_unshuffle, byte_unshuffle

MAX_THREADS = 1024  # the most torch threads a decoder sets, whatever an archive records


@dataclass(frozen=True)
class DecodeOptions:
    model: str | None = None  # None: the model the archive names (packaged name or path)
    force: bool = False  # decode even if the model fingerprint differs (the SHA-256 still guards)
    threads: int | None = None  # None: the thread count recorded in the archive
    device: str | None = None
    workers: int = 1  # >1: LM chunks decoded in that many processes (parallel.py)
    fast_threads: int | None = None  # threads decoding fast-level chunks; None: one per CPU
    ray: str | None = None  # a Ray address, "auto" or "local": workers are Ray actors (0 workers: one per CPU)
    reference: str | None = None  # the safetensors file the archive was coded against, if it was


@dataclass(frozen=True)
class DecodeResult:
    source_size: int
    archive_size: int
    sha256: str
    seconds: float
    tokens: int


def _model_for(
    reader: ArchiveReader, opts: DecodeOptions, on_event: EventSink, given: LoadedModel | None
) -> LoadedModel:
    rec = reader.header.model
    assert rec is not None
    if given is not None:
        lm = given
    else:
        name = opts.model or rec.id
        try:
            lm = get(name, rec.dtype, opts.device)
        except ModelError as exc:
            if opts.model is None and rec.id not in PACKAGED:
                raise ModelError(f"{exc}; the archive was made with model {rec.id!r}: pass it with --model") from None
            raise
    problems = []
    if lm.info.sha256 != rec.sha256:
        problems.append(f"weights fingerprint {lm.info.sha256[:12]}… is not the archive's {rec.sha256[:12]}…")
    if lm.info.dtype != rec.dtype:
        problems.append(f"dtype {lm.info.dtype} is not the archive's {rec.dtype}")
    if lm.info.bos_id != rec.bos_id or lm.info.vocab_size != rec.vocab_size:
        problems.append("vocabulary (BOS id / size) differs")
    if problems:
        msg = f"archive was made with model {rec.id!r} ({rec.architecture}, {rec.dtype}); " + "; ".join(problems)
        if not opts.force:
            raise ModelMismatchError(
                msg + " (use --ignore-model-mismatch to try anyway; the result is still checked against the "
                "stored SHA-256)"
            )
        on_event(Notice("forced: " + msg))
    return lm


def _check_engine(recorded: dict[str, Any], predictor: Predictor, force: bool, on_event: EventSink) -> None:
    """Refuse (unless forced) a portable engine whose integer weights and tables differ from the encoder's."""
    want, got = recorded.get("engine_sha256"), getattr(predictor, "digest", None)
    if want is None or (got is not None and got.startswith(want)):
        return
    msg = (
        f"this model gives the {type(predictor).__name__} other integers than the encoder's (engine SHA-256 "
        f"{str(got)[:16]}…, archive {str(want)[:16]}…): another model file, loader or dtype"
    )
    if not force:
        raise ModelMismatchError(msg + " (use --ignore-model-mismatch to try anyway)")
    on_event(Notice("forced: " + msg))


def _read_and_decode(reader: ArchiveReader, i: int) -> bytes:
    """Chunk ``i`` of a compiled codec, read (its CRC checked) and decoded on a thread of the decoder: the
    reads and checksums of a quick-level file cost as much as its decoding (120 MB: ~0.16 s of 0.35).
    Its errors name the chunk (a CRC mismatch: read_chunk's own)."""
    entry, payload = reader.read_chunk(i)
    try:
        return decode_compiled(entry.codec, reader.plan[i], reader.layout, payload)
    except CorruptChunkError as exc:
        raise _undecodable(reader, i, exc) from None


def _undecodable(reader: ArchiveReader, i: int, exc: CorruptChunkError) -> CorruptChunkError:
    return CorruptChunkError(f"{reader.describe_chunk(i)} could not be decoded ({exc})")


def _recorded_threads(recorded: dict[str, Any], default: int) -> int:
    """The thread count the archive's runtime block records, if it is one (a crafted header may say
    anything: a string, 100000); else ``default``."""
    threads = recorded.get("threads")
    return threads if type(threads) is int and 1 <= threads <= MAX_THREADS else default


_COMPILED = (Codec.CM_FAST, Codec.CM_FAST2, Codec.CM_INTS, Codec.QUICK)  # codecs the decoder's threads run side by side


class ChunkDecoder:
    """Everything needed to decode the chunks of one archive, one at a time.

    The reader has checked the archive's procedure (container/strict.py); building it, when any chunk is
    LM-coded, loads the model and refuses (unless forced) one whose fingerprint, dtype or alphabet differ.
    Chunks are independent given the model: each LM chunk is its own range-coder stream.
    """

    def __init__(
        self,
        reader: ArchiveReader,
        opts: DecodeOptions,
        on_event: EventSink,
        model: LoadedModel | None,
        cancel: threading.Event | None,
    ) -> None:
        header = reader.header
        self.reader = reader
        self.cancel = cancel
        self.scheme = scheme = get_scheme(header.scheme)
        self.msb_first = header.byte_order == "msb_first"
        self.mixing = split_procedure(header.layout.procedure)[1]
        self.predictor: Predictor | None = None
        self.alphabet: Alphabet | None = None
        self.pool: Pool | None = None
        self._pending: dict[int, Future[Any]] = {}
        self._threads: ThreadPoolExecutor | None = None
        self._thread_count = 0
        self._tasks: RayTasks | None = None
        if any(e.codec in _COMPILED for e in reader.index.chunks):
            has_lm = any(e.codec == Codec.LM for e in reader.index.chunks)  # then --ray is the LM workers'
            if opts.ray is not None and not has_lm:  # the quick and fast levels' chunks on Ray actors (ray_tasks.py)
                self._tasks = RayTasks(opts.ray, opts.workers)
                self._thread_count = self._tasks.workers
            else:
                self._thread_count = opts.fast_threads or default_workers()
                if self._thread_count > 1:
                    self._threads = ThreadPoolExecutor(self._thread_count, thread_name_prefix="lmgc-cm")
        if any(e.codec == Codec.LM for e in reader.index.chunks):
            import torch

            lm = _model_for(reader, opts, on_event, model)
            assert header.alphabet is not None
            torch.set_num_threads(opts.threads or _recorded_threads(header.runtime, torch.get_num_threads()))
            setup = prepare_lm(
                lm,
                scheme.name,
                header.layout.procedure,
                header.layout.head == "restricted",
                expected=ExpectedAlphabet(header.alphabet.sha256, header.alphabet.size, rule=header.alphabet.rule),
                force=opts.force,
                on_event=on_event,
            )
            predictor, alphabet = setup.predictor, setup.alphabet
            if predictor.head_mode != header.layout.head:
                raise ModelMismatchError(
                    f"archive computed logits with the {header.layout.head!r} head; "
                    f"this model allows only {predictor.head_mode!r}"
                )
            here = runtime.describe(lm.device)
            diffs = runtime.differences(header.runtime, here)
            if portable_procedure(header.layout.procedure):
                # Integer-exact: versions, threads and CPU kind do not matter, the engine's integers do.
                _check_engine(header.runtime, predictor, opts.force, on_event)
            elif diffs:
                on_event(
                    Notice(
                        "runtime differs from the encoder's ("
                        + ", ".join(diffs)
                        + "): decoding may fail; the SHA-256 check will tell"
                    )
                )
            self.predictor, self.alphabet = predictor, alphabet
            if opts.workers != 1 or opts.ray is not None:
                restricted = header.layout.head == "restricted"
                workers = WorkerSetup.of(lm, scheme.name, header.layout.procedure, restricted, here, alphabet.digest())
                self.pool = start_pool(workers, opts.workers, opts.ray)

    @property
    def lookahead(self) -> int:
        """How many chunks ahead :meth:`submit` is worth calling for."""
        return 2 * max(self.pool.workers if self.pool is not None else 0, self._thread_count)

    def submit(self, i: int) -> None:
        """With workers: start decoding chunk ``i`` in a worker (:meth:`decode` takes the result)."""
        if i in self._pending:
            return
        codec = self.reader.index.chunks[i].codec
        if codec == Codec.LM and self.pool is not None:
            _, payload = self.reader.read_chunk(i)
            self._pending[i] = self.pool.decode(self.reader.plan[i].windows, payload, self.msb_first)
        elif codec in _COMPILED and self._threads is not None:  # the thread reads and checks its payload too
            self._pending[i] = self._threads.submit(_read_and_decode, self.reader, i)
        elif codec in _COMPILED and self._tasks is not None:
            _, payload = self.reader.read_chunk(i)
            self._pending[i] = self._tasks.submit(
                decode_compiled, codec, self.reader.plan[i], self.reader.layout, payload
            )

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        if self._threads is not None:
            for future in self._pending.values():
                future.cancel()
            self._threads.shutdown(wait=True)
        if self._tasks is not None:
            self._tasks.close()

    def decode(self, i: int, step: Callable[[float, int], None] | None = None) -> bytes:
        """The original bytes of chunk ``i``; CorruptChunkError names the chunk when they cannot be had."""
        reader = self.reader
        plan = reader.plan[i]
        if i in self._pending:  # read, and its CRC checked, when it was submitted to a worker
            entry, payload = reader.index.chunks[i], b""
        else:
            entry, payload = reader.read_chunk(i)
        if entry.codec == Codec.LM:
            assert self.predictor is not None and self.alphabet is not None
            try:
                if i in self._pending:
                    parts = result(self._pending.pop(i), self.cancel)
                    if step is not None:
                        step(1.0, 0)
                else:
                    parts = decode_windows(
                        self.predictor,
                        self.alphabet,
                        self.scheme,
                        plan.windows,
                        payload,
                        self.msb_first,
                        self.cancel,
                        step,
                        mixing=self.mixing,
                    )
            except CorruptChunkError as exc:
                raise CorruptChunkError(
                    f"{reader.describe_chunk(i)} could not be decoded ({exc}); "
                    "the model or runtime does not reproduce the encoder's predictions"
                ) from None
            data = b"".join(parts)
        elif entry.codec in _COMPILED:
            if self.cancel is not None and self.cancel.is_set():
                raise CancelledError("cancelled")
            pending = self._pending.pop(i, None)  # a thread's or a Ray actor's (result() unwraps Ray's errors)
            try:
                if pending is None:
                    data = decode_compiled(entry.codec, plan, reader.layout, payload)
                else:
                    data = result(pending, self.cancel)
            except CorruptChunkError as exc:
                if pending is not None and self._tasks is None:
                    raise  # a thread's: _read_and_decode named the chunk
                raise _undecodable(reader, i, exc) from None
        elif entry.codec == Codec.LZMA2:
            try:
                data = lzma2.decompress(payload, plan.nbytes, value_size(plan, reader.layout))
            except CorruptChunkError as exc:
                raise CorruptChunkError(f"{reader.describe_chunk(i)} is damaged ({exc})") from None
        elif entry.codec in (Codec.ZSTD, Codec.SHUFFLE_ZSTD, Codec.BITSHUFFLE_ZSTD):
            try:
                data = one_frame(payload, plan.nbytes, reader.describe_chunk(i), content_size=plan.nbytes)
            except zstandard.ZstdError as exc:
                raise CorruptChunkError(f"{reader.describe_chunk(i)} is damaged ({exc})") from None
            except FormatError as exc:
                raise CorruptChunkError(str(exc)) from None
            if entry.codec != Codec.ZSTD and len(data) == plan.nbytes:
                unshuffle = byte_unshuffle if entry.codec == Codec.SHUFFLE_ZSTD else bit_unshuffle
                data = unshuffle(data, value_size(plan, reader.layout))
        else:
            data = payload
        if len(data) != plan.nbytes:
            raise CorruptChunkError(f"{reader.describe_chunk(i)} decoded to {len(data)} bytes, not {plan.nbytes}")
        return data


def reference_for(reader: ArchiveReader, reference: str | None, on_event: EventSink) -> ReferenceDelta:
    """What undoes the archive's differences from its reference: refuses, naming what is missing or different, when
    the archive was coded against a reference and ``reference`` is not that file."""
    tensors = reader.header.reference_tensors
    if not tensors:
        if reference is not None:
            on_event(Notice("the archive was not coded against a reference: --reference is not needed"))
        return ReferenceDelta(reader.layout, None, {})
    want = reader.header.reference_sha256.hex()
    if reference is None:
        raise ReferenceMismatchError(
            f"this archive was coded against a reference ({len(tensors)} tensors, SHA-256 {want[:16]}…): "
            "give that file (--reference; reference= in Python)"
        )
    path, ref_layout = open_reference(reference)
    offsets = check_tensors(reader.layout, ref_layout, tensors)
    with open(path, "rb") as ref:
        got = digest(ref, reader.layout, offsets).hex()
    if got != want:
        raise ReferenceMismatchError(
            f"{reference} is not the reference this archive was coded against: its tensors' SHA-256 is "
            f"{got[:16]}…, the archive's {want[:16]}…"
        )
    return ReferenceDelta(reader.layout, path, offsets)


def check_target(archive: str | os.PathLike[str], target: str | os.PathLike[str], overwrite: bool) -> None:
    """Before any decoding: the output may neither be the archive itself nor replace a file without -f."""
    if Path(target).resolve() == Path(archive).resolve():
        raise UnsupportedError("output would overwrite the archive")
    refuse_existing(target, overwrite)


def decode_file(
    archive: str | os.PathLike[str],
    target: str | os.PathLike[str] | None,
    options: DecodeOptions | None = None,
    *,
    overwrite: bool = False,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
    model: LoadedModel | None = None,
) -> DecodeResult:
    """Decode ``archive`` to ``target`` (None: verify only). Raises unless every byte checks out."""
    opts = options or DecodeOptions()
    check_workers(opts.workers, opts.ray)
    operation = "decode" if target is not None else "verify"
    start = time.monotonic()
    with ArchiveReader(archive) as reader:
        layout = reader.layout
        if target is not None:
            check_target(archive, target, overwrite)
        against = reference_for(reader, opts.reference, on_event)  # refused before any work when it is not right
        try:
            chunks = ChunkDecoder(reader, opts, on_event, model, cancel)
        except BaseException:
            against.close()
            raise
        on_event(Started(operation, str(archive), layout.data_size))
        out = AtomicOutput(target, overwrite) if target is not None else None
        sha = BackgroundSha256()
        try:
            prefix = struct.pack("<Q", len(layout.header_bytes)) + layout.header_bytes
            sha.update(prefix)
            if out:
                out.write(prefix)
            tokens = 0
            done_bytes = 0
            restore = InverseFilter(layout, reader.filters)
            for plan in reader.plan:
                for ahead in reader.plan[plan.index : plan.index + chunks.lookahead]:
                    chunks.submit(ahead.index)  # keep the workers busy a few chunks ahead
                base = done_bytes

                def step(fraction: float, n: int, base: int = base, size: int = plan.nbytes) -> None:
                    nonlocal tokens
                    tokens += n
                    on_event(Progress(operation, base + int(size * fraction), layout.data_size, tokens))

                data = against.inverse(plan.begin, restore.feed(plan.begin, chunks.decode(plan.index, step)))
                sha.update(data)
                if out:
                    out.write(data)
                done_bytes += plan.nbytes
                on_event(Progress(operation, done_bytes, layout.data_size, tokens))
            if sha.digest()[: len(reader.index.sha256)] != reader.index.sha256:  # format 1.4 keeps 8 bytes
                raise IntegrityError(
                    f"decoded data does not match the archive's SHA-256 ({sha.hexdigest()[:16]}… vs "
                    f"{reader.index.sha256.hex()[:16]}…); nothing was written"
                )
            if out:
                out.commit()
        finally:
            sha.close()
            chunks.close()
            against.close()
            if out:
                out.abort()
        seconds = time.monotonic() - start
        on_event(Finished(operation, layout.file_size, reader.size, sha.hexdigest(), seconds, tokens))
        return DecodeResult(layout.file_size, reader.size, sha.hexdigest(), seconds, tokens)
