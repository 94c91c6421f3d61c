"""The LM level's encoder: float chunks coded by the LM with the whole modelling stack, in this process or
on workers (parallel.py)."""

from __future__ import annotations

import time
from typing import BinaryIO

from lmgc_format.container.constants import FAST_PROCEDURE, lm_coder
from lmgc_format.container.header import AlphabetRecord, ModelRecord
from lmgc_format.container.procedures import PORTABLE_MIXING
from lmgc_format.container.writer import ArchiveWriter
from lmgc_format.errors import UnsupportedError
from lmgc_format.events import Notice, Progress, Started
from lmgc_format.lm.alphabet import RULE as ALPHABET_RULE
from lmgc_format.lm.lmsetup import LmSetup, prepare_lm
from lmgc_format.lm.mixing import mixing_for
from lmgc_format.lm.models import LoadedModel, get
from lmgc_format.lm.predictor import INT8_PROCEDURE, TRANSFORMERS_PROCEDURE, procedure_for
from lmgc_format.pipeline.chunk_encoder import ChunkEncoder
from lmgc_format.pipeline.encode_job import EncodeOptions, EncodeResult, Job, build_header
from lmgc_format.pipeline.file_plan import plan_for
from lmgc_format.pipeline.parallel import Pool, WorkerSetup, start_pool
from lmgc_format.pipeline.tally import Tally, read_chunks
from lmgc_format.tensors.serialize import get_scheme


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
        return f"{engine}+{PORTABLE_MIXING}"
    mixing = mixing_for(scheme, opts.mixing, opts.top_byte)  # mixing.py works on hex text only
    return engine + ("+" + mixing if mixing else "")


def encode_lm(job: Job) -> EncodeResult:
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
    procedure = FAST_PROCEDURE  # no chunk needs a model: the header names none (container/strict.py)
    if any(c.lm for c in plan):
        lm = model or get(opts.model, opts.dtype, opts.device)
        procedure = lm_procedure(opts, lm)
        setup = prepare_lm(lm, scheme.name, procedure, opts.restricted_head)
        if procedure.startswith(TRANSFORMERS_PROCEDURE) and lm.device.startswith("cuda") and opts.dtype == "bfloat16":
            # Seen on an H100 (EXPERIMENTS.md "CUDA"): that archive did not decode, even in the same process.
            on_event(
                Notice(
                    "transformers in bfloat16 on CUDA did not reproduce its own predictions in lmgc's test: "
                    "check this archive with --verify, or use --engine lmgc"
                )
            )
    header = build_header(
        layout,
        opts,
        forward,
        rows,
        head=setup.predictor.head_mode if setup else "none",
        procedure=procedure,
        model=ModelRecord(**setup.lm.info.__dict__) if setup else None,
        alphabet=AlphabetRecord(setup.alphabet.size, setup.alphabet.digest(), ALPHABET_RULE) if setup else None,
        device=setup.lm.device if setup else "cpu",
        coder=lm_coder(procedure) if setup else {},
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
    # provisional: a header names the model only if some chunk keeps the LM's payload (known at the end)
    writer = ArchiveWriter(target, header, overwrite, source if opts.fallback else None, provisional=setup is not None)
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
        tally = Tally(layout, writer, on_event)
        with open(source, "rb") as ahead:
            for chunk, raw, stored in read_chunks(source, layout, plan, forward, tally):
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
        forward.close()
        if pool is not None:
            pool.close()
    return tally.result(size, digest, time.monotonic() - start)
