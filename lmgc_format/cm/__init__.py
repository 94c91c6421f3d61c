"""The fast level's coder: binary context mixing compiled with numba, integer arithmetic only
(``kernel``), its chunk codec (``codec``), a bit-level arithmetic coder in Python (``binary``) and
the thread pool that runs chunks side by side (``pool``).

May import: ``container``, ``transforms``, ``tensors`` and the base modules.
"""
