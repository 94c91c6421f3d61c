"""The fast level's context-mixing codec (lmgc_format/cm/): exact, portable, independent of threads."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lmgc_format.cm import codec, fixed, kernel
from lmgc_format.cm.binary import BinaryDecoder, BinaryEncoder
from lmgc_format.container.constants import FAST_PROCEDURE, Codec
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import CorruptChunkError, UnsupportedError
from lmgc_format.inspect import describe_archive
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.tensors.plan import Window
from tests.conftest import ROOT, gradient_like, other_machine_env

DATA = Path(__file__).resolve().parent / "data"


def test_tables_are_pinned_and_consistent() -> None:
    squash, stretch, rate = fixed.tables()
    assert fixed.digest(squash, stretch, rate) == fixed.PINNED_SHA256
    assert (np.diff(squash) >= 0).all() and squash[0] >= 0 and squash[-1] <= 4095
    assert (np.diff(stretch) >= 0).all()
    # stretch inverts squash where squash is steep enough to tell d apart
    for d in range(-1024, 1025):
        assert abs(int(stretch[squash[d + 2047]]) - d) <= 3
    assert rate[0] == (2 << 16) // 3 and (np.diff(rate) <= 0).all()


def test_a_changed_table_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixed, "PINNED_SHA256", "0" * 64)
    fixed.tables.cache_clear()
    try:
        with pytest.raises(UnsupportedError, match="builds the context-mixing tables differently"):
            fixed.tables()
    finally:
        monkeypatch.undo()
        fixed.tables.cache_clear()


def _round_trip(data: bytes, windows: list[Window], sizes: list[int]) -> bytes:
    coded = codec.encode(windows, 0, data, sizes)
    assert coded is not None
    payload, bits = coded
    assert len(bits) == len(windows) and sum(bits) == 8 * len(payload)
    assert codec.decode(windows, 0, payload, len(data), sizes) == data
    return payload


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, "bf16"])
@pytest.mark.parametrize("shape", [(300,), (20, 17), (4, 3, 5, 5)])
def test_round_trip_every_dtype_and_shape(dtype: object, shape: tuple[int, ...]) -> None:
    x = gradient_like(shape, 3)
    t = x.to(torch.bfloat16) if dtype == "bf16" else torch.from_numpy(x.numpy().astype(dtype))
    data = t.contiguous().view(torch.uint8).numpy().tobytes()
    g = t.element_size()
    row = int(np.prod(shape[1:])) if len(shape) > 1 else 0
    # cut into three windows, as a plan does inside one tensor
    n = len(data) // g
    cuts = [0, n // 3, 2 * n // 3, n]
    windows = [Window(0, cuts[i] * g, cuts[i + 1] * g, g, cuts[i], row, -1) for i in range(3)]
    payload = _round_trip(data, windows, [g])
    assert len(payload) < len(data)


def test_special_values_and_odd_bytes_survive() -> None:
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3.4e38, 1.0] * 7, dtype=np.float32)
    data = x.tobytes()
    _round_trip(data, [Window(0, 0, len(data), 4, 0, 9, -1)], [4])
    constant = bytes(4096)
    payload = _round_trip(constant, [Window(0, 0, 4096, 4)], [4])
    assert len(payload) < 64  # 1,024 zero values (4 KB) cost next to nothing


def test_incompressible_data_is_refused_not_expanded() -> None:
    noise = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    assert codec.encode([Window(0, 0, 4000, 4)], 0, noise, [4]) is None


def test_rank_one_matrix_uses_the_fits_and_the_bias() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(64), rng.standard_normal(48)
    w = (np.outer(a, b) * 1e-3).astype(np.float32)
    bias = (a * 1e-3).astype(np.float32)
    data = bias.tobytes() + w.tobytes()
    sizes = [4, 4]
    as_matrix = [Window(0, 0, 256, 4), Window(1, 256, len(data), 4, 0, 48, 0)]
    flat = [Window(0, 0, 256, 4), Window(1, 256, len(data), 4, 0, 0, -1)]
    with_grid = len(_round_trip(data, as_matrix, sizes))
    without = len(_round_trip(data, flat, sizes))
    assert with_grid < 0.95 * without


def test_damaged_payload_is_caught() -> None:
    x = gradient_like((40, 30), 4).numpy().tobytes()
    windows = [Window(0, 0, len(x), 4, 0, 30, -1)]
    coded = codec.encode(windows, 0, x, [4])
    assert coded is not None
    payload = coded[0]
    with pytest.raises(CorruptChunkError):
        codec.decode(windows, 0, payload[:-5], len(x), [4])
    damaged = bytearray(payload)
    damaged[len(damaged) // 2] ^= 0x40
    try:
        out = codec.decode(windows, 0, bytes(damaged), len(x), [4])
    except CorruptChunkError:
        return
    assert out != x  # the archive's CRC and SHA-256 catch it


def test_compiled_kernel_equals_the_same_code_run_by_python() -> None:
    """numba's int64 arithmetic and Python's unbounded integers agree bit for bit: nothing overflows,
    wraps or is reassociated in the compiled kernel."""
    x = gradient_like((14, 9), 7).numpy()
    bias = x[:, 0].copy()
    data = bias.tobytes() + x.tobytes()
    windows = [Window(0, 0, 56, 4), Window(1, 56, 56 + 252, 4, 0, 9, 0), Window(1, 56 + 252, len(data), 4, 63, 9, 0)]
    table = codec.window_table(windows, 0, [4, 4])
    squash, stretch, rate = fixed.tables()
    params = np.array(codec.PARAMS, dtype=np.int64)
    cost_table = codec._cost_table()
    # A stream of its own (cm-fast-v1), one left open (cm-int-v2), one whose costs are reported.
    for cells, report in ((0, 0), (3, 0), (0, kernel.REPORT_CELLS)):
        outs = []
        for run in (kernel.run, kernel.run.py_func):
            out = np.zeros(len(data) + 64, dtype=np.uint8)
            ends = np.zeros(len(windows), dtype=np.int64)
            state, costs = np.zeros(cells, dtype=np.int64), np.zeros(report, dtype=np.int64)
            buf = np.frombuffer(data, np.uint8).copy()
            n = run(False, buf, out, table, squash, stretch, rate, params, ends, state, costs, cost_table)
            outs.append((out[:n].tobytes(), ends.tolist(), state.tolist(), costs.tolist()))
        assert outs[0] == outs[1]


def _fast_file(path: Path) -> Path:
    save_file(
        {
            "a.bias": gradient_like((64,), 1),
            "a.weight": gradient_like((64, 96), 2),
            "b.weight": gradient_like((32, 64), 3).to(torch.bfloat16),
            "steps": torch.arange(9, dtype=torch.int64),
        },
        str(path),
    )
    return path


def _payloads(archive: Path) -> list[tuple[int, bytes]]:
    with ArchiveReader(archive) as r:
        return [(r.index.chunks[i].codec, r.read_chunk(i)[1]) for i in range(len(r.plan))]


def test_fast_level_archive_is_the_same_with_any_thread_count(tmp_path: Path) -> None:
    src = _fast_file(tmp_path / "g.safetensors")
    chunks = []
    for threads in (1, 2, 3):
        arc = tmp_path / f"g{threads}.lmgc"
        encode_file(src, arc, EncodeOptions(level="fast", threads=threads))
        chunks.append(_payloads(arc))
        for decode_threads in (1, 2):
            out = tmp_path / f"out{threads}{decode_threads}.safetensors"
            decode_file(arc, out, DecodeOptions(fast_threads=decode_threads))
            assert out.read_bytes() == src.read_bytes()
    assert chunks[0] == chunks[1] == chunks[2]
    assert any(codec == Codec.CM_FAST2 for codec, _ in chunks[0])


def test_golden_fast_archive_decodes_everywhere(tmp_path: Path) -> None:
    """Integer arithmetic only: this archive decodes on every machine (no skip, no model)."""
    arc = DATA / "golden_fast.safetensors.lmgc"
    with ArchiveReader(arc) as r:
        assert r.version == (1, 3)
        assert r.header.layout.procedure == "cm-fast-v1" and r.header.model is None
        assert {f.kind for f in r.filters} == {"sum-first-axis-v1"}
        assert any(e.codec == Codec.CM_FAST for e in r.index.chunks)
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)
    assert out.read_bytes() == (DATA / "golden_fast.safetensors").read_bytes()
    assert describe_archive(arc)["portable"] is True
    assert describe_archive(DATA / "golden_top4.safetensors.lmgc")["portable"] is False


def test_golden_fast_archive_is_what_this_machine_writes(tmp_path: Path) -> None:
    """The encoder still writes the golden's cm-fast-v1 chunks byte for byte (a change to the procedure fails
    here). Which classical codec stores the plain chunks may change (lmgc 0.11 tries byte shuffle + zstd).
    The fast level writes cm-fast-v2 since lmgc 0.18 (test_fast_v2.py); this asks for cm-fast-v1."""
    arc = tmp_path / "again.lmgc"
    opts = EncodeOptions(level="fast", threads=1, fast_procedure=FAST_PROCEDURE)
    encode_file(DATA / "golden_fast.safetensors", arc, opts)
    now, then = _payloads(arc), _payloads(DATA / "golden_fast.safetensors.lmgc")
    assert len(now) == len(then)
    coded = [(a, b) for a, b in zip(now, then, strict=True) if b[0] == Codec.CM_FAST]
    assert coded and all(a == b for a, b in coded)


def test_fast_archive_decodes_as_another_machine(tmp_path: Path) -> None:
    """Encode normally; decode in a fresh process with SIMD dispatch forced down, one thread, a generic
    numba target (shared/tools/as-other-machine's settings): byte-exact."""
    src = _fast_file(tmp_path / "g.safetensors")
    arc = tmp_path / "g.lmgc"
    encode_file(src, arc, EncodeOptions(level="fast"))
    out = tmp_path / "out.safetensors"
    env = other_machine_env(tmp_path)
    code = (
        "import sys; from lmgc_format.pipeline.decoder import DecodeOptions, decode_file; "
        "decode_file(sys.argv[1], sys.argv[2], DecodeOptions(fast_threads=1))"
    )
    subprocess.run([sys.executable, "-c", code, str(arc), str(out)], check=True, env=env, cwd=ROOT, timeout=600)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()


def test_fast_level_never_imports_torch(tmp_path: Path) -> None:
    """The fast level is numpy and numba: compress and decompress in a fresh process never import torch
    (describing torch's runtime for a header that does not record it took ~1.6 s of every fast compress
    before lmgc 0.13.1)."""
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((64, 96), 4), "b": gradient_like((64,), 5)}, str(src))
    code = (
        "import sys; from lmgc_format.pipeline.encoder import EncodeOptions, encode_file; "
        "from lmgc_format.pipeline.decoder import decode_file; "
        "r = encode_file(sys.argv[1], sys.argv[2], EncodeOptions(level='fast')); "
        "decode_file(sys.argv[2], sys.argv[3]); "
        "print('torch' in sys.modules, r.archive_size < r.source_size, r.codecs)"
    )
    arc, out = tmp_path / "g.lmgc", tmp_path / "out.safetensors"
    result = subprocess.run(
        [sys.executable, "-c", code, str(src), str(arc), str(out)],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    torch_loaded, smaller, codecs = result.stdout.split(" ", 2)
    assert (torch_loaded, smaller) == ("False", "True"), result.stdout + result.stderr
    assert "cm-fast" in codecs, codecs
    assert out.read_bytes() == src.read_bytes()


def test_binary_coder_round_trips_digits_and_ends_in_one_byte() -> None:
    """cm/binary.py alone: digits of every kind of distribution (flat, near-certain, the rarest symbol coded)
    come back; the stream ends with one flush byte, and one with a byte more or less is caught (the chunk's
    CRC comes first in an archive: this is the stream's own consistency check)."""
    rng = np.random.default_rng(3)
    freqs = rng.integers(1, 5000, size=(600, 16))
    freqs[:200, 0] = (1 << 20) - 15  # near-certain rows (sums stay near 2**20, as the mixer's do)
    freqs[:200, 1:] = 1
    symbols = rng.integers(0, 16, size=600)
    symbols[:100] = 0
    enc = BinaryEncoder()
    enc.encode(symbols, freqs)
    x1 = enc.x1
    payload = enc.finish()
    assert payload[-1] == (x1 >> 24) + (1 if x1 & 0xFFFFFF else 0)
    dec = BinaryDecoder(payload)
    assert (dec.decode(freqs) == symbols).all()
    dec.check_end("test")
    longer = BinaryDecoder(payload + b"\x00")  # the same digits (a zero is what the decoder reads past the end)
    assert (longer.decode(freqs) == symbols).all()
    with pytest.raises(CorruptChunkError, match="decoded as"):
        longer.check_end("test")
    shorter = BinaryDecoder(payload[:-1])  # without its flush byte: other digits, or a stream read too far
    if (shorter.decode(freqs) == symbols).all():
        with pytest.raises(CorruptChunkError, match="decoded as"):
            shorter.check_end("test")


def test_kernel_leaves_its_coder_open_for_the_digits() -> None:
    """cm-int-v2's stream: the kernel codes bytes and stops without a flush, the Python coder goes on in the
    same stream; decoding follows the same path. The closed stream (cm-fast-v1) is unchanged by it."""
    rng = np.random.default_rng(4)
    data = bytes(rng.integers(58, 66, size=400).astype(np.uint8))
    windows = [Window(0, 0, 100, 1, 0, 0, -1), Window(1, 100, 400, 1, 0, 20, 0)]
    params = (20, 12000, 24, 6, 1)
    head, bits, x1, x2 = codec.encode_open(windows, 0, data, [1, 1], params)
    assert len(bits) == 2 and len(head) < len(data)
    freqs = rng.integers(1, 3000, size=(50, 16))
    symbols = rng.integers(0, 16, size=50)
    enc = BinaryEncoder(head, x1, x2)
    enc.encode(symbols, freqs)
    payload = enc.finish()
    assert payload.startswith(head)
    got, pos, (y1, y2, x) = codec.decode_open(windows, 0, payload, len(data), [1, 1], params)
    assert got == data and (y1, y2) == (x1, x2)
    dec = BinaryDecoder(payload, pos, y1, y2, x)
    assert (dec.decode(freqs) == symbols).all()
    dec.check_end("test")
    closed = codec.encode(windows, 0, data, [1, 1])
    assert closed is not None and codec.decode(windows, 0, closed[0], len(data), [1, 1]) == data


def test_byte_rank_bits_add_up_to_the_payload_and_leave_it_alone() -> None:
    """The report of where the bits go (corpus/bench_corpus.py): per byte rank, summing to the payload's
    length within the coder's few bytes, the top byte cheaper than the near-random low mantissa byte,
    and the payload itself the same as without the report."""
    x = gradient_like((64, 48), 8).numpy()
    data = x.tobytes()
    windows = [Window(0, 0, len(data), 4, 0, 48, -1)]
    bits = codec.byte_rank_bits(windows, 0, data, [4])
    coded = codec.encode(windows, 0, data, [4])
    assert coded is not None
    ranks = bits[:8]
    assert abs(ranks.sum() - 8 * len(coded[0])) < 8 * 8 and (ranks[4:] == 0).all()
    values = len(data) // 4
    assert ranks[0] / values < 4 < ranks[3] / values  # a fifth of the values are zeros: their low bytes are cheap
    # The sign and the exponent's last bit are parts of ranks 0 and 1; a random sign costs about a bit.
    assert 0 < bits[8] < ranks[0] and 0 < bits[9] < ranks[1]
    assert 0.6 < bits[8] / values < 1.05
    assert codec.encode(windows, 0, data, [4]) == coded
