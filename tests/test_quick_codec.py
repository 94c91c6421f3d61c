"""quick-v1 (cm/quick_codec.py, quick_fields.py, rans_kernel.py): the quick level's chunk codec."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lmgc_format.cm import quick_codec, quick_fields
from lmgc_format.cm import rans_kernel as rk
from lmgc_format.container.constants import MAJOR, MINOR, Codec
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import CorruptChunkError, LmgcError
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from tests.conftest import decode_as_other_machine, gradient_like

DATA = Path(__file__).resolve().parent / "data"
# The encoder's plane choices read this table: a change to it can change coded bits.
BIT_COST_SHA256 = "92066cfee31ade5df49eac49c17e70e3bf456d7be5490164f277c8d24e24b4bb"
_NUMPY = {
    "F32": np.float32, "F16": np.float16, "F64": np.float64, "I8": np.int8, "U8": np.uint8, "I16": np.int16,
    "U16": np.uint16, "I32": np.int32, "U32": np.uint32, "I64": np.int64, "U64": np.uint64, "BOOL": np.bool_,
}  # fmt: skip


def _values(dtype: str, n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if dtype == "BF16":
        return (
            torch.from_numpy((rng.standard_normal(n) * 1e-3).astype(np.float32))
            .bfloat16()
            .view(torch.int16)
            .numpy()
            .tobytes()
        )
    kind = np.dtype(_NUMPY[dtype])
    if kind.kind == "f":
        x = (rng.standard_normal(n) * 1e-3).astype(kind)
        x[rng.random(n) < 0.2] = 0
        return x.tobytes()
    if kind.kind == "b":
        return (rng.random(n) < 0.3).tobytes()
    return rng.integers(0, 256, n * kind.itemsize, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("dtype", sorted(quick_fields.FIELDS))
@pytest.mark.parametrize("n", [1, 2, 3, 257, 5000])
def test_round_trip_every_dtype(dtype: str, n: int) -> None:
    data = _values(dtype, n, n)
    payload = quick_codec.encode(data, dtype)
    assert quick_codec.decode(payload, dtype, len(data)) == data


@pytest.mark.parametrize("dtype", ["F32", "F16", "F64", "BF16"])
def test_every_bit_pattern_at_the_edges(dtype: str) -> None:
    """NaNs with payloads, infinities, -0, subnormals, the extremes: planes keep every bit."""
    size = quick_fields.FIELDS[dtype][0]
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, size * 3000, dtype=np.uint8)
    top = (1 << (8 * size)) - 1
    edges = [0, top, top >> 1, 1 << (8 * size - 1), 1, top - 1]  # 0, -NaN, NaN, -0, smallest subnormal, ...
    vals = raw.view(f"<u{size}").copy()
    vals[: len(edges)] = edges
    data = vals.tobytes()
    assert quick_codec.decode(quick_codec.encode(data, dtype), dtype, len(data)) == data


def test_a_gradient_codes_below_its_planes_stored() -> None:
    """Rows of their own scale (a batch gradient's rank-one structure): neighbours predict the exponent."""
    rng = np.random.default_rng(3)
    g = (rng.standard_normal((256, 256)) * 10 ** rng.uniform(-6, -2, (256, 1))).astype(np.float32).tobytes()
    payload = quick_codec.encode(g, "F32")
    assert len(payload) < 0.9 * len(g)
    modes: list[int] = []
    quick_codec.decode_run(payload, 1, "F32", len(g), modes)
    assert modes[0] == rk.KIND_HISTORY  # the exponent under the mean of the four before it
    assert quick_codec.STORED in modes[1:]  # the low mantissa byte is noise: stored


def test_bit_cost_table_is_pinned() -> None:
    assert quick_codec.table_digest() == hashlib.sha256(quick_codec.bit_cost().tobytes()).hexdigest()
    assert quick_codec.table_digest() == BIT_COST_SHA256


def test_compiled_kernel_is_the_python_one() -> None:
    """The numba kernels compute what their Python source says (so the spec in FORMAT.md is the code)."""
    rng = np.random.default_rng(4)
    syms = np.minimum(rng.geometric(0.3, 600), 40).astype(np.uint8) + 90
    for kind in (rk.KIND_ORDER0, rk.KIND_HISTORY, rk.KIND_EXPONENT):
        outs = []
        for contexts, encode in ((rk.contexts, rk.encode), (rk.contexts.py_func, rk.encode.py_func)):
            ctx = np.empty(len(syms), dtype=np.uint8)
            contexts(kind, syms, syms, 130, ctx)
            counts = np.zeros((rk.BINS[kind], 256), dtype=np.int64)
            rk.histogram(syms, ctx, counts)
            freqs = np.zeros_like(counts)
            rk.normalize(counts, freqs)
            words = np.empty(len(syms) + 2, dtype=np.uint16)
            start = encode(syms, ctx, freqs, words)
            outs.append(words[start:].tobytes())
        assert outs[0] == outs[1]


def test_normalize_sums_to_the_scale_and_keeps_every_symbol() -> None:
    counts = np.zeros((3, 256), dtype=np.int64)
    counts[0, :] = 1
    counts[0, 7] = 10**9  # 255 symbols forced up to frequency 1: the excess comes off the largest
    counts[1, 3] = 5  # one symbol: all of the scale
    freqs = np.zeros_like(counts)
    rk.normalize(counts, freqs)
    assert freqs[0].sum() == freqs[1].sum() == rk.PROB_SCALE and freqs[2].sum() == 0
    assert (freqs[0] >= 1).all() and freqs[1, 3] == rk.PROB_SCALE


@pytest.mark.parametrize("dtype", ["F32", "BF16", "I8"])
def test_damaged_payloads_are_refused_never_a_crash(dtype: str) -> None:
    data = _values(dtype, 3000, 9)
    payload = quick_codec.encode(data, dtype)
    for cut in (0, 1, 2, len(payload) // 2, len(payload) - 1):
        with pytest.raises(CorruptChunkError):
            quick_codec.decode(payload[:cut], dtype, len(data))
    with pytest.raises(CorruptChunkError, match="after its last plane"):
        quick_codec.decode(payload + b"\0", dtype, len(data))
    with pytest.raises(CorruptChunkError, match="unknown version"):
        quick_codec.decode(b"\x02" + payload[1:], dtype, len(data))
    rng = np.random.default_rng(0)
    for _ in range(200):  # a flipped byte: refused, or bytes of the right length (the SHA-256 then refuses)
        bad = bytearray(payload)
        bad[int(rng.integers(len(bad)))] ^= int(rng.integers(1, 256))
        try:
            assert len(quick_codec.decode(bytes(bad), dtype, len(data))) == len(data)
        except CorruptChunkError:
            pass


def test_a_mode_the_plane_does_not_take_is_refused() -> None:
    data = _values("I8", 500, 2)
    payload = bytearray(quick_codec.encode(data, "I8"))
    payload[2] = rk.KIND_HISTORY  # version, top (0), then plane 0's mode: integers take order 0 or stored
    with pytest.raises(CorruptChunkError, match="mode 1"):
        quick_codec.decode(bytes(payload), "I8", len(data))


def test_golden_quick_decodes_and_is_what_this_machine_writes(tmp_path: Path) -> None:
    """Format 1.7's golden: every dtype, every plane mode. Integer arithmetic only: it never skips."""
    arc = DATA / "golden_quick.safetensors.lmgc"
    source = DATA / "golden_quick.safetensors"
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)
    assert out.read_bytes() == source.read_bytes()
    again = tmp_path / "again.lmgc"
    encode_file(source, again, EncodeOptions(level="quick", threads=1))
    chunks, modes = [], []
    for path in (arc, again):
        with ArchiveReader(path) as r:
            assert r.version == ((1, 7) if path == arc else (MAJOR, MINOR)) and r.header.layout.procedure == "quick-v1"
            chunks.append([(e.codec, r.read_chunk(i)[1]) for i, e in enumerate(r.index.chunks)])
            dtypes = {t.dtype for t in r.layout.tensors}
            for i, e in enumerate(r.index.chunks):
                if e.codec == Codec.QUICK:
                    quick_codec.decode_chunk(r.plan[i], r.layout, r.read_chunk(i)[1], modes)
    assert chunks[0] == chunks[1]
    assert dtypes == set(quick_fields.FIELDS)
    assert set(modes) == {rk.KIND_ORDER0, rk.KIND_HISTORY, rk.KIND_EXPONENT, quick_codec.STORED}


def test_golden_quick_decodes_as_another_machine(tmp_path: Path) -> None:
    """Generic numba target, SIMD paths forced down, one thread (shared/tools/as-other-machine's settings)."""
    back = decode_as_other_machine(DATA / "golden_quick.safetensors.lmgc", tmp_path)
    assert back == (DATA / "golden_quick.safetensors").read_bytes()


def test_quick_level_round_trips_a_mixed_file(tmp_path: Path) -> None:
    """Windows of several dtypes in one chunk are coded run by run; integers and gaps too."""
    g = gradient_like((128, 96), 5)
    tensors = {
        "a": g,
        "b": g.bfloat16(),
        "c": g[:20].half(),
        "i": torch.arange(300, dtype=torch.int32),
        "d": g[:3].clone(),
    }
    src = tmp_path / "m.safetensors"
    save_file(tensors, str(src), metadata={"step": "3"})
    arc = tmp_path / "m.lmgc"
    result = encode_file(src, arc, EncodeOptions(level="quick"))
    assert result.codecs.get("quick-v1", 0) >= 1 and result.archive_size < src.stat().st_size
    back = tmp_path / "back.safetensors"
    decode_file(arc, back)
    assert back.read_bytes() == src.read_bytes()


def test_quick_level_codes_against_a_reference(tmp_path: Path) -> None:
    """Weights one step apart: stored as differences, smaller than alone, decoded with the reference only."""
    rng = np.random.default_rng(6)
    w0 = (rng.standard_normal((256, 256)) * 0.05).astype(np.float32)
    w1 = w0 - (np.sign(rng.standard_normal(w0.shape)) * 1e-4).astype(np.float32)
    old, new = tmp_path / "old.safetensors", tmp_path / "new.safetensors"
    save_file({"w": torch.from_numpy(w0), "g": gradient_like((64, 64), 1)}, str(old))
    save_file({"w": torch.from_numpy(w1), "g": gradient_like((64, 64), 2)}, str(new))
    alone, delta = tmp_path / "alone.lmgc", tmp_path / "delta.lmgc"
    encode_file(new, alone, EncodeOptions(level="quick"))
    encode_file(new, delta, EncodeOptions(level="quick", reference=str(old)))
    assert delta.stat().st_size < 0.8 * alone.stat().st_size
    with ArchiveReader(delta) as r:
        assert r.header.layout.procedure == "quick-v1" and r.header.reference_tensors == (1,)  # w, not g
    back = tmp_path / "back.safetensors"
    decode_file(delta, back, DecodeOptions(reference=str(old)))
    assert back.read_bytes() == new.read_bytes()
    with pytest.raises(LmgcError, match="reference"):
        decode_file(delta, tmp_path / "never.safetensors")
    assert not (tmp_path / "never.safetensors").exists()


def test_a_damaged_chunk_is_named_once_when_threads_read_it(tmp_path: Path) -> None:
    """The decoder's threads read and CRC-check their own chunks: the error names the chunk once, and
    nothing is written."""
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((2048, 1024), 3)}, str(src))
    arc = tmp_path / "g.lmgc"
    encode_file(src, arc, EncodeOptions(level="quick"))
    with ArchiveReader(arc) as r:
        last = len(r.index.chunks) - 1
        at, name = r.payload_offset(last), r.describe_chunk(last)
    damaged = bytearray(arc.read_bytes())
    damaged[at + 100] ^= 1
    bad = tmp_path / "bad.lmgc"
    bad.write_bytes(bytes(damaged))
    out = tmp_path / "out.safetensors"
    with pytest.raises(CorruptChunkError, match=r"is damaged \(CRC mismatch\)") as caught:
        decode_file(bad, out, DecodeOptions(fast_threads=2))
    assert last > 0 and str(caught.value).count(name) == 1
    assert not out.exists()
