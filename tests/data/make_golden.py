"""Make the golden archives (only when the byte format changes on purpose: bump the version).

python -m tests.data.make_golden          # writes golden_engine, golden_lockstep, golden_mix, golden_top,
                                          # golden_top2, golden_top3 (+ its source golden_grid),
                                          # golden_filters (+ its source golden_head), golden_top4
                                          # + golden_floats.json
python -m tests.data.make_golden NAME...  # writes only those (this machine's logits must match the record)
python -m tests.data.make_golden golden_fast.safetensors.lmgc
                                          # the fast level's golden (+ its source golden_fast.safetensors):
                                          # integer arithmetic only, so it decodes on every machine
python -m tests.data.make_golden golden_int8_v2.safetensors.lmgc
                                          # the portable LM procedure (today's: cm-int-v2) over
                                          # golden_fast.safetensors: integer arithmetic only, so it decodes
                                          # on every machine (golden_int8, its cm-int-v1, is frozen)
python -m tests.data.make_golden golden_quant.safetensors.lmgc
                                          # format 1.5: cm-ints-v1 over golden_quant.safetensors (quantized
                                          # values, index gaps, packed signs, integer edge cases)
python -m tests.data.make_golden golden_reference.safetensors.lmgc
                                          # format 1.6: golden_reference.safetensors coded against
                                          # golden_reference_ref.safetensors (weights one step apart as differences,
                                          # a gradient not, a tensor the reference lacks)
python -m tests.data.make_golden golden_fast2.safetensors.lmgc
                                          # format 1.8: the fast level (cm-fast-v2) over golden_fast.safetensors
python -m tests.data.make_golden golden_quick.safetensors.lmgc
                                          # format 1.7: the quick level (quick-v1) over golden_quick.safetensors
                                          # (floats of every width with edge values, integers of every width)
python -m tests.data.make_golden golden_compact.safetensors.lmgc
                                          # format 1.4: the compact layout (golden_fast.safetensors at the
                                          # fast level) and a stored archive (golden_stored.safetensors)

The 1.0 goldens (golden_ints, golden_tiny) and the first 1.1 golden (golden_shuffle) are frozen:
``make_v1_0`` and ``make_v1_1`` are kept for the record only (run today they would write files
that name today's version and engine).

An LM golden decodes only on a machine that computes the tiny model's logits bit for bit as the
machine that wrote it (golden_tiny, written on 2026-11-25 on an AMD EPYC host, does not decode
on the Intel Xeon hosts of 2026-11-26). golden_floats.json records a fingerprint of those
logits per procedure, taken when the goldens were written; test_golden.py decodes the LM
goldens strictly where the fingerprint matches and skips, saying why, where it does not.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from lmgc_format.container.constants import FAST_PROCEDURE
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from tests.conftest import gradient_like
from tests.tiny_model import make_tiny_model

HERE = Path(__file__).resolve().parent
GOLDEN_TINY_OPTIONS = {"scheme": "comma", "window_bytes": 32, "batch": 3, "fallback": False}


def make_v1_0() -> None:
    ints = HERE / "golden_ints.safetensors"
    save_file({"counts": torch.arange(64, dtype=torch.int32), "flags": torch.tensor([True, False])}, str(ints))
    encode_file(ints, HERE / "golden_ints.safetensors.lmgc", EncodeOptions(), overwrite=True)
    floats = HERE / "golden_tiny.safetensors"
    save_file(
        {"w": gradient_like((4, 6), 11), "b": gradient_like((4,), 12, torch.bfloat16), "n": torch.arange(3)},
        str(floats),
        metadata={"made_by": "tests/data/make_golden.py"},
    )
    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp), seed=0)
        opts = EncodeOptions(model=str(model), **GOLDEN_TINY_OPTIONS)  # type: ignore[arg-type]
        encode_file(floats, HERE / "golden_tiny.safetensors.lmgc", opts, overwrite=True)


def make_v1_1() -> None:
    """Dense float tensors: the shuffle+zstd codecs of format 1.1 win their chunks."""
    dense = HERE / "golden_shuffle.safetensors"
    rng = torch.Generator().manual_seed(21)
    save_file(
        {
            "w": (torch.randn(24, 16, generator=rng) * 1e-3).contiguous(),
            "h": (torch.randn(40, generator=rng) * 1e-2).to(torch.float16),
            "i": torch.arange(20, dtype=torch.int64),
        },
        str(dense),
    )
    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp), seed=0)
        opts = EncodeOptions(model=str(model), scheme="comma", window_bytes=256, batch=4)
        encode_file(dense, HERE / "golden_shuffle.safetensors.lmgc", opts, overwrite=True)


# golden file -> (engine, mixing) it pins; its source is golden_tiny.safetensors unless GOLDEN_SOURCES says
LM_GOLDENS = {
    "golden_engine.safetensors.lmgc": ("lmgc", None),
    "golden_lockstep.safetensors.lmgc": ("transformers", None),
    "golden_mix.safetensors.lmgc": ("lmgc", "cm-mix-v1"),  # lmgc 0.3
    "golden_top.safetensors.lmgc": ("lmgc", "cm-top-v1"),  # lmgc 0.4
    "golden_top2.safetensors.lmgc": ("lmgc", "cm-top-v2"),  # lmgc 0.5
    "golden_top3.safetensors.lmgc": ("lmgc", "cm-top-v3"),  # lmgc 0.6
    "golden_filters.safetensors.lmgc": ("lmgc", "cm-top-v3"),  # lmgc 0.8: format 1.2, zero-sum filters
    "golden_top4.safetensors.lmgc": ("lmgc", "cm-top-v4"),  # lmgc 0.9: row x column fits (with filters)
}
# cm-top-v3's grid contexts need a bias and a weight in one chunk: golden_grid has them.
# The filters need tensors whose lines sum to zero: golden_head has both kinds.
GOLDEN_SOURCES = {
    "golden_top3.safetensors.lmgc": "golden_grid.safetensors",
    "golden_filters.safetensors.lmgc": "golden_head.safetensors",
    "golden_top4.safetensors.lmgc": "golden_head.safetensors",  # matrices for the fits, stored distances
}


def make_grid_source() -> None:
    """golden_grid.safetensors: a bias and a weight gradient, written once with golden_top3."""
    tensors = {"fc.bias": gradient_like((6,), 11), "fc.weight": gradient_like((6, 5), 12)}
    save_file(tensors, str(HERE / "golden_grid.safetensors"))


def make_head_source() -> None:
    """golden_head.safetensors: a softmax head's gradient (sums to zero down its first axis) and a
    position table read through a LayerNorm (sums to zero along its last), written once with
    golden_filters."""
    from tests.test_filters import layer_norm_stream_gradient, softmax_head_gradient

    tensors = {**softmax_head_gradient(10, 6, 3, torch.float32), **layer_norm_stream_gradient(4)}
    save_file(tensors, str(HERE / "golden_head.safetensors"))


SOURCE_MAKERS = {"golden_grid.safetensors": make_grid_source, "golden_head.safetensors": make_head_source}
FLOATS = HERE / "golden_floats.json"


def logits_fingerprint(model_dir: str, procedure: str) -> str:
    """SHA-256 of the tiny model's logits over 24 lockstep steps of 3 windows under ``procedure``."""
    from lmgc_format.lm.alphabet import Alphabet, vocabulary_bytes
    from lmgc_format.lm.models import get
    from lmgc_format.lm.predictor import make_predictor
    from lmgc_format.tensors.serialize import get_scheme

    lm = get(model_dir, "float32")
    alphabet = Alphabet.from_vocabulary(vocabulary_bytes(lm.tokenizer), get_scheme("comma"))
    predictor = make_predictor(lm, alphabet, procedure)
    predictor.reset(64)
    digest = hashlib.sha256()
    feed = [predictor.bos_id] * 3
    for t in range(24):
        logits = np.asarray(predictor.step(feed), dtype=np.float32)
        digest.update(logits.tobytes())
        feed = [alphabet.ids[(7 * t + 3 * row) % alphabet.size] for row in range(3)]
    return digest.hexdigest()


def make_lm_goldens(names: list[str] | None = None) -> None:
    """golden_tiny's source coded by each procedure (or those ``names``), and the logits fingerprints
    of this machine (which must match the recorded ones when only some goldens are written)."""
    import lmgc_format.lm.mixing as mixing_module
    from lmgc_format.lm.predictor import ENGINES

    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp), seed=0)
        floats = {p: logits_fingerprint(str(model), p) for p in ENGINES.values()}
        if names is not None and FLOATS.exists() and json.loads(FLOATS.read_text()) != floats:
            raise SystemExit("this machine's logits differ from golden_floats.json: rewrite all goldens or none")
        for name, (engine, mixing) in LM_GOLDENS.items():
            if names is None or name in names:
                top_byte = mixing is not None and mixing_module.MIXINGS[mixing].top_byte
                opts = EncodeOptions(
                    model=str(model),
                    engine=engine,
                    mixing=mixing is not None,
                    top_byte=top_byte,
                    **GOLDEN_TINY_OPTIONS,  # type: ignore[arg-type]
                )
                default = mixing_module.TOP_MIXING
                if top_byte:  # an older top-byte mixing than the default: the encoder writes only the newest
                    mixing_module.TOP_MIXING = mixing
                source = GOLDEN_SOURCES.get(name, "golden_tiny.safetensors")
                if source in SOURCE_MAKERS and not (HERE / source).exists():
                    SOURCE_MAKERS[source]()
                try:
                    encode_file(HERE / source, HERE / name, opts, overwrite=True)
                finally:
                    mixing_module.TOP_MIXING = default
    FLOATS.write_text(json.dumps(floats, indent=2, sort_keys=True) + "\n")


def make_fast_source() -> None:
    """golden_fast.safetensors: one tensor of every float dtype and shape the fast level treats apart
    (a rank-one matrix with its bias, a 3-D convolution kernel, a softmax head that a filter stores,
    bf16, fp16, fp64, a vector) and an integer tensor; numpy's PCG64 draws the same on every machine."""
    rng = np.random.default_rng(20261130)
    a, b = rng.standard_normal(24), rng.standard_normal(40)
    weight = (np.outer(a, b) * 1e-3 + rng.standard_normal((24, 40)) * 2e-4).astype(np.float32)
    weight[rng.random((24, 40)) < 0.1] = 0.0
    head = (rng.standard_normal((10, 16)) * 1e-2).astype(np.float32)
    head[-1] = -head[:-1].sum(axis=0, dtype=np.float32)  # sums to zero down the first axis
    tensors = {
        "fc.bias": torch.from_numpy((a * 1e-3).astype(np.float32)),
        "fc.weight": torch.from_numpy(weight),
        "conv.weight": torch.from_numpy((rng.standard_t(3, (8, 3, 3, 3)) * 1e-3).astype(np.float32)),
        "head.weight": torch.from_numpy(head),
        "bf16.weight": torch.from_numpy(weight[:12]).to(torch.bfloat16),
        "fp16.weight": torch.from_numpy(weight[12:].astype(np.float16)),
        "fp64.vector": torch.from_numpy(rng.standard_normal(30) * 1e-4),
        "steps": torch.arange(7, dtype=torch.int64),
    }
    save_file(tensors, str(HERE / "golden_fast.safetensors"))


# The fast level as lmgc 0.10-0.17 wrote it (cm-fast-v1): the goldens of formats 1.3-1.6 pin that procedure.
V1_FAST = {"level": "fast", "threads": 1, "fast_procedure": FAST_PROCEDURE}


def make_fast_golden() -> None:
    """golden_fast.safetensors.lmgc: the fast level (cm-fast-v1) over golden_fast.safetensors."""
    make_fast_source()
    opts = EncodeOptions(**V1_FAST)  # type: ignore[arg-type]
    encode_file(HERE / "golden_fast.safetensors", HERE / "golden_fast.safetensors.lmgc", opts, overwrite=True)


def make_fast2_golden() -> None:
    """Format 1.8: golden_fast2.safetensors.lmgc, the fast level (cm-fast-v2) over golden_fast.safetensors."""
    opts = EncodeOptions(level="fast", threads=1)
    encode_file(HERE / "golden_fast.safetensors", HERE / "golden_fast2.safetensors.lmgc", opts, overwrite=True)


def make_compact_goldens() -> None:
    """Format 1.4: golden_compact.safetensors.lmgc (the compact layout: the fast level over
    golden_fast.safetensors, whose chunks are golden_fast's) and golden_stored.safetensors.lmgc (a file too
    small to code, stored)."""
    opts = EncodeOptions(**V1_FAST)  # type: ignore[arg-type]
    encode_file(HERE / "golden_fast.safetensors", HERE / "golden_compact.safetensors.lmgc", opts, overwrite=True)
    tiny = HERE / "golden_stored.safetensors"
    save_file({"g": torch.tensor([0.5, -0.25], dtype=torch.float32)}, str(tiny), metadata={"step": "1"})
    encode_file(tiny, HERE / "golden_stored.safetensors.lmgc", opts, overwrite=True)


def make_quant_source() -> None:
    """golden_quant.safetensors: what distributed training sends, small: int8 values with a scale per row,
    QSGD levels with a norm per bucket, packed signs, sorted int64 indices with fp32 values, sorted int32
    indices with bf16 values, a top-0.5 % gradient written dense, a float16 matrix whose second half
    copies its first (lzma2), and integer tensors at the edges (int16
    zeros, uint64 and int64 extremes, bool, an empty int32, a 0-d int8, one uint16). Drawn with numpy's
    PCG64 (the same on every machine)."""
    rng = np.random.default_rng(20261207)
    a, b = rng.standard_normal(32), rng.standard_normal(48)
    g = np.outer(a, b) + rng.standard_normal((32, 48)) * 0.3
    scale = np.abs(g).max(axis=1, keepdims=True) / 127
    q = np.clip(np.rint(g / scale), -127, 127).astype(np.int8)
    flat = g.reshape(-1)
    norm = np.sqrt((flat.reshape(-1, 512) ** 2).sum(axis=1))
    levels = np.floor(np.abs(flat) / np.repeat(norm, 512) * 7 + rng.random(flat.size)).clip(max=7)
    idx = np.sort(np.argsort(-np.abs(flat))[:40])
    i64 = np.iinfo(np.int64)
    tensors = {
        "fc.q": q,
        "fc.scale": scale.reshape(-1).astype(np.float32),
        "fc.qsgd": (np.sign(flat) * levels).astype(np.int8).reshape(32, 48),
        "fc.norm": norm.astype(np.float32),
        "fc.signs": np.packbits(flat >= 0),
        "fc.idx": idx.astype(np.int64),
        "fc.val": flat[idx].astype(np.float32),
        "fc.idx32": idx.astype(np.int32),
        "zeros": np.zeros((4, 40), dtype=np.int16),
        "edges": np.array([i64.min, -1, 0, 1, i64.max, i64.min, i64.max], dtype=np.int64),
        "u64": np.array([0, 1, 2**63, 2**64 - 1], dtype=np.uint64),
        "mask": rng.random(300) < 0.2,
        "empty": np.zeros((0, 3), dtype=np.int32),
        "scalar": np.array(-7, dtype=np.int8),
        "one": np.array([65535], dtype=np.uint16),
    }
    out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
    out["fc.val16"] = torch.from_numpy(flat[idx].astype(np.float32)).to(torch.bfloat16)
    big = rng.standard_normal(128 * 256).astype(np.float32) * 1e-3
    keep = np.argsort(-np.abs(big))[:160]
    dense = np.zeros(big.size, dtype=np.float32)
    dense[keep] = big[keep]
    out["big.topk"] = torch.from_numpy(dense.reshape(128, 256))  # a top-0.5 % written dense: mode 3
    half = rng.standard_normal((32, 64)).astype(np.float16)
    out["repeats"] = torch.from_numpy(np.concatenate([half, half]))  # its second half a copy: lzma2
    save_file(out, str(HERE / "golden_quant.safetensors"))


def make_quant_golden() -> None:
    """Format 1.5: golden_quant.safetensors.lmgc, the fast level over golden_quant.safetensors (cm-ints-v1
    on its integer tensors: values, gaps and bits)."""
    make_quant_source()
    opts = EncodeOptions(**V1_FAST)  # type: ignore[arg-type]
    encode_file(HERE / "golden_quant.safetensors", HERE / "golden_quant.safetensors.lmgc", opts, overwrite=True)


def make_reference_golden() -> None:
    """Format 1.6: golden_reference.safetensors.lmgc, the fast level over golden_reference.safetensors coded
    against golden_reference_ref.safetensors: weights (fp32 and bf16) one AdamW-like step apart (coded as differences),
    a gradient one step apart (paired, not coded against it: it codes smaller alone), a tensor the reference lacks."""
    rng = np.random.default_rng(8)
    w0 = (rng.standard_normal((96, 64)) * 0.05).astype(np.float32)
    step = (np.sign(rng.standard_normal(w0.shape)) * 1e-3).astype(np.float32)
    e0 = torch.from_numpy(rng.standard_normal((80, 48)).astype(np.float32) * 0.02).bfloat16()
    e1 = e0.float() - 1e-3 * torch.sign(torch.from_numpy(rng.standard_normal((80, 48)).astype(np.float32)))
    g0, g1 = gradient_like((64, 64), 21), gradient_like((64, 64), 22)
    save_file(
        {"fc.weight": torch.from_numpy(w0), "emb": e0, "grad": g0}, str(HERE / "golden_reference_ref.safetensors")
    )
    new = {"fc.weight": torch.from_numpy(w0 - step), "emb": e1.bfloat16(), "grad": g1, "new.bias": g1[0].clone()}
    save_file(new, str(HERE / "golden_reference.safetensors"))
    opts = EncodeOptions(**V1_FAST, reference=str(HERE / "golden_reference_ref.safetensors"))  # type: ignore[arg-type]
    encode_file(HERE / "golden_reference.safetensors", HERE / "golden_reference.safetensors.lmgc", opts, overwrite=True)


def make_quick_source() -> None:
    """golden_quick.safetensors: a value of every dtype the quick level splits into planes: a gradient-like
    fp32 matrix with exact zeros (its exponent under the history context, the planes below under their
    exponent), the same in bf16, fp16 and fp64, floats at the edges (NaN, infinities, -0, subnormals, the
    largest finite), and integers of every width (QSGD levels in int8, and the extremes). numpy's PCG64."""
    rng = np.random.default_rng(20261207)
    scale = 10 ** rng.uniform(-6, -2, (64, 1))  # rows of their own scale, as a batch gradient's
    g = (rng.standard_normal((64, 96)) * scale).astype(np.float32)
    g[rng.random(g.shape) < 0.15] = 0.0
    f32 = np.finfo(np.float32)
    edges = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, f32.tiny / 4, -f32.tiny, f32.max, -f32.max, 1.0], np.float32)
    tensors = {
        "grad": torch.from_numpy(g),
        "grad.bf16": torch.from_numpy(g[:32]).to(torch.bfloat16),
        "grad.fp16": torch.from_numpy(g[32:48].astype(np.float16)),
        "grad.fp64": torch.from_numpy(g[48:].astype(np.float64).reshape(-1)[:700] * 1.0000001),
        "edges": torch.from_numpy(edges),
        "edges.fp16": torch.from_numpy(np.array([np.nan, np.inf, -np.inf, -0.0, 6e-8, -6e-5, 65504, 1], np.float16)),
        "qsgd": torch.from_numpy(np.clip(np.rint(g[:16] / 3e-4), -7, 7).astype(np.int8)),
        "u8": torch.from_numpy(rng.integers(0, 256, 300, dtype=np.uint8)),
        "i16": torch.from_numpy(rng.integers(-300, 300, 200).astype(np.int16)),
        "u16": torch.from_numpy(np.array([0, 1, 65535, 256], dtype=np.uint16)),
        "i32": torch.from_numpy(rng.integers(-(2**31), 2**31 - 1, 50).astype(np.int32)),
        "u32": torch.from_numpy(np.array([0, 2**32 - 1, 7], dtype=np.uint32)),
        "i64": torch.from_numpy(np.sort(rng.integers(0, 10**12, 90))),
        "u64": torch.from_numpy(np.array([0, 1, 2**63, 2**64 - 1], dtype=np.uint64)),
        "mask": torch.from_numpy(rng.random(130) < 0.3),
        "one": torch.from_numpy(np.array([3.5], dtype=np.float32)),
    }
    save_file(tensors, str(HERE / "golden_quick.safetensors"))


def make_quick_golden() -> None:
    """Format 1.7: golden_quick.safetensors.lmgc, the quick level (quick-v1) over golden_quick.safetensors."""
    make_quick_source()
    opts = EncodeOptions(level="quick", threads=1)
    encode_file(HERE / "golden_quick.safetensors", HERE / "golden_quick.safetensors.lmgc", opts, overwrite=True)


GOLDEN_INT8_OPTIONS = {"engine": "int8", "level": "max", "window_bytes": 96, "batch": 3, "fallback": False}


def make_int8_golden(name: str = "golden_int8_v2.safetensors.lmgc") -> None:
    """The portable LM procedure the encoder writes today over golden_fast.safetensors with the tiny model:
    integer arithmetic only, so it decodes on every machine. golden_int8.safetensors.lmgc (cm-int-v1, lmgc
    0.12) was written by this function before lmgc 0.14 made cm-int-v2 the default; golden_int8_v2 since."""
    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp), seed=0)
        opts = EncodeOptions(model=str(model), **GOLDEN_INT8_OPTIONS)  # type: ignore[arg-type]
        encode_file(HERE / "golden_fast.safetensors", HERE / name, opts, overwrite=True)


ONE_GOLDEN = {
    "golden_int8_v2.safetensors.lmgc": make_int8_golden,
    "golden_compact.safetensors.lmgc": make_compact_goldens,
    "golden_quant.safetensors.lmgc": make_quant_golden,
    "golden_reference.safetensors.lmgc": make_reference_golden,
    "golden_fast.safetensors.lmgc": make_fast_golden,
    "golden_quick.safetensors.lmgc": make_quick_golden,
    "golden_fast2.safetensors.lmgc": make_fast2_golden,
}


def main() -> None:
    import sys

    names = sys.argv[1:]
    if "golden_int8.safetensors.lmgc" in names:
        raise SystemExit("golden_int8 (cm-int-v1) is frozen: today's encoder writes cm-int-v2 (golden_int8_v2)")
    for name, make in ONE_GOLDEN.items():  # the goldens one function writes; the rest are LM goldens
        if name in names:
            make()
            names.remove(name)
            if not names:
                return
    make_lm_goldens(names or None)
    for p in sorted(HERE.glob("golden_*")):
        print(p.name, p.stat().st_size)


if __name__ == "__main__":
    main()
