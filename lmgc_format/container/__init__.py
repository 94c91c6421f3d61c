"""The ``.lmgc`` file format (docs/FORMAT.md): fixed preamble, msgpack header, self-describing chunk
frames, msgpack index and a fixed footer; the compact header layout; bounded zstd reads; and the
table of every procedure an archive can name (``procedures``).

May import: ``transforms``, ``tensors`` and the base modules. It never codes a chunk: coders sit above.
"""
