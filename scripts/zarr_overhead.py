"""What lmgc's zarr 3 codec stores against one archive of the same matrix (issue: zarr 3 and safetensors).

Takes a real gradient's values (every tensor but the embedding, in file order) as one ``--rows`` x
``--cols`` fp32 matrix, then in one run: ``lmgc-tui compress --level fast`` of it as one file, and a zarr 3
array of it in ``--chunk-rows`` x cols chunks with ``serializer=lmgc.zarr.LMGC()`` and no compressor.
Reports both sizes (the zarr store counted whole: chunks and zarr.json), the per-chunk bytes beyond the
fast level's coded chunks, and checks the array reads back bit for bit.

    python scripts/zarr_overhead.py /tmp/large/g120.safetensors
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import zarr
from safetensors import safe_open
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lmgc.zarr
from lmgc_format import bare
from lmgc_format.container.reader import ArchiveReader


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gradient", type=Path)
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--chunk-rows", type=int, default=256)
    args = ap.parse_args()
    need = args.rows * args.cols
    parts, have = [], 0
    with safe_open(str(args.gradient), framework="np") as f:
        for name in f.keys():
            if "embed" in name:
                continue
            v = f.get_tensor(name).astype(np.float32).ravel()
            parts.append(v[: need - have])
            have += len(parts[-1])
            if have == need:
                break
    if have < need:
        raise SystemExit(f"{args.gradient} holds {have:,} values, fewer than {need:,}")
    matrix = np.concatenate(parts).reshape(args.rows, args.cols)
    with tempfile.TemporaryDirectory() as tmp:
        src, arc = Path(tmp) / "m.safetensors", Path(tmp) / "m.lmgc"
        save_file({"grad": matrix}, str(src))
        cli = [sys.executable, "-m", "lmgc_tui", "compress", str(src), "-o", str(arc), "--level", "fast", "-q"]
        subprocess.run(cli, check=True)
        with ArchiveReader(arc) as r:
            payload = sum(e.payload_length for e in r.index.chunks)
        store = Path(tmp) / "m.zarr"
        z = zarr.create_array(
            store=str(store),
            shape=matrix.shape,
            chunks=(args.chunk_rows, args.cols),
            dtype="f4",
            serializer=lmgc.zarr.LMGC(level="fast"),
            compressors=None,
        )
        z[:] = matrix
        files = [p for p in store.rglob("*") if p.is_file()]
        chunk_files = [p for p in files if p.name != "zarr.json"]
        total = sum(p.stat().st_size for p in files)
        chunk_bytes = sum(p.stat().st_size for p in chunk_files)
        assert np.array_equal(zarr.open_array(str(store), mode="r")[:], matrix)
        shape = (args.chunk_rows, args.cols)
        per_chunk = [bare.overhead(p.read_bytes(), "F32", shape) for p in chunk_files]
        one_file = arc.stat().st_size
    print(f"matrix {args.rows} x {args.cols} fp32 ({matrix.nbytes:,} bytes) of real gradient values")
    print(f"lmgc-tui compress --level fast, one file: {one_file:,} bytes ({payload:,} of coded chunks)")
    print(
        f"zarr 3, {len(chunk_files)} chunks of {args.chunk_rows} x {args.cols}, no compressor: {total:,} bytes "
        f"({chunk_bytes:,} in chunks, {total - chunk_bytes:,} of zarr.json) = {total / one_file:.4f}x the file"
    )
    print(f"bytes per zarr chunk beyond its coded chunks: {min(per_chunk)}-{max(per_chunk)}")


if __name__ == "__main__":
    main()
