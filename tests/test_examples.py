"""The examples run as documented (examples/)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_flower_fedavg_with_lmgc_equals_without_bit_for_bit() -> None:
    """Three Flower clients send their updates through lmgc for 2 rounds; the aggregated model equals the
    uncompressed run's bit for bit, and lmgc sends fewer bytes than raw float32 and zstd."""
    pytest.importorskip("flwr")
    pytest.importorskip("sklearn")
    proc = subprocess.run(
        [sys.executable, "examples/flower_fedavg.py", "--rounds", "2", "--clients", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "bit for bit: True" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2
    for _, raw, zstd, sent, _ in rows:
        assert int(sent.replace(",", "")) < int(zstd.replace(",", "")) < int(raw.replace(",", ""))
