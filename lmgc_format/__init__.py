"""lmgc core: lossless compression of safetensors files with a language model (LM-GC).

This package never imports Textual; the terminal app lives in ``lmgc_tui``.
"""

__version__ = "0.14.1"
