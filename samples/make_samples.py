"""Regenerate the shipped sample gradients, deterministically, from offline data.

A small ConvNet is trained for a few SGD steps on scikit-learn's bundled
8x8 digits (no download), then one more forward + backward pass gives the
gradient that is saved, tensor by tensor under the parameter names, as
safetensors (fp32, and the same gradient cast to bf16).

    pip install scikit-learn
    python samples/make_samples.py            # writes samples/*.safetensors
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file
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


def convnet_gradient(steps: int = 20, batch: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    net = DigitsConvNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps + 1):
        idx = torch.randperm(len(x), generator=gen)[:batch]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        loss.backward()
        if _ < steps:
            opt.step()
    return {name: p.grad.detach().clone().contiguous() for name, p in net.named_parameters() if p.grad is not None}


def main() -> None:
    torch.set_num_threads(1)
    grads = convnet_gradient()
    save_file(grads, str(HERE / "convnet_digits_fp32.safetensors"), metadata={"source": "samples/make_samples.py"})
    save_file(
        {k: v.to(torch.bfloat16) for k, v in grads.items()},
        str(HERE / "convnet_digits_bf16.safetensors"),
        metadata={"source": "samples/make_samples.py"},
    )
    for p in sorted(HERE.glob("*.safetensors")):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
