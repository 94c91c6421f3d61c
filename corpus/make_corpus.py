"""The gradient corpus: real gradients of 13 families, with a held-out split fixed before any tuning.

Every family trains a model offline (scikit-learn's bundled datasets, the standard library's own text,
the packaged SmolLM2-135M) and writes what federated learning and checkpoint archives hold:

* ``grad`` the gradient after some training steps, fp32, with ``bf16`` and ``fp16`` casts;
* ``init`` the gradient at initialization (fp32);
* ``adam_m`` / ``adam_v`` AdamW's first and second moments after training (fp32);
* ``delta`` the weights after a few local steps minus before (what an FL client sends, fp32);
* ``rep_*`` the gradient as distributed training sends it: int8 per row, QSGD levels, packed signs,
  top-k indices and values, top-k dense (representations.py; dtype ``wire``: the tensors as sent).

The split is by family (``HELD_OUT`` below, written into the manifest): tuning may look at the other
families only; BENCHMARKS.md leads with the held-out numbers. Files are not committed (~100 MB in
all); ``corpus/manifest.json`` is, with every file's size and SHA-256 *on the machine that made it*
(training in float arithmetic: another CPU kind may give other last bits, and other hashes).

    python corpus/make_corpus.py out/corpus                 # all families (about 2 minutes)
    python corpus/make_corpus.py out/corpus --only mlp_digits,gru_text
    python corpus/bench_corpus.py out/corpus                 # sizes against the classical codecs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpus.architectures import Autoencoder, BagOfWords, ImageNet, Recurrent, Transformer, mlp  # noqa: E402
from corpus.representations import REPRESENTATIONS, represent  # noqa: E402

# Whole families kept out of every modelling choice (chosen 2026-11-30, before any tuning on the corpus):
# one of each kind of architecture the tuning set also has a relative of, and the LoRA adapters.
HELD_OUT = ("gru_text", "vit_digits", "tabular_wine", "lora_smollm2")

Batches = Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    make: Callable[[], tuple[nn.Module, Batches, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]]
    steps: int = 60
    lr: float = 1e-3


# -- data -------------------------------------------------------------------------------------------


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.tensor(d.data / 16.0, dtype=torch.float32), torch.tensor(d.target, dtype=torch.long)


def _table(loader: str) -> tuple[torch.Tensor, torch.Tensor]:
    import sklearn.datasets as ds

    d = getattr(ds, loader)()
    x = torch.tensor(d.data, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return x, torch.tensor(d.target, dtype=torch.long)


def stdlib_text(modules: tuple[str, ...]) -> str:
    """The docstrings of ``modules``' public objects, in name order: text every Python install has."""
    import importlib
    import inspect

    parts = []
    for name in modules:
        mod = importlib.import_module(name)
        for _, obj in sorted(vars(mod).items()):
            doc = inspect.getdoc(obj)
            if doc:
                parts.append(doc)
    return "\n\n".join(parts)


def _chars(modules: tuple[str, ...]) -> tuple[torch.Tensor, int]:
    text = stdlib_text(modules)
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    return torch.tensor([index[c] for c in text], dtype=torch.long), len(vocab)


def _rows(x: torch.Tensor, y: torch.Tensor, batch: int) -> Batches:
    def draw(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.randint(0, len(x), (batch,), generator=gen)
        return x[i], y[i]

    return draw


def _sequences(ids: torch.Tensor, batch: int, context: int) -> Batches:
    def draw(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        start = torch.randint(0, len(ids) - context - 1, (batch,), generator=gen)
        seq = torch.stack([ids[s : s + context + 1] for s in start.tolist()])
        return seq[:, :-1], seq[:, 1:]

    return draw


def _ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(out, y)


# -- families ---------------------------------------------------------------------------------------

_TEXT_A = ("json", "collections", "functools", "textwrap", "heapq", "difflib")
_TEXT_B = ("argparse", "pathlib", "statistics", "fractions", "calendar", "string")


def _digits_family(model: Callable[[], nn.Module]) -> Callable[[], tuple[nn.Module, Batches, Callable]]:  # type: ignore[type-arg]
    def make() -> tuple[nn.Module, Batches, Callable]:  # type: ignore[type-arg]
        x, y = _digits()
        return model(), _rows(x, y, 64), _ce

    return make


def _text_family(model: Callable[[int], nn.Module], modules: tuple[str, ...], context: int = 64):  # type: ignore[no-untyped-def]
    def make() -> tuple[nn.Module, Batches, Callable]:  # type: ignore[type-arg]
        ids, vocab = _chars(modules)
        return model(vocab), _sequences(ids, 16, context), _ce

    return make


def _tabular(loader: str) -> Callable[[], tuple[nn.Module, Batches, Callable]]:  # type: ignore[type-arg]
    def make() -> tuple[nn.Module, Batches, Callable]:  # type: ignore[type-arg]
        x, y = _table(loader)
        return mlp(x.shape[1], 192, int(y.max()) + 1), _rows(x, y, 32), _ce

    return make


def _autoencoder() -> tuple[nn.Module, Batches, Callable]:  # type: ignore[type-arg]
    x, _ = _digits()
    return Autoencoder(), _rows(x, x, 64), _mse


def _bag_of_words() -> tuple[nn.Module, Batches, Callable]:  # type: ignore[type-arg]
    """Which module a docstring's words come from (8 classes); 8,192 hashed word ids."""
    import re

    docs, labels = [], []
    for label, module in enumerate((*_TEXT_A, "csv", "random")):
        for para in stdlib_text((module,)).split("\n\n"):
            words = re.findall(r"[a-z_]+", para.lower())[:32]
            if len(words) >= 4:
                ids = [
                    int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little") % 8192 for w in words
                ]
                docs.append(ids + [ids[-1]] * (32 - len(ids)))
                labels.append(label)
    x, y = torch.tensor(docs), torch.tensor(labels)
    return BagOfWords(8192, 8), _rows(x, y, 16), _ce


FAMILIES: tuple[Family, ...] = (
    Family("mlp_digits", "MLP 64-512-512-10 on scikit-learn digits", _digits_family(lambda: mlp(64, 512, 10))),
    Family("cnn_digits", "CNN (3 conv layers) on digits as 8x8 images", _digits_family(lambda: ImageNet(False))),
    Family("resnet_digits", "ResNet, 2 blocks with BatchNorm, on digits", _digits_family(lambda: ImageNet(True))),
    Family("autoencoder_digits", "MLP autoencoder 64-256-32-256-64 on digits (regression)", _autoencoder),
    Family("tabular_cancer", "MLP on scikit-learn's breast-cancer table", _tabular("load_breast_cancer")),
    Family("tabular_wine", "MLP on scikit-learn's wine table", _tabular("load_wine")),
    Family("gru_text", "GRU char LM (hidden 256) on docstrings", _text_family(lambda v: Recurrent(v, nn.GRU), _TEXT_A)),
    Family(
        "lstm_text",
        "LSTM char LM (hidden 256) on other docstrings",
        _text_family(lambda v: Recurrent(v, nn.LSTM), _TEXT_B),
    ),
    Family(
        "decoder_text",
        "causal transformer (d 128, 3 layers) char LM on docstrings",
        _text_family(lambda v: Transformer(v, v, 128, 3, 64, True), _TEXT_B),
    ),
    Family(
        "encoder_digits",
        "transformer encoder (d 128, 2 layers) classifying digits as 8 tokens of 8 pixels",
        _digits_family(lambda: Transformer(0, 10, 128, 2, 8, False)),
    ),
    Family(
        "vit_digits",
        "ViT-style (d 96, 4 layers, mean-pooled) on digits rows",
        _digits_family(lambda: Transformer(0, 10, 96, 4, 8, False)),
    ),
    Family(
        "embedding_bag",
        "EmbeddingBag (8,192 x 64) classifier of docstrings by module: sparse rows",
        _bag_of_words,
        lr=1e-2,
    ),
)
SMOLLM2_FAMILIES = {
    "smollm2_layers": "SmolLM2-135M fine-tuning: layer 14 (attention, MLP, norms) and 2,048 embedding rows",
    "lora_smollm2": "LoRA adapters (rank 8, q/v of all 30 layers) on SmolLM2-135M",
}


# -- writing ----------------------------------------------------------------------------------------


class Corpus:
    def __init__(self, out: Path) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.files: list[dict[str, Any]] = []

    def write(
        self, family: str, kind: str, tensors: dict[str, torch.Tensor], dtypes: tuple[str, ...] = ("fp32",)
    ) -> None:
        casts = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
        for dt in dtypes:  # "wire": the tensors as they are (a representation's mixed dtypes)
            path = self.out / f"{family}_{kind}_{dt}.safetensors"
            save_file(
                {k: v.detach().to(casts.get(dt, v.dtype)).contiguous() for k, v in tensors.items()},
                str(path),
                metadata={"family": family, "kind": kind, "made_by": "corpus/make_corpus.py"},
            )
            data = path.read_bytes()
            self.files.append(
                {
                    "file": path.name,
                    "family": family,
                    "kind": kind,
                    "dtype": dt,
                    "split": "held_out" if family in HELD_OUT else "tuning",
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
            print(f"  {path.name}: {len(data):,} bytes", flush=True)

    def write_representations(self, family: str, grads: dict[str, torch.Tensor]) -> None:
        """The gradient as distributed and federated training send it: quantized, sparsified, packed
        signs (representations.py), each file under kind ``rep_<name>``, dtype ``wire``."""
        for rep in REPRESENTATIONS:
            self.write(family, f"rep_{rep}", represent(rep, grads), ("wire",))


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _train(model: nn.Module, draw: Batches, loss: Callable, steps: int, lr: float, corpus: Corpus, name: str) -> None:  # type: ignore[type-arg]
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)

    def step() -> None:
        opt.zero_grad()
        x, y = draw(gen)
        loss(model(x), y).backward()

    step()
    corpus.write(name, "init", _grads(model))
    opt.step()
    for _ in range(steps - 1):
        step()
        opt.step()
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # LoRA: the adapters only
    before = {n: p.detach().clone() for n, p in trained}
    for _ in range(5):  # five local steps of an FL client
        step()
        opt.step()
    corpus.write(name, "delta", {n: p.detach() - before[n] for n, p in trained})
    step()
    corpus.write(name, "grad", _grads(model), ("fp32", "bf16", "fp16"))
    corpus.write_representations(name, _grads(model))
    state = opt.state
    corpus.write(name, "adam_m", {n: state[p]["exp_avg"] for n, p in model.named_parameters() if p in state})
    corpus.write(name, "adam_v", {n: state[p]["exp_avg_sq"] for n, p in model.named_parameters() if p in state})


class LoRA(nn.Module):
    def __init__(self, base: nn.Linear, rank: int = 8) -> None:
        super().__init__()
        self.base = base
        self.a = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
        self.b = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.a.T) @ self.b.T * 2.0


def _smollm2(corpus: Corpus, only: set[str] | None) -> None:
    from lmgc_format.lm.models import get

    wanted = [f for f in SMOLLM2_FAMILIES if only is None or f in only]
    if not wanted:
        return
    lm = get(None, "float32", "cpu")
    model = lm.model
    ids = lm.tokenizer(stdlib_text(_TEXT_A), return_tensors="pt")["input_ids"][0]
    draw = _sequences(ids, 2, 64)

    def loss_of(m: nn.Module, gen: torch.Generator) -> torch.Tensor:
        x, _ = draw(gen)
        return m(input_ids=x, labels=x).loss

    if "smollm2_layers" in wanted:
        print("smollm2_layers", flush=True)
        model.train()
        gen = torch.Generator().manual_seed(1)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        for _ in range(3):
            opt.zero_grad()
            loss_of(model, gen).backward()
            opt.step()
        opt.zero_grad()
        loss_of(model, gen).backward()
        keep = ("layers.14.",)
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None and any(k in n for k in keep)}
        emb = next(p for n, p in model.named_parameters() if "embed_tokens" in n)
        assert emb.grad is not None
        grads["model.embed_tokens.weight[:2048]"] = emb.grad[:2048]
        corpus.write("smollm2_layers", "grad", grads, ("fp32", "bf16"))
        corpus.write_representations("smollm2_layers", grads)
        state = opt.state
        corpus.write(
            "smollm2_layers",
            "adam_v",
            {n: state[p]["exp_avg_sq"] for n, p in model.named_parameters() if any(k in n for k in keep)},
        )
        model.zero_grad(set_to_none=True)
        del opt
    if "lora_smollm2" in wanted:
        print("lora_smollm2", flush=True)
        lm = get(None, "float32", "cpu")  # a fresh copy of the weights
        model = lm.model
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in model.model.layers:
            layer.self_attn.q_proj = LoRA(layer.self_attn.q_proj)
            layer.self_attn.v_proj = LoRA(layer.self_attn.v_proj)
        lora = nn.ModuleDict(
            {
                str(i): nn.ModuleList([lay.self_attn.q_proj, lay.self_attn.v_proj])
                for i, lay in enumerate(model.model.layers)
            }
        )

        class Wrapped(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lora = lora

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return model(input_ids=x, labels=x).loss

        wrapped = Wrapped()
        _train(wrapped, draw, lambda out, _y: out, 8, 1e-3, corpus, "lora_smollm2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", help="comma-separated family names")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    torch.set_num_threads(1)
    corpus = Corpus(args.out)
    for fam in FAMILIES:
        if only is not None and fam.name not in only:
            continue
        print(fam.name, flush=True)
        torch.manual_seed(0)
        np.random.seed(0)
        model, draw, loss = fam.make()
        _train(model, draw, loss, fam.steps, fam.lr, corpus, fam.name)
    torch.manual_seed(0)
    _smollm2(corpus, only)
    manifest = {
        "held_out_families": list(HELD_OUT),
        "families": {f.name: f.description for f in FAMILIES} | SMOLLM2_FAMILIES,
        "note": "sha256 of the files on the machine that made them: float training may end in other last bits "
        "on another CPU kind",
        "files": corpus.files,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(corpus.files)} files, {sum(int(f['bytes']) for f in corpus.files) / 1e6:.1f} MB", flush=True)


def _iter(manifest: Path) -> Iterator[dict[str, object]]:  # used by bench_corpus.py
    yield from json.loads(manifest.read_text())["files"]


if __name__ == "__main__":
    main()
