"""The corpus's model architectures (make_corpus.py trains them): small CNNs and ResNets, recurrent nets,
transformers (causal and ViT-style), an embedding-bag classifier, an autoencoder and MLPs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)
        self.c2, self.b2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.b2(self.c2(torch.relu(self.b1(self.c1(x))))))


class ImageNet(nn.Module):
    """Digits as 1x8x8 images: a plain CNN or a ResNet with BatchNorm."""

    def __init__(self, residual: bool) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 48, 3, padding=1)
        self.body = (
            nn.Sequential(ResBlock(48), ResBlock(48))
            if residual
            else nn.Sequential(nn.Conv2d(48, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU())
        )
        self.head = nn.Linear((48 if residual else 64) * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(torch.relu(self.stem(x.view(-1, 1, 8, 8))))
        return self.head(nn.functional.max_pool2d(h, 2).flatten(1))


class Recurrent(nn.Module):
    def __init__(self, vocab: int, cell: Callable[..., nn.RNNBase], hidden: int = 256) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 64)
        self.rnn = cell(64, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(self.emb(idx))[0])


class Transformer(nn.Module):
    """A pre-norm transformer: token sequences (causal decoder) or digit patches (ViT / encoder)."""

    def __init__(self, vocab: int, classes: int, dim: int, layers: int, context: int, causal: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim) if vocab else nn.Linear(8, dim)  # patches: rows of 8 pixels
        self.pos = nn.Parameter(torch.randn(context, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, 4, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)
        self.causal, self.context = causal, context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x if self.embed.__class__ is nn.Embedding else x.view(-1, 8, 8))
        h = h + self.pos[: h.shape[1]]
        mask = nn.Transformer.generate_square_subsequent_mask(h.shape[1]) if self.causal else None
        h = self.norm(self.blocks(h, mask=mask, is_causal=self.causal))
        return self.head(h if self.causal else h.mean(1))


class BagOfWords(nn.Module):
    """An embedding-heavy classifier: each batch touches few of the vocabulary's rows (sparse gradients)."""

    def __init__(self, vocab: int, classes: int) -> None:
        super().__init__()
        self.emb = nn.EmbeddingBag(vocab, 64, mode="mean")
        self.head = nn.Linear(64, classes)

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(words))


class Autoencoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(64, 256), nn.Tanh(), nn.Linear(256, 32))
        self.dec = nn.Sequential(nn.Linear(32, 256), nn.Tanh(), nn.Linear(256, 64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x))


def mlp(inputs: int, hidden: int, classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes)
    )
