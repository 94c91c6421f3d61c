"""What an LM chunk coder reports while it works: the callback types both LM codings share."""

from __future__ import annotations

from collections.abc import Callable

StepCallback = Callable[[float, int], None]  # (fraction of the chunk done, tokens this step)
TokenCallback = Callable[[int, int, float], None]  # (window, symbol, ideal bits it cost; 0 for known tokens)
TopCallback = Callable[[int, float], None]  # (window, ideal bits its top bytes cost), cm-top-v* only
PrimeCallback = Callable[[list[list[int]]], object]  # every window's symbols, before the first step
