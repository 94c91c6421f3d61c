"""lmgc core: lossless compression of safetensors files with a language model (LM-GC).

Packages by layer, lowest first; a module imports from its own layer or a lower one, never up and
never in a circle (tests/test_package_map.py; the map is docs/DESIGN.md "Package map"):

* base: ``errors``, ``events``, ``atomic`` (modules here);
* ``tensors/``: what the input is and how it is cut (safetensors layout, value byte layout, chunk plan);
* ``transforms/``: reversible transforms before coding (zero-sum filters, row inference, byte shuffles);
* ``container/``: the archive on disk, and the table of every procedure an archive can name;
* ``cm/``: the fast level's compiled context mixing;
* ``lm/``: the LM level (engines, integer kernels, alphabet, predictor, mixers, LM chunk coding);
* ``pipeline/``: encoder, decoder, levels, workers, salvage;
* faces: ``api``, ``inspect``, ``bench/``; ``lmgc`` and ``lmgc_tui`` sit on top.

This package never imports Textual; the terminal app lives in ``lmgc_tui``.
"""

__version__ = "0.18.0"
