"""The quick and fast levels on Ray actors against threads, one run side by side (BENCHMARKS.md "Speed and
size"): ``python scripts/ray_speed.py G.safetensors [--cpus 2]``. Every archive is decoded and compared."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encode_job import EncodeOptions
from lmgc_format.pipeline.encoder import encode_file


def timed(src: Path, arc: Path, out: Path, enc: EncodeOptions, dec: DecodeOptions) -> tuple[float, float]:
    t0 = time.perf_counter()
    encode_file(src, arc, enc, overwrite=True)
    t1 = time.perf_counter()
    decode_file(arc, out, dec, overwrite=True)
    t2 = time.perf_counter()
    if out.read_bytes() != src.read_bytes():
        raise SystemExit(f"{arc} did not decode to {src}")
    return t1 - t0, t2 - t1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    args = ap.parse_args()
    import ray

    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level=40, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        arc, out = Path(tmp) / "a.lmgc", Path(tmp) / "out.safetensors"
        for level in ("quick", "fast"):
            e, d = timed(args.file, arc, out, EncodeOptions(level=level), DecodeOptions())
            print(f"{level} on threads: encode {e:.2f} s, decode {d:.2f} s", flush=True)
            for w in range(1, args.cpus + 1):
                enc = EncodeOptions(level=level, ray="auto", workers=w)
                e, d = timed(args.file, arc, out, enc, DecodeOptions(ray="auto", workers=w))
                print(f"{level} on {w} Ray actor(s): encode {e:.2f} s, decode {d:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
