"""``lmgc-tui``: compress, decompress, verify, inspect, bench, models, and the app.

Exit codes: 0 success; 1 other lmgc error; 2 usage error; 3 bad input file;
4 malformed archive; 5 damaged data (CRC or SHA-256 mismatch); 6 model not
found or not loadable; 7 archive made with another model (see --force);
8 output exists (see -f); 9 unsupported request; 130 interrupted.

The package: ``group`` (the command group, error mapping, ``main``), ``options`` (options shared by
commands, defaults from the core), ``codec`` (compress, decompress, verify, inspect), ``bench``,
``info`` (models). Importing it registers every command.
"""

from __future__ import annotations

from . import bench, codec, info  # noqa: F401  (each registers its commands on the group)
from .group import cli, main, print_table

__all__ = ["cli", "main", "print_table"]
