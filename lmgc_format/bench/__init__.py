"""Benchmark harness: the LM codec vs classical codecs on the same bytes (``lmgc-tui bench``)."""
