"""The portable engine lmgc-int8-v1: exact against a plain reference, and the same on any thread count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmgc_format.lm import intmath, intmatmul
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.engine import LlamaEngine
from lmgc_format.lm.intengine import IntLlamaEngine
from lmgc_format.lm.models import get
from lmgc_format.tensors.serialize import get_scheme
from tests.int_reference import ReferenceEngine


@pytest.fixture(scope="module")
def tiny(tiny_model: str) -> tuple[object, Alphabet]:
    lm = get(tiny_model, "float32")
    return lm, Alphabet.for_tokenizer(lm.tokenizer, get_scheme("comma"))


def _feeds(alphabet: Alphabet, bos: int, steps: int, rows: int) -> list[list[int]]:
    return [[bos] * rows] + [[alphabet.ids[(7 * t + 5 * r) % alphabet.size] for r in range(rows)] for t in range(steps)]


def _run(engine: object, feeds: list[list[int]]) -> np.ndarray:
    engine.reset(len(feeds))  # type: ignore[attr-defined]
    return np.stack([np.asarray(engine.step(f)) for f in feeds])  # type: ignore[attr-defined]


def test_tables_are_pinned_and_close_to_the_functions() -> None:
    exp_q15, ln_mant, ln2, sig = intmath.tables()
    assert intmath.digest(exp_q15, ln_mant, ln2, sig) == intmath.PINNED_SHA256
    d = np.arange(0, intmath.EXP_SPAN, 97)
    assert np.abs(exp_q15[d] - np.round(32768 * np.exp(-d / 1024))).max() <= 1
    x = np.array([1, 2, 3, 1000, 12345, 2**40, 2**52 + 7])
    assert np.abs(intmath.ln_q10(x) - np.log(x.astype(np.float64)) * 1024).max() <= 1.5
    i = np.arange(-intmath.SIG_HALF, intmath.SIG_HALF + 1, 31)
    assert np.abs(sig[i + intmath.SIG_HALF] - 65536 / (1 + np.exp(-i / 256))).max() <= 0.5 + 1e-9
    rope = intmath.rope_q14(intmath.Decimal(10000), 8, 300)
    pos = np.arange(300)[:, None]
    angle = pos * 10000.0 ** (-np.arange(0, 8, 2) / 8)
    assert np.abs(rope[:, 0] - np.cos(angle) * 16384).max() <= 0.51
    assert np.abs(rope[:, 1] - np.sin(angle) * 16384).max() <= 0.51


def test_engine_matches_the_plain_reference_exactly(tiny: tuple[object, Alphabet]) -> None:
    lm, alphabet = tiny
    feeds = _feeds(alphabet, lm.info.bos_id, 20, 3)  # type: ignore[attr-defined]
    fast = _run(IntLlamaEngine(lm, alphabet), feeds)  # type: ignore[arg-type]
    ref = ReferenceEngine(lm.model, alphabet.ids, lm.info.bos_id)  # type: ignore[attr-defined]
    slow = np.stack([ref.step(f) for f in feeds])
    assert fast.dtype == np.int64
    np.testing.assert_array_equal(fast, slow)


def test_threads_and_batch_layout_do_not_change_a_bit(tiny: tuple[object, Alphabet]) -> None:
    lm, alphabet = tiny
    feeds = _feeds(alphabet, lm.info.bos_id, 40, 5)  # type: ignore[attr-defined]
    before = torch.get_num_threads()
    try:
        runs = []
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            runs.append(_run(IntLlamaEngine(lm, alphabet), feeds))  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])
    # Rows are independent: window 3 alone gives its row of the batch of five.
    alone = _run(IntLlamaEngine(lm, alphabet), [[f[3]] for f in feeds])  # type: ignore[arg-type]
    np.testing.assert_array_equal(alone[:, 0], runs[0][:, 3])


def test_engine_predicts_like_the_float_engine(tiny: tuple[object, Alphabet]) -> None:
    """int8 weights and activations move the distribution a little, not the model."""
    lm, alphabet = tiny
    feeds = _feeds(alphabet, lm.info.bos_id, 30, 3)  # type: ignore[attr-defined]
    ints = _run(IntLlamaEngine(lm, alphabet), feeds).astype(np.float64) / 65536  # type: ignore[arg-type]
    floats = _run(LlamaEngine(lm, alphabet), feeds).astype(np.float64)  # type: ignore[arg-type]

    def logp(x: np.ndarray) -> np.ndarray:
        x = x - x.max(-1, keepdims=True)
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    p = np.exp(logp(floats))
    kl = (p * (logp(floats) - logp(ints))).sum(-1).mean()
    assert kl < 0.05, kl
    assert (ints.argmax(-1) == floats.argmax(-1)).mean() > 0.9


def test_digest_names_the_integers(tiny: tuple[object, Alphabet], other_tiny_model: str) -> None:
    lm, alphabet = tiny
    a = IntLlamaEngine(lm, alphabet).digest  # type: ignore[arg-type]
    assert a == IntLlamaEngine(lm, alphabet).digest  # type: ignore[arg-type]
    other = get(other_tiny_model, "float32")
    assert IntLlamaEngine(other, alphabet).digest != a


@pytest.mark.parametrize("backend", intmatmul.BACKENDS)
def test_every_cpu_path_gives_the_same_integers(
    tiny: tuple[object, Alphabet], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled passes (intkernels) with each exact matmul backend == the torch ops path, bit for bit,
    across a cache that grows (the engine starts with room for 40 positions and needs 121)."""
    if not intmatmul.exact(torch, backend):
        pytest.skip(f"{backend} is not exact on this CPU")
    lm, alphabet = tiny
    feeds = _feeds(alphabet, lm.info.bos_id, 120, 4)  # type: ignore[attr-defined]
    monkeypatch.setenv("LMGC_INT_MATMUL", backend)
    fused = IntLlamaEngine(lm, alphabet)  # type: ignore[arg-type]
    assert fused.matmul_backend == backend
    plain = IntLlamaEngine(lm, alphabet, fused=False)  # type: ignore[arg-type]
    assert plain.matmul_backend == "torch" and plain.digest == fused.digest
    runs = []
    for engine in (fused, plain):
        engine.reset(40)
        runs.append(np.stack([engine.step(f) for f in feeds]))
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("fused", [True, False])
def test_forward_reads_windows_whole_with_the_step_integers(tiny: tuple[object, Alphabet], fused: bool) -> None:
    """The encoder's teacher forcing: windows of different lengths (longer than one attention and query
    block) read whole give exactly the logits of stepping them, position by position."""
    lm, alphabet = tiny
    bos = lm.info.bos_id  # type: ignore[attr-defined]
    rng = np.random.default_rng(3)
    feeds = [[bos] + [alphabet.ids[k] for k in rng.integers(0, alphabet.size, n)] for n in (150, 70, 0, 131)]
    engine = IntLlamaEngine(lm, alphabet, fused=fused)  # type: ignore[arg-type]
    whole = engine.forward(feeds)
    engine.reset(16)
    steps = [engine.step([f[t] if t < len(f) else bos for f in feeds]) for t in range(max(map(len, feeds)))]
    for i, f in enumerate(feeds):
        assert whole[i].shape == (len(f), alphabet.size)
        np.testing.assert_array_equal(whole[i], np.stack([steps[t][i] for t in range(len(f))]))
