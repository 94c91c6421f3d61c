"""The ``.lmgc`` file format (docs/FORMAT.md): fixed preamble, msgpack header,
self-describing chunk frames, msgpack index and a fixed footer."""
