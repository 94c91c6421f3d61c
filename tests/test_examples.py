"""The examples run as documented (examples/)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
@pytest.mark.parametrize("update", ["float", "qsgd", "topk"])
def test_flower_fedavg_with_lmgc_equals_without_bit_for_bit(update: str) -> None:
    """Three Flower clients send their updates (float32, QSGD levels or top-k) through lmgc for 2 rounds; the
    aggregated model equals the run that sent the same arrays raw, bit for bit, and lmgc sends fewer bytes
    than raw and zstd."""
    pytest.importorskip("flwr")
    pytest.importorskip("sklearn")
    proc = subprocess.run(
        [sys.executable, "examples/flower_fedavg.py", "--rounds", "2", "--clients", "3", "--update", update],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "bit for bit: True" in proc.stdout
    updates, broadcast = proc.stdout.split("the server's broadcast")
    rows = [line.split() for line in updates.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2
    for _, raw, zstd, _pcodec, sent, _ in rows:
        assert int(sent.replace(",", "")) < int(zstd.replace(",", "")) < int(raw.replace(",", ""))
    # the new global model coded against the previous one (which clients hold) is smaller than alone
    sizes = [[int(v.replace(",", "")) for v in line.split()[1:4]] for line in broadcast.splitlines()
             if line.strip()[:1].isdigit()]  # fmt: skip
    assert len(sizes) == 2 and all(ref < alone < raw for raw, alone, ref in sizes)
