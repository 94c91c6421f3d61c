"""Time-boxed fuzzing of the archive reader and decoder (no model needed).

Mutates the committed plain, fast-level, compact (1.4), stored and integer (1.5) golden archives two
ways: bytes (edits, bit flips, truncations, splices, random files: the CRCs catch most) and
meaning (``semantic_mutation``: header, tensor table, window layout, rows,
filters, procedure, head, model and coder records, index counters, zstd framing
and payloads changed and every CRC and offset recomputed, so only
the reader's and decoder's own checks stand between them and the user; hostile
names and numbers included). The one property that matters: every input ends
in a clean ``LmgcError`` or decodes to exactly the original bytes. Anything else
(another exception, a case over 5 s or 256 MiB, wrong bytes) is a finding.

    python scripts/fuzz.py --seconds 300
    python scripts/fuzz.py --seconds 60 --write-corpus tests/data/fuzz   # keep one file per distinct error
"""

from __future__ import annotations

import argparse
import contextlib
import random
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmgc_format.errors import LmgcError  # noqa: E402
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file  # noqa: E402

WITH_REFERENCE = DecodeOptions(reference=str(ROOT / "tests" / "data" / "golden_reference_ref.safetensors"))

SEED = ROOT / "tests" / "data" / "golden_ints.safetensors.lmgc"
ORIGINAL = ROOT / "tests" / "data" / "golden_ints.safetensors"
SEEDS = (
    (SEED, ORIGINAL),
    (ROOT / "tests" / "data" / "golden_fast.safetensors.lmgc", ROOT / "tests" / "data" / "golden_fast.safetensors"),
    # format 1.4: the compact layout and a stored archive
    (ROOT / "tests" / "data" / "golden_compact.safetensors.lmgc", ROOT / "tests" / "data" / "golden_fast.safetensors"),
    (ROOT / "tests" / "data" / "golden_stored.safetensors.lmgc", ROOT / "tests" / "data" / "golden_stored.safetensors"),
    # format 1.5: every integer mode and lzma2
    (ROOT / "tests" / "data" / "golden_quant.safetensors.lmgc", ROOT / "tests" / "data" / "golden_quant.safetensors"),
    # format 1.7: the quick level, every plane mode
    (ROOT / "tests" / "data" / "golden_quick.safetensors.lmgc", ROOT / "tests" / "data" / "golden_quick.safetensors"),
    # format 1.8: the fast level's cm-fast-v2 (fp64, fp32, bf16, fp16 runs in one chunk)
    (ROOT / "tests" / "data" / "golden_fast2.safetensors.lmgc", ROOT / "tests" / "data" / "golden_fast.safetensors"),
    # format 1.6: coded against a reference (every case is decoded with REFERENCE; the others ignore it)
    (
        ROOT / "tests" / "data" / "golden_reference.safetensors.lmgc",
        ROOT / "tests" / "data" / "golden_reference.safetensors",
    ),
)
SKIPPABLE = (0x184D2A50).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"  # a zstd skippable frame
HOSTILE_NAMES = ("[/x]", "\x1b]0;pwned\x07", "a" * 300, "\u202e", "__metadata__x", "")
HOSTILE_INTS = (0, 1, 2, 3, 255, 256, 1 << 20, (1 << 31) - 1, 1 << 32, 1 << 62, (1 << 64) - 1, -1, 10**30)


def semantic_mutation(rng: random.Random, archive: Path, target: Path) -> None:
    """``archive`` written again to ``target`` with one meaningful change and every CRC, offset and
    count recomputed (ArchiveWriter), as a crafted file would be."""
    import json
    from dataclasses import replace

    from lmgc_format.container.header import AlphabetRecord, ModelRecord
    from lmgc_format.container.reader import ArchiveReader
    from lmgc_format.container.strict import without_lm
    from lmgc_format.container.writer import ArchiveWriter

    with ArchiveReader(archive) as r:
        header, index = r.header, r.index
        chunks = [
            (e.codec, e.data_offset, e.data_length, r.read_chunk(i)[1], e.model_bits)
            for i, e in enumerate(index.chunks)
        ]
    if header.model is None:  # what lmgc writes today for a seed that needs no model (container/strict.py)
        header, index = without_lm(header, index)
    kind = rng.randrange(14)
    layout = header.layout
    if kind == 0:  # the window layout
        field = rng.choice(["window_bytes", "batch", "bytes_per_group", "plain_chunk_bytes"])
        header = replace(header, layout=replace(layout, **{field: rng.choice(HOSTILE_INTS)}))
    elif kind == 1:  # the source size
        header = replace(header, source_size=rng.choice(HOSTILE_INTS))
    elif kind == 2:  # the tensor table: names, shapes, offsets, dtypes
        table = json.loads(header.source_header)
        name = rng.choice([k for k in table if k != "__metadata__"] or ["x"])
        entry = table.pop(name, {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]})
        what = rng.randrange(4)
        if what == 0:
            table[rng.choice(HOSTILE_NAMES)] = entry
        elif what == 1:
            entry["shape"] = [rng.choice(HOSTILE_INTS) for _ in range(rng.randint(0, 3))]
            table[name] = entry
        elif what == 2:
            entry["data_offsets"] = [rng.choice(HOSTILE_INTS), rng.choice(HOSTILE_INTS)]
            table[name] = entry
        else:
            entry["dtype"] = rng.choice(["F32", "BF16", "F16", "F64", "I64", "U8", "F8_E4M3", "F31"])
            table[name] = entry
        header = replace(header, source_header=json.dumps(table).encode())
    elif kind == 3:  # rows of flat tensors
        rows = tuple((rng.choice(HOSTILE_INTS[:8]), rng.choice(HOSTILE_INTS)) for _ in range(rng.randint(1, 3)))
        header = replace(header, rows=rows)
    elif kind == 4:  # filters
        kinds = ["sum-first-axis-v1", "sum-last-axis-v1", "nope"]
        filters = tuple((rng.choice(HOSTILE_INTS[:6]), rng.choice(kinds)) for _ in range(rng.randint(1, 3)))
        header = replace(header, filters=filters)
    elif kind == 5:  # the procedure
        procedures = ["cm-fast-v1", "cm-fast-v2", "quick-v1", "lmgc-llama-v1+cm-top-v4", "lockstep-kv-v1", "cm-fast-v9"]
        procedures += ["", "stored", "lmgc-int8-v1+cm-int-v2", "lmgc-int8-v1+cm-top-v4"]
        header = replace(header, layout=replace(layout, procedure=rng.choice(procedures)))
    elif kind == 6 and chunks:  # a chunk's codec
        i = rng.randrange(len(chunks))
        c = chunks[i]
        chunks[i] = (rng.choice([0, 1, 2, 3, 4, 5, 6, 255]), *c[1:])
    elif kind == 7 and chunks:  # a payload: damaged, cut, grown, or a zstd bomb (CRCs recomputed)
        import zstandard

        i = rng.randrange(len(chunks))
        c = chunks[i]
        payload = bytearray(c[3])
        how = rng.randrange(4)
        if how == 0 and payload:
            payload[rng.randrange(len(payload))] ^= 1 << rng.randrange(8)
        elif how == 1:
            payload = payload[: rng.randrange(len(payload) + 1)]
        elif how == 2:
            payload += rng.randbytes(rng.randint(1, 64))
        else:
            payload = bytearray(zstandard.ZstdCompressor().compress(b"\0" * (64 << 20)))
        chunks[i] = (c[0], c[1], c[2], bytes(payload), c[4])
    elif kind == 9:  # the LM's head, in an archive that may have no LM
        head = rng.choice(["evil", "\x1b]0;pwned\x07", "full", "restricted", "none", ""])
        header = replace(header, layout=replace(layout, head=head))
    elif kind == 10:  # a model record (and coder) no chunk may need, or a made-up coder
        model = ModelRecord(
            rng.choice(["made-up", "/etc/passwd", "\x1b[2J"]),
            rng.choice(["gguf", "evil"]),
            "00" * 32,
            "llama",
            10,
            rng.choice(["float32", "f13"]),
            0,
        )
        coder = rng.choice([{}, {"name": "made-up"}, {"name": "binary-arithmetic-32", "probability_bits": 16}])
        header = replace(
            header,
            model=model,
            alphabet=AlphabetRecord(16, "00" * 32, "ordinary-first"),
            coder=coder,
            layout=replace(layout, head=rng.choice(["none", "restricted"])),
        )
    elif kind == 11:  # the index's counters: bits per tensor, gaps, LM bits, a chunk's model bits
        n = len(index.tensor_bits)
        hostile = [float(rng.choice(HOSTILE_INTS[:12])) for _ in range(n)]
        what = rng.randrange(4)
        if what == 0:
            index = replace(index, tensor_bits=tuple(hostile))
        elif what == 1:
            index = replace(index, tensor_model_bits=tuple(hostile))
        elif what == 2:
            index = replace(index, gap_bits=hostile[0] if hostile else 1e18)
        elif chunks:
            i = rng.randrange(len(chunks))
            chunks[i] = (*chunks[i][:4], rng.choice(HOSTILE_INTS[:12]))
    elif kind == 12 and chunks:  # a zstd payload that is not exactly one frame declaring the chunk's length
        import zstandard

        usable = [i for i, c in enumerate(chunks) if c[0] in (0, 1)]
        if usable:
            i = rng.choice(usable)
            c = chunks[i]
            data = c[3] if c[0] == 0 else zstandard.ZstdDecompressor().decompress(c[3])
            z = zstandard.ZstdCompressor()
            payload = rng.choice(
                [
                    z.compress(data) + z.compress(b""),
                    SKIPPABLE + z.compress(data),
                    zstandard.ZstdCompressor(write_content_size=False).compress(data),
                    z.compress(data + b"\0"),
                    z.compress(data[:-1]) if data else b"",
                    z.compress(data) + b"\0",
                ]
            )
            chunks[i] = (1, c[1], c[2], payload, c[4])
    elif kind == 13:  # the reference record: tensors coded against one, and its digest
        tensors = tuple(rng.choice(HOSTILE_INTS[:8]) for _ in range(rng.randint(0, 3)))
        digest = rng.choice([header.reference_sha256 or bytes(32), rng.randbytes(32), b"", rng.randbytes(31)])
        header = replace(header, reference_tensors=rng.choice([tensors, tuple(sorted(set(tensors)))]),
                         reference_sha256=digest)  # fmt: skip
    else:  # the index's statistics
        index = replace(index, tokens=rng.choice(HOSTILE_INTS), seconds=float(rng.choice(HOSTILE_INTS[:9])))
    writer = ArchiveWriter(target, header, overwrite=True)
    try:
        for codec, offset, length, payload, bits in chunks:
            writer.add_chunk(codec, offset, length, payload, bits)
        writer.finish(replace(index, chunks=tuple(writer.entries)))
    except BaseException:
        writer.abort()
        raise


def check_case(path: Path, original: bytes, out: Path) -> str | None:
    """None when ``path`` decodes to exactly ``original`` or is refused with one LmgcError (by inspect and
    by decompress); else what went wrong (a crash, wrong bytes, an output left after an error, over 5 s
    or 256 MiB)."""
    import tracemalloc

    from lmgc_format.inspect import describe_archive

    out.unlink(missing_ok=True)
    t0 = time.monotonic()
    tracemalloc.start()
    try:
        with contextlib.suppress(LmgcError):
            describe_archive(path)  # inspect reads everything but the payloads
        decode_file(path, out, WITH_REFERENCE)
    except LmgcError:
        if out.exists():
            return "error but an output was left"
    except Exception:
        return "crash\n" + traceback.format_exc()
    else:
        if out.read_bytes() != original:
            return "decoded to WRONG bytes"
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if time.monotonic() - t0 > 5:
        return f"took {time.monotonic() - t0:.1f} s"
    if peak > 256 << 20:
        return f"peaked at {peak >> 20} MiB"
    return None


def mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    kind = rng.randrange(6)
    if kind == 0:  # flip bits
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # overwrite bytes with extreme values
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    elif kind == 2:  # truncate
        data = data[: rng.randrange(len(data) + 1)]
    elif kind == 3:  # splice a block from elsewhere
        a, b = sorted(rng.randrange(len(data)) for _ in range(2))
        j = rng.randrange(len(data))
        data[j : j + (b - a)] = data[a:b]
    elif kind == 4:  # insert junk
        j = rng.randrange(len(data) + 1)
        data[j:j] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:  # random file
        data = bytearray(rng.randbytes(rng.randint(0, 2048)))
    return bytes(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write-corpus", type=Path, help="keep mutated archives with distinct errors here")
    ap.add_argument("--corpus-size", type=int, default=40, help="how many to keep (spread over the distinct errors)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    seeds = [(archive.read_bytes(), original.read_bytes(), archive) for archive, original in SEEDS]
    cases = semantic = 0
    findings: list[str] = []
    kept: dict[str, bytes] = {}
    for _, _, archive in seeds:  # warm up: the first fast-level decode compiles or loads the kernel
        decode_file(archive, None, WITH_REFERENCE)
    deadline = time.monotonic() + args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "case.lmgc", Path(tmp) / "out.safetensors"
        while time.monotonic() < deadline:
            raw, original, archive = rng.choice(seeds)
            cases += 1
            if rng.random() < 0.5:
                semantic += 1
                try:
                    semantic_mutation(rng, archive, path)
                except (LmgcError, OverflowError, struct.error):
                    continue  # not even writable (msgpack and the frame heads have fixed-width integers)
            else:
                path.write_bytes(mutate(rng, raw))
            problem = check_case(path, original, out)
            if problem is not None:
                findings.append(f"case {cases}: {problem}")
                continue
            if not out.exists():
                try:
                    decode_file(path, None, WITH_REFERENCE)
                except LmgcError as exc:
                    key = type(exc).__name__ + ": " + "".join(c for c in str(exc)[:40] if not c.isdigit())
                    kept.setdefault(key, path.read_bytes())
    if args.write_corpus:
        args.write_corpus.mkdir(parents=True, exist_ok=True)
        for old in args.write_corpus.glob("case*.lmgc"):
            old.unlink()
        items = sorted(kept.items())
        step = max(1, len(items) // args.corpus_size)
        for i, (_key, data) in enumerate(items[::step][: args.corpus_size]):
            (args.write_corpus / f"case{i:03d}.lmgc").write_bytes(data)
    print(
        f"{cases} cases ({semantic} semantic, CRCs recomputed) in {args.seconds:.0f} s: "
        f"{len(findings)} findings, {len(kept)} distinct errors"
    )
    for f in findings[:20]:
        print(f)
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
