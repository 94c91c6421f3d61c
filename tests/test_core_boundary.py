"""harlequin's rule: the core never imports the UI toolkit."""

from __future__ import annotations

import subprocess
import sys


def test_core_does_not_import_textual() -> None:
    code = (
        "import sys, lmgc_format.pipeline.encoder, lmgc_format.pipeline.decoder, lmgc_format.inspect;"
        "import lmgc_format.lm.models;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'lmgc_tui', 'rich')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
