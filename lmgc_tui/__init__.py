"""lmgc's terminal front ends: the ``lmgc-tui`` command line (and, later, the Textual app)."""
