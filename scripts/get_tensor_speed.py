"""How much of a whole ``load_file`` one ``safe_open(...).get_tensor`` costs (issue: safetensors habits).

Codes a safetensors file at the fast level (unless its archive exists), then, in one run: the whole
``lmgc.load_file``, and ``get_tensor`` of the tensor whose size is nearest 1 % of the file, with the
chunks it decoded out of all. Times are this machine's; compare the ratio, not the seconds.

    python scripts/get_tensor_speed.py /tmp/large/g120.safetensors
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lmgc
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", type=Path)
    args = ap.parse_args()
    archive = args.file.with_suffix(".fast.lmgc")
    if not archive.exists():
        encode_file(args.file, archive, EncodeOptions(level="fast"))
    size = args.file.stat().st_size
    t0 = time.perf_counter()
    whole = lmgc.load_file(archive)
    t_whole = time.perf_counter() - t0
    with lmgc.safe_open(archive) as f:
        entries = {t.name: t for t in f.reader.tensors}
        name = min(entries, key=lambda n: abs(entries[n].nbytes - size / 100))
        t0 = time.perf_counter()
        one = f.get_tensor(name)
        t_one = time.perf_counter() - t0
        _, used = f.stored_bytes(entries[name])
        chunks = len(f.reader.plan)
    assert one.equal(whole[name])
    print(f"file {size / 1e6:.1f} MB, archive {archive.stat().st_size / 1e6:.1f} MB, {chunks} chunks")
    print(f"load_file: {t_whole:.2f} s")
    print(
        f"get_tensor({name!r}, {entries[name].nbytes / 1e6:.2f} MB = {100 * entries[name].nbytes / size:.2f} % of "
        f"the file): {t_one:.3f} s = {100 * t_one / t_whole:.1f} % of load_file, {used} of {chunks} chunks decoded"
    )


if __name__ == "__main__":
    main()
