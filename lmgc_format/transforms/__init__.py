"""Reversible transforms applied before coding: zero-sum filters (``filters``, ``linesums``), row lengths
inferred for flat tensors (``rows``) and byte shuffles (``shuffle``).

May import: ``tensors`` and the base modules.
"""
