"""cm-fast-v2 (cm/fast_v2.py, planes.py, kernel.py's SECOND_BITS_COLUMN): the fast level's chunk codec since
format 1.8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lmgc_format.cm import codec as cm_codec
from lmgc_format.cm import fast_v2
from lmgc_format.cm import rans_kernel as rk
from lmgc_format.container.constants import FAST_PROCEDURE, Codec
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import CorruptChunkError, LmgcError
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encode_fast import model_free_options
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.pipeline.file_plan import plan_for
from lmgc_format.tensors.plan import ChunkPlan
from lmgc_format.tensors.source import SourceLayout, read_layout
from tests.conftest import decode_as_other_machine, gradient_like

DATA = Path(__file__).resolve().parent / "data"


def _chunks(path: Path) -> list[tuple[int, bytes]]:
    with ArchiveReader(path) as r:
        return [(e.codec, r.read_chunk(i)[1]) for i, e in enumerate(r.index.chunks)]


def test_golden_fast2_decodes_and_is_what_this_machine_writes(tmp_path: Path) -> None:
    """Format 1.8's golden: fp64, fp32, bf16 and fp16 runs in one chunk, every plane mode. Integer arithmetic
    only: it never skips."""
    arc = DATA / "golden_fast2.safetensors.lmgc"
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)
    assert out.read_bytes() == (DATA / "golden_fast.safetensors").read_bytes()
    again = tmp_path / "again.lmgc"
    encode_file(DATA / "golden_fast.safetensors", again, EncodeOptions(level="fast", threads=1))
    assert _chunks(again) == _chunks(arc)
    modes: list[int] = []
    with ArchiveReader(arc) as r:
        assert r.version == (1, 8) and r.header.layout.procedure == "cm-fast-v2"
        for i, e in enumerate(r.index.chunks):
            if e.codec == Codec.CM_FAST2:
                fast_v2.decode_chunk(r.plan[i], r.layout, r.read_chunk(i)[1], modes)
    assert set(modes) == {rk.KIND_ORDER0, rk.KIND_EXPONENT, fast_v2.planes.STORED}


def test_golden_fast2_decodes_as_another_machine(tmp_path: Path) -> None:
    """Generic numba target, SIMD paths forced down, one thread (shared/tools/as-other-machine's settings)."""
    back = decode_as_other_machine(DATA / "golden_fast2.safetensors.lmgc", tmp_path)
    assert back == (DATA / "golden_fast.safetensors").read_bytes()


def test_the_fast_procedure_option_takes_the_two_procedures() -> None:
    """(test_cm.py checks that cm-fast-v1 is still written byte for byte when asked for.)"""
    with pytest.raises(LmgcError, match="procedure"):
        EncodeOptions(fast_procedure="cm-fast-v9").check()


def _file(tmp_path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    src = tmp_path / "g.safetensors"
    save_file(tensors, str(src))
    return src


def _first_chunk(src: Path) -> tuple[ChunkPlan, SourceLayout, bytes]:
    """The fast level's first chunk of ``src``, its layout and the bytes its codecs see (filtered)."""
    layout = read_layout(src)
    plan, forward, _ = plan_for(src, layout, model_free_options(EncodeOptions(level="fast")))
    chunk = plan[0]
    raw = src.read_bytes()[layout.data_offset + chunk.begin : layout.data_offset + chunk.begin + chunk.nbytes]
    try:
        return chunk, layout, forward.apply(chunk.begin, raw)
    finally:
        forward.close()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_round_trip_and_size_against_cm_fast_v1(tmp_path: Path, dtype: torch.dtype) -> None:
    """A gradient of each float dtype (zeros among its values) round-trips, at most 0.5 % above cm-fast-v1's
    payload (measured on real gradients: +0.15 % fp32, -0.06 % bf16)."""
    g = gradient_like((256, 192), 11).to(dtype)
    g[::7] = 0
    src = _file(tmp_path, {"w": g, "b": g[0].clone()})
    sizes = {}
    for name, procedure in (("v2", "cm-fast-v2"), ("v1", FAST_PROCEDURE)):
        arc = tmp_path / f"{name}.lmgc"
        result = encode_file(src, arc, EncodeOptions(level="fast", fast_procedure=procedure))
        assert result.codecs.get(procedure) == 1
        sizes[name] = result.coded_bytes
        back = tmp_path / f"{name}.safetensors"
        decode_file(arc, back)
        assert back.read_bytes() == src.read_bytes()
    assert sizes["v2"] <= sizes["v1"] * 1.005


def test_window_bits_add_up_to_the_payload(tmp_path: Path) -> None:
    """Each window's bits (the per-layer report) are its model bits and its share of its run's planes."""
    g = gradient_like((64, 64), 3)
    chunk, layout, data = _first_chunk(_file(tmp_path, {"a": g, "b": g.bfloat16(), "c": g[:9].clone()}))
    payload, bits = fast_v2.encode_chunk(chunk, layout, data)  # type: ignore[misc]
    assert len(bits) == len(chunk.windows) and all(b > 0 for b in bits)
    assert abs(sum(bits) - 8 * len(payload)) < 8 * 8  # the varint of the stream's length is nobody's
    assert fast_v2.decode_chunk(chunk, layout, payload) == data


def test_damaged_payloads_are_refused_never_misread(tmp_path: Path) -> None:
    """Random byte flips: a CorruptChunkError, or (a flip the stream cannot see) bytes; never a crash."""
    g = gradient_like((96, 80), 4)
    chunk, layout, data = _first_chunk(_file(tmp_path, {"a": g, "h": g.half()}))
    payload = fast_v2.encode_chunk(chunk, layout, data)[0]  # type: ignore[index]
    rng = np.random.default_rng(0)
    refused = 0
    for _ in range(200):
        bad = bytearray(payload)
        bad[int(rng.integers(len(bad)))] ^= int(rng.integers(1, 256))
        try:
            out = fast_v2.decode_chunk(chunk, layout, bytes(bad))
        except CorruptChunkError:
            refused += 1
            continue
        assert len(out) == chunk.nbytes
    assert refused >= 40  # (a flip inside the model stream may decode to other bytes: the CRC-32 catches those)
    for cut in (0, 1, 5, len(payload) // 2, len(payload) - 1):
        with pytest.raises(CorruptChunkError):
            fast_v2.decode_chunk(chunk, layout, payload[:cut])
    with pytest.raises(CorruptChunkError, match="after its last plane"):
        fast_v2.decode_chunk(chunk, layout, payload + b"\0")


def test_the_kernel_stops_at_the_second_bits() -> None:
    """With 2 second bits the kernel leaves the bits under a value's top ten as zeros when it decodes."""
    from lmgc_format.tensors.plan import Window

    data = gradient_like((32, 32), 9).numpy().tobytes()
    windows = [Window(0, 0, len(data), 4, 0, 32, -1)]
    buf = np.frombuffer(data, dtype=np.uint8).copy()
    out = np.empty(len(data) + 64, dtype=np.uint8)
    n, _ = cm_codec.run_kernel(False, buf, out, windows, 0, [4], second_bits=[fast_v2.SECOND_BITS["F32"]])
    back = np.zeros(len(data), dtype=np.uint8)
    used, _ = cm_codec.run_kernel(True, back, out[:n].copy(), windows, 0, [4], second_bits=[fast_v2.SECOND_BITS["F32"]])
    assert used == n
    want = np.frombuffer(data, dtype="<u4") & np.uint32(0xFFC00000)
    assert np.array_equal(back.view("<u4"), want)


def test_decoding_with_threads_gives_the_same_bytes(tmp_path: Path) -> None:
    g = gradient_like((512, 512), 8)  # several chunks
    src = _file(tmp_path, {"w": g, "v": g.bfloat16()})
    arc = tmp_path / "g.lmgc"
    encode_file(src, arc, EncodeOptions(level="fast", threads=2))
    for threads in (1, 2):
        back = tmp_path / f"b{threads}.safetensors"
        decode_file(arc, back, DecodeOptions(fast_threads=threads))
        assert back.read_bytes() == src.read_bytes()
