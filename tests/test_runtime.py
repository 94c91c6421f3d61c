"""The runtime record: what the model's floating-point results depend on."""

from __future__ import annotations

from lmgc_format.lm import runtime


def test_float_probe_is_stable_on_one_machine() -> None:
    first = runtime.float_probe("cpu")
    assert len(first) == 16 and int(first, 16) >= 0
    assert runtime.float_probe("cpu") == first


def test_differences_name_a_different_float_probe() -> None:
    here = runtime.describe("cpu")
    assert runtime.differences(here, here) == []
    other = {**here, "float_probe": "0" * 16}
    assert runtime.differences(other, here) == [f"float_probe {'0' * 16} -> {here['float_probe']}"]
    older = {k: v for k, v in here.items() if k != "float_probe"}  # archives of lmgc < 0.3 have none
    assert runtime.differences(older, here) == []
