"""Regenerate the shipped sample gradients, deterministically, from offline data.

Five small networks, one per family of the LM-GC paper, are trained for a few
SGD steps on data that ships offline (scikit-learn's 8x8 digits; for the
language model, text of Python's own standard library), then one more
forward + backward pass gives the gradient that is saved, tensor by tensor
under the parameter names, as safetensors (fp32, and the same gradient cast
to bf16). Each net has about 800-1000 parameters so that the default model
codes a file in a couple of minutes on 2 CPU cores.

    pip install scikit-learn
    python samples/make_samples.py            # writes samples/*.safetensors, speed/, unseen/
    python samples/make_samples.py NAME...    # only those (e.g. gru_zen convae_photos)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from sklearn.datasets import load_digits
from torch import nn

HERE = Path(__file__).resolve().parent


class DigitsConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


class DigitsMLP(nn.Module):
    def __init__(self, hidden: int = 12) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class ResidualBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(out)))


class DigitsResNet(nn.Module):
    """A ResNet in miniature: stem, one residual block with batch norm, pooled head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.block = ResidualBlock(6)
        self.fc = nn.Linear(6 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(torch.relu(self.bn(self.stem(x))))
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 2).flatten(1))


class DigitsViT(nn.Module):
    """A ViT in miniature: 4x4 patches (4 per image), class token, one pre-norm block."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.patch = nn.Linear(16, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, 5, dim) * 0.02)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        patches = x.reshape(b, 2, 4, 2, 4).permute(0, 1, 3, 2, 4).reshape(b, 4, 16)
        h = torch.cat([self.cls.expand(b, -1, -1), self.patch(patches)], dim=1) + self.pos
        n = self.norm1(h)
        h = h + self.attn(n, n, n, need_weights=False)[0]
        h = h + self.mlp(self.norm2(h))
        return self.head(h[:, 0])


class CharTransformer(nn.Module):
    """A causal character-level transformer LM in miniature (one block, tied embeddings)."""

    def __init__(self, vocab: int, dim: int = 8, context: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, context, dim) * 0.02)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.norm_f = nn.LayerNorm(dim)
        self.context = context

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        h = self.embed(idx) + self.pos[:, :t]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        n = self.norm1(h)
        h = h + self.attn(n, n, n, attn_mask=mask, need_weights=False)[0]
        h = h + self.mlp(self.norm2(h))
        return self.norm_f(h) @ self.embed.weight.T


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return x, torch.tensor(digits.target, dtype=torch.long)


def _cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def _train_then_gradient(
    net: nn.Module,
    batches: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    seed: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = _cross_entropy,
) -> dict[str, torch.Tensor]:
    """``steps`` SGD steps, then one more forward + backward: that gradient is the sample."""
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps + 1):
        x, y = batches(gen)
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        if step < steps:
            opt.step()
    return {name: p.grad.detach().clone().contiguous() for name, p in net.named_parameters() if p.grad is not None}


def digits_gradient(
    net_cls: Callable[[], nn.Module], steps: int = 20, batch: int = 64, seed: int = 0
) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    x, y = _digits()
    net = net_cls()

    def batches(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randperm(len(x), generator=gen)[:batch]
        return x[idx], y[idx]

    return _train_then_gradient(net, batches, steps, seed)


def convnet_gradient(steps: int = 20, batch: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    return digits_gradient(DigitsConvNet, steps, batch, seed)


def stdlib_text() -> str:
    """Offline text: the docstrings of a few standard-library modules, fixed order."""
    import collections
    import functools
    import json
    import textwrap

    return "\n".join((m.__doc__ or "") for m in (json, collections, functools, textwrap))


def _char_ids(text: str) -> tuple[torch.Tensor, int]:
    """The text as character ids, and the vocabulary size: the 40 most basic characters; the rest map
    to the last one."""
    chars = sorted(set(text))[:40]
    lookup = {c: i for i, c in enumerate(chars)}
    return torch.tensor([lookup.get(c, len(chars) - 1) for c in text], dtype=torch.long), len(chars)


def _next_char_batches(
    ids: torch.Tensor, batch: int, context: int
) -> Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]:
    """Random windows of ``context`` characters, each with the window one character on as its target."""

    def batches(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(ids) - context - 1, (batch,), generator=gen)
        x = torch.stack([ids[s : s + context] for s in starts])
        y = torch.stack([ids[s + 1 : s + context + 1] for s in starts])
        return x, y

    return batches


def _char_lm_gradient(
    make_net: Callable[[int], nn.Module], text: str, steps: int, batch: int, context: int, seed: int
) -> dict[str, torch.Tensor]:
    """A character LM built by ``make_net(vocab)`` after seeding, trained on ``text``: the gradient."""
    torch.manual_seed(seed)
    ids, vocab = _char_ids(text)
    net = make_net(vocab)
    return _train_then_gradient(net, _next_char_batches(ids, batch, context), steps, seed)


def charlm_gradient(steps: int = 30, batch: int = 32, context: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    return _char_lm_gradient(lambda v: CharTransformer(v, context=context), stdlib_text(), steps, batch, context, seed)


class CharGRU(nn.Module):
    """A character-level GRU LM in miniature (an architecture no shipped sample has)."""

    def __init__(self, vocab: int, dim: int = 6, hidden: int = 10) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.gru(self.embed(idx))[0])


class PatchAutoencoder(nn.Module):
    """A convolutional autoencoder for 8x8 grey patches: strided convs down, transposed convs up."""

    def __init__(self) -> None:
        super().__init__()
        self.down1 = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.up1 = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
        self.up2 = nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.down2(torch.tanh(self.down1(x))))
        return self.up2(torch.tanh(self.up1(h)))


def zen_text() -> str:
    """Offline text the shipped samples never saw: the Zen of Python and argparse's and email's docstrings."""
    import argparse
    import codecs
    import contextlib
    import email
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import this
    return "\n".join([codecs.decode(this.s, "rot13"), argparse.__doc__ or "", email.__doc__ or ""])


def gru_gradient(steps: int = 30, batch: int = 32, context: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    return _char_lm_gradient(CharGRU, zen_text(), steps, batch, context, seed)


def _image_patches() -> torch.Tensor:
    """Every 8x8 patch (stride 8) of scikit-learn's two bundled photos, grey, in [0, 1]."""
    from sklearn.datasets import load_sample_images

    out = []
    for image in load_sample_images().images:
        grey = torch.tensor(image, dtype=torch.float32).mean(dim=2) / 255.0
        h, w = (grey.shape[0] // 8) * 8, (grey.shape[1] // 8) * 8
        out.append(grey[:h, :w].reshape(h // 8, 8, w // 8, 8).permute(0, 2, 1, 3).reshape(-1, 1, 8, 8))
    return torch.cat(out)


def autoencoder_gradient(steps: int = 20, batch: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    patches = _image_patches()
    net = PatchAutoencoder()

    def batches(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randperm(len(patches), generator=gen)[:batch]
        return patches[idx], patches[idx]

    return _train_then_gradient(net, batches, steps, seed, nn.functional.mse_loss)


class CharLSTM(nn.Module):
    """A character-level LSTM LM in miniature (held out after lmgc 0.9: no sample had an LSTM)."""

    def __init__(self, vocab: int, dim: int = 6, hidden: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(self.embed(idx))[0])


def docs_text() -> str:
    """Offline text no earlier sample read: the docstrings of csv, heapq, random, difflib and tempfile."""
    import csv
    import difflib
    import heapq
    import random
    import tempfile

    return "\n".join((m.__doc__ or "") for m in (csv, heapq, random, difflib, tempfile))


def lstm_gradient(steps: int = 30, batch: int = 32, context: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    return _char_lm_gradient(CharLSTM, docs_text(), steps, batch, context, seed)


class WineResMLP(nn.Module):
    """A pre-norm residual MLP for tabular data (held out after lmgc 0.9): SiLU, LayerNorms, softmax head."""

    def __init__(self, features: int = 13, width: int = 20, classes: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(features, width)
        self.norm1 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.norm_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        h = h + self.fc2(nn.functional.silu(self.fc1(self.norm1(h))))
        return self.head(self.norm_f(h))


def wine_gradient(steps: int = 20, batch: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    """scikit-learn's bundled wine table (178 x 13, standardized), 3 classes."""
    from sklearn.datasets import load_wine

    torch.manual_seed(seed)
    wine = load_wine()
    x = torch.tensor(wine.data, dtype=torch.float32)
    x = (x - x.mean(dim=0)) / x.std(dim=0)
    y = torch.tensor(wine.target, dtype=torch.long)
    net = WineResMLP()

    def batches(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randperm(len(x), generator=gen)[:batch]
        return x[idx], y[idx]

    return _train_then_gradient(net, batches, steps, seed)


SAMPLES: dict[str, Callable[[], dict[str, torch.Tensor]]] = {
    "convnet_digits": convnet_gradient,
    "mlp_digits": lambda: digits_gradient(DigitsMLP),
    "resnet_digits": lambda: digits_gradient(DigitsResNet),
    "vit_digits": lambda: digits_gradient(DigitsViT),
    "charlm_stdlib": charlm_gradient,
}


# Bigger files for `lmgc-tui bench --speed` (tens of KB: minutes per run, so not in the main set).
SPEED_SAMPLES: dict[str, Callable[[], dict[str, torch.Tensor]]] = {
    # 128 hidden units: enough windows for big lockstep batches.
    "mlpwide_digits": lambda: digits_gradient(functools.partial(DigitsMLP, 128)),
}


# Held out (samples/unseen/): architectures and data no shipped sample has, made after lmgc 0.5's
# defaults were chosen and never used to choose anything (issue 8's "gradients never seen").
UNSEEN_SAMPLES: dict[str, Callable[[], dict[str, torch.Tensor]]] = {
    "gru_zen": gru_gradient,
    "convae_photos": autoencoder_gradient,
    # Made after lmgc 0.9's top-byte fits were chosen (whose offline table did list the two above).
    "lstm_docs": lstm_gradient,
    "wine_resmlp": wine_gradient,
}


def main() -> None:
    import sys

    only = set(sys.argv[1:])  # sample names to write (default: all)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    meta = {"source": "samples/make_samples.py"}
    tables = ((HERE, SAMPLES), (HERE / "speed", SPEED_SAMPLES), (HERE / "unseen", UNSEEN_SAMPLES))
    for folder, table in tables:
        folder.mkdir(exist_ok=True)
        for name, make in table.items():
            if only and name not in only:
                continue
            grads = make()
            save_file(grads, str(folder / f"{name}_fp32.safetensors"), metadata=meta)
            bf16 = {k: v.to(torch.bfloat16) for k, v in grads.items()}
            save_file(bf16, str(folder / f"{name}_bf16.safetensors"), metadata=meta)
    for p in sorted([*HERE.glob("*.safetensors"), *HERE.glob("*/*.safetensors")]):
        n_params = sum(t.numel() for t in load_file(str(p)).values())
        print(f"{p.name}: {p.stat().st_size} bytes, {n_params} values")


if __name__ == "__main__":
    main()
