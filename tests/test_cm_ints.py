"""cm-ints-v1: integer tensors (quantized values, sorted indices, packed bits) coded by the compiled decision
model, exact on every machine; its golden never skips."""

from __future__ import annotations

import hashlib
import lzma
from pathlib import Path

import numpy as np
import pytest
import torch
import zstandard
from safetensors.torch import save_file

from lmgc_format.cm import bits_kernel, fixed, ints_codec, ints_kernel
from lmgc_format.container.constants import Codec
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import CorruptChunkError
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from tests.conftest import decode_as_other_machine, gradient_like

DATA = Path(__file__).resolve().parent / "data"
I64 = np.iinfo(np.int64)


def _round_trip(a: np.ndarray, dtype: str, shape: tuple[int, ...] | None = None, first: int = 0) -> bytes | None:
    shape = a.shape if shape is None else shape
    payload = ints_codec.encode(a.tobytes(), dtype, shape, first)
    if payload is not None:
        assert ints_codec.decode(payload, dtype, shape, first, a.nbytes) == a.tobytes()
        assert len(payload) < a.nbytes
    return payload


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (np.array([I64.min, -1, 0, 1, I64.max] * 4, dtype="<i8"), "I64"),
        (np.array([0, 1, 2**63, 2**64 - 1] * 5, dtype="<u8"), "U64"),
        (np.arange(-128, 128, dtype=np.int8).repeat(3), "I8"),
        (np.arange(256, dtype=np.uint8).repeat(3), "U8"),
        (np.array([-32768, 32767, 0, 5] * 20, dtype="<i2"), "I16"),
        (np.array([0, 65535, 1] * 20, dtype="<u2"), "U16"),
        (np.array([-(2**31), 2**31 - 1, 7] * 20, dtype="<i4"), "I32"),
        (np.array([0, 2**32 - 1, 3] * 20, dtype="<u4"), "U32"),
        (np.array([0, 1, 1, 0] * 40, dtype=np.uint8), "BOOL"),
    ],
)
def test_extremes_of_every_dtype_round_trip(values: np.ndarray, dtype: str) -> None:
    for shape in ((values.size,), (values.size // 4, 4)):
        payload = _round_trip(values, dtype, shape)
        assert payload is not None, dtype


def test_sorted_indices_code_as_gaps_and_others_do_not() -> None:
    rng = np.random.default_rng(1)
    idx = np.sort(rng.choice(1 << 24, 4000, replace=False)).astype(np.int64)
    gaps = _round_trip(idx, "I64")
    assert gaps is not None and gaps[0] == ints_codec.MODE_GAPS
    assert len(gaps) < 0.8 * len(zstandard.ZstdCompressor(level=22).compress(idx.tobytes()))
    repeated = np.repeat(idx[:500], 2)  # a repeated index: gaps of 0
    assert _round_trip(repeated, "I64")[0] == ints_codec.MODE_GAPS  # type: ignore[index]
    assert _round_trip(idx[::-1].copy(), "I64")[0] == ints_codec.MODE_VALUES  # type: ignore[index]
    # Sorted, but a gap would not fit in int64: coded as values, still exact.
    wide = np.array([I64.min, -5, 0, I64.max] * 8, dtype=np.int64)
    wide.sort()
    assert _round_trip(wide, "I64")[0] == ints_codec.MODE_VALUES  # type: ignore[index]


def test_small_and_shapeless_tensors() -> None:
    assert ints_codec.encode(b"", "I32", (0, 3), 0) is None
    assert ints_codec.encode(np.int8(-7).tobytes(), "I8", (), 0) is None  # one byte: nothing to win
    zeros = np.zeros((40, 50), dtype=np.int16)
    assert len(_round_trip(zeros, "I16") or b"x" * 9999) < 16


def test_a_chunk_in_the_middle_of_a_matrix_knows_its_column() -> None:
    """``first`` places the chunk's first value at its column; decoding with another ``first`` must not give
    the same values back (the grid is part of the procedure, derived on both sides)."""
    x = np.rint(gradient_like((30, 17), 3).numpy() * 3000).astype(np.int8)
    part = x.reshape(-1)[5 * 17 + 4 :]
    payload = ints_codec.encode(part.tobytes(), "I8", x.shape, 5 * 17 + 4)
    assert payload is not None
    assert ints_codec.decode(payload, "I8", x.shape, 5 * 17 + 4, part.nbytes) == part.tobytes()
    with pytest.raises(CorruptChunkError):
        wrong = ints_codec.decode(payload, "I8", x.shape, 0, part.nbytes)
        assert wrong != part.tobytes()
        raise CorruptChunkError("decoded other values")


def test_packed_signs_of_a_rank_one_matrix_code_below_the_classical_codecs() -> None:
    rng = np.random.default_rng(2)
    rows, cols = np.sign(rng.standard_normal(300)), np.sign(rng.standard_normal(256))
    signs = np.outer(rows, cols) * np.where(rng.random((300, 256)) < 0.05, -1, 1)  # 5 % of signs flipped
    packed = np.packbits(signs.reshape(-1) >= 0)
    payload = _round_trip(packed, "U8")
    assert payload is not None and payload[0] == ints_codec.MODE_BITS
    classical = min(len(lzma.compress(packed.tobytes(), preset=9)), len(zstandard.compress(packed.tobytes(), 19)))
    assert len(payload) < 0.8 * classical


def test_rows_equal_up_to_sign_cost_little() -> None:
    """A rank-one gradient quantized per row: every row is the same values up to its sign."""
    rng = np.random.default_rng(3)
    row = rng.integers(-127, 128, 192)
    matrix = (np.outer(np.where(rng.random(192) < 0.5, 1, -1), row)).astype(np.int8)
    payload = _round_trip(matrix, "I8")
    assert payload is not None and len(payload) < 2 * 192 + 100


def test_incompressible_values_are_refused_not_expanded() -> None:
    noise = np.random.default_rng(4).integers(0, 256, 4000, dtype=np.uint8)
    assert ints_codec.encode(noise.tobytes(), "U8", (4000,), 0) is None


@pytest.mark.parametrize("damage", ["mode", "truncate", "flip", "extend"])
def test_damaged_payload_is_an_error_or_other_bytes_never_a_crash(damage: str) -> None:
    x = np.rint(gradient_like((40, 40), 5).numpy() * 5000).astype(np.int8)
    payload = bytearray(ints_codec.encode(x.tobytes(), "I8", x.shape, 0) or b"")
    if damage == "mode":
        payload[0] = 9
    elif damage == "truncate":
        del payload[len(payload) // 2 :]
    elif damage == "flip":
        payload[len(payload) // 3] ^= 0x40
    else:
        payload += b"\x00\x01"
    try:
        out = ints_codec.decode(bytes(payload), "I8", x.shape, 0, x.nbytes)
    except CorruptChunkError:
        return
    assert out != x.tobytes() and len(out) == x.nbytes  # the chunk's CRC is what catches this in an archive


def test_compiled_kernels_equal_the_same_code_run_by_python() -> None:
    """numba's int64 arithmetic and Python's unbounded integers agree bit for bit in both kernels."""
    squash, stretch, rate = fixed.tables()
    params = np.array(ints_codec.PARAMS, dtype=np.int64)
    grid_values = np.rint(gradient_like((12, 10), 6).numpy().reshape(-1) * 4000).astype(np.int64)
    vals = np.concatenate([grid_values, np.array([I64.min, I64.max, 0, -1], dtype=np.int64)])
    outs = []
    for run in (ints_kernel.run, ints_kernel.run.py_func):
        out = np.zeros(4096, dtype=np.uint8)
        n = run(False, vals.copy(), out, 10, 3, True, squash, stretch, rate, params)
        outs.append(out[:n].tobytes())
    assert outs[0] == outs[1]
    bits = np.packbits(np.random.default_rng(7).random(800) < 0.3)
    outs = []
    for run in (bits_kernel.run_bits, bits_kernel.run_bits.py_func):
        out = np.zeros(4096, dtype=np.uint8)
        n = run(False, bits.copy(), out, 40, squash, stretch, rate, params)
        outs.append(out[:n].tobytes())
    assert outs[0] == outs[1]


def _quant_file(path: Path) -> Path:
    g = gradient_like((96, 64), 8)
    scale = g.abs().amax(dim=1, keepdim=True) / 127
    save_file(
        {
            "w.q": torch.round(g / scale).to(torch.int8),
            "w.scale": scale.reshape(-1),
            "w.signs": torch.from_numpy(np.packbits(g.reshape(-1).numpy() >= 0)),
            "w.idx": torch.sort(torch.topk(g.abs().reshape(-1), 60).indices).values,
        },
        str(path),
    )
    return path


def test_fast_level_codes_integer_tensors_and_is_the_same_with_any_thread_count(tmp_path: Path) -> None:
    src = _quant_file(tmp_path / "q.safetensors")
    seen = []
    for threads in (1, 2):
        arc = tmp_path / f"q{threads}.lmgc"
        encode_file(src, arc, EncodeOptions(level="fast", threads=threads))
        with ArchiveReader(arc) as r:
            seen.append([(e.codec, r.read_chunk(i)[1]) for i, e in enumerate(r.index.chunks)])
        for decode_threads in (1, 2):
            out = tmp_path / f"out{threads}{decode_threads}.safetensors"
            decode_file(arc, out, DecodeOptions(fast_threads=decode_threads))
            assert out.read_bytes() == src.read_bytes()
    assert seen[0] == seen[1]
    assert sum(codec == Codec.CM_INTS for codec, _ in seen[0]) == 3


def test_golden_quant_archive_decodes_everywhere(tmp_path: Path) -> None:
    """Integer arithmetic only: this archive decodes on every machine (no skip, no model)."""
    arc = DATA / "golden_quant.safetensors.lmgc"
    with ArchiveReader(arc) as r:
        assert r.version == (1, 5)
        modes = {r.read_chunk(i)[1][0] for i, e in enumerate(r.index.chunks) if e.codec == Codec.CM_INTS}
    assert modes == {ints_codec.MODE_VALUES, ints_codec.MODE_GAPS, ints_codec.MODE_BITS, ints_codec.MODE_FLOATS}
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)
    assert out.read_bytes() == (DATA / "golden_quant.safetensors").read_bytes()


def test_golden_quant_archive_is_what_this_machine_writes(tmp_path: Path) -> None:
    arc = tmp_path / "again.lmgc"
    encode_file(DATA / "golden_quant.safetensors", arc, EncodeOptions(level="fast", threads=1))
    with ArchiveReader(arc) as now, ArchiveReader(DATA / "golden_quant.safetensors.lmgc") as then:
        assert [e.codec for e in now.index.chunks] == [e.codec for e in then.index.chunks]
        for i in range(len(now.plan)):
            assert now.read_chunk(i)[1] == then.read_chunk(i)[1], i


def test_golden_quant_decodes_as_another_machine(tmp_path: Path) -> None:
    back = decode_as_other_machine(DATA / "golden_quant.safetensors.lmgc", tmp_path)
    want = (DATA / "golden_quant.safetensors").read_bytes()
    assert hashlib.sha256(back).digest() == hashlib.sha256(want).digest()


def test_a_float_chunk_named_cm_ints_without_its_mode_is_a_damaged_chunk(tmp_path: Path) -> None:
    """cm-ints-v1 codes a float chunk only in mode 3; a dense float chunk relabelled cm-ints-v1 (its payload
    the fast level's) is named as damaged, and nothing is written."""
    from tests.conformance import index_of, with_index

    src = tmp_path / "f.safetensors"
    save_file({"a": gradient_like((64, 64), 9), "n": torch.arange(500, dtype=torch.int32)}, str(src))
    arc = tmp_path / "f.lmgc"
    encode_file(src, arc, EncodeOptions(level="fast"))
    index = index_of(arc.read_bytes())
    flat = index["c"]  # (codec, payload length, crc, model bits) per chunk, in plan order
    with ArchiveReader(arc) as r:
        float_chunk = next(i for i, plan in enumerate(r.plan) if plan.lm)
        assert r.index.chunks[float_chunk].codec == Codec.CM_FAST2
    flat[4 * float_chunk] = Codec.CM_INTS
    flat[4 * float_chunk + 3] = 0  # the fast level's model bits would be refused on opening (strict.py)
    bad = tmp_path / "bad.lmgc"
    bad.write_bytes(with_index(arc.read_bytes(), index))
    out = tmp_path / "out.safetensors"
    with pytest.raises(CorruptChunkError, match="chunk 0"):
        decode_file(bad, out)
    assert not out.exists()


def test_mostly_zero_floats_code_as_integers(tmp_path: Path) -> None:
    """A top-k gradient written dense (99 % exact zeros): the float chunk is coded as integers (mode 3) when
    that is smaller than the fast level's float model, and comes back byte for byte."""
    from lmgc_format.cm import codec as cm_codec

    g = np.random.default_rng(11).standard_normal(32768).astype(np.float32) * 1e-3
    dense = np.zeros_like(g)
    keep = np.argsort(-np.abs(g))[: g.size // 100]
    dense[keep] = g[keep]
    src = tmp_path / "d.safetensors"
    save_file({"w": torch.from_numpy(dense.reshape(256, 128))}, str(src))
    arc = tmp_path / "d.lmgc"
    encode_file(src, arc, EncodeOptions(level="fast"))
    with ArchiveReader(arc) as r:
        plan, entry = r.plan[0], r.index.chunks[0]
        payload = r.read_chunk(0)[1]
    floats = cm_codec.encode(plan.windows, plan.begin, dense.tobytes(), [4])
    assert floats is not None
    assert entry.codec == Codec.CM_INTS and payload[0] == ints_codec.MODE_FLOATS
    assert len(payload) < len(floats[0])
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)
    assert out.read_bytes() == src.read_bytes()
    half = dense.copy()
    half[: half.size // 2] = 1.0  # under half zeros: not tried
    assert ints_codec.encode_floats(plan, r.layout, half.tobytes()) is None


def test_inspect_names_each_tensors_representation() -> None:
    from lmgc_format.inspect import describe_archive

    info = describe_archive(DATA / "golden_quant.safetensors.lmgc")
    kinds = {t["name"]: t["representation"] for t in info["tensors"]}
    assert kinds["fc.q"] == kinds["fc.qsgd"] == "quantized values"
    assert kinds["fc.idx"] == kinds["fc.idx32"] == "sorted indices"
    assert kinds["fc.signs"] == "packed bits"
    assert kinds["big.topk"] == "sparse floats"
    assert kinds["fc.scale"] == "scales" and kinds["fc.val"] == "floats"
    per = {t["name"]: t for t in info["tensors"]}
    assert per["fc.qsgd"]["bits_per_value"] == per["fc.qsgd"]["bits_per_byte"]  # one byte a value
    assert per["fc.idx"]["bits_per_value"] == 8 * per["fc.idx"]["bits_per_byte"]


def test_rows_longer_than_the_cap_code_without_a_grid() -> None:
    """A (2, 2**20 + 1) tensor keeps no per-column counts (three int64 a column would be 24 MB here, and
    gigabytes for a longer row): coded as a vector, exactly."""
    assert ints_codec.grid((2, ints_codec.MAX_ROW + 1), 5) == (0, 0)
    assert ints_codec.grid((3, ints_codec.MAX_ROW), 5) == (ints_codec.MAX_ROW, 5)
    wide = np.zeros((2, ints_codec.MAX_ROW + 1), dtype=np.int8)
    wide[1, ::1000] = 3
    assert _round_trip(wide, "I8") is not None
