"""Archive sizes of the LM level with each engine, file by file: what the portable procedure costs.

    python scripts/engine_sizes.py [--engines int8,lmgc] [--json OUT] [--no-verify] [--estimate-float] FILE...

Compresses every FILE with ``--level max`` and each engine (int8: the portable ``lmgc-int8-v1+cm-int-v1``;
lmgc: the float ``cm-top-v4`` procedure) in one process (the model loads once), decodes every archive
and compares it with the file, and prints the sum of the chunk payloads and the whole archive per file
and engine, with the int8/float ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from lmgc_format.bench.estimate import estimate_file
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file


def _payload_bytes(path: Path) -> int:
    reader = ArchiveReader(path)
    return sum(len(reader.read_chunk(i)[1]) for i in range(len(reader.index.chunks)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--engines", default="int8,lmgc")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-verify", action="store_true", help="skip decoding each archive (sizes only, half the time)")
    ap.add_argument("--estimate-float", action="store_true",
                    help="float engines: bench --estimate's teacher-forced payloads (a few bytes from the "
                         "archive's, minutes faster) instead of archives")  # fmt: skip
    args = ap.parse_args()
    engines = args.engines.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="lmgc-sizes-") as tmp:
        for f in args.files:
            row: dict[str, object] = {"file": f.name, "bytes": f.stat().st_size}
            for engine in engines:
                if args.estimate_float and engine != "int8":
                    start = time.perf_counter()
                    est = estimate_file(f, EncodeOptions(level="max", engine=engine))
                    row[engine] = {"payload": est.coded_bytes, "archive": None, "estimate": True,
                                   "encode_s": round(time.perf_counter() - start, 1)}  # fmt: skip
                    continue
                archive, back = Path(tmp) / f"{engine}.lmgc", Path(tmp) / "back.safetensors"
                start = time.perf_counter()
                encode_file(f, archive, EncodeOptions(level="max", engine=engine), overwrite=True)
                seconds = time.perf_counter() - start
                if not args.no_verify:
                    decode_file(archive, back, DecodeOptions(), overwrite=True)
                if not args.no_verify and back.read_bytes() != f.read_bytes():
                    raise SystemExit(f"{f}: the {engine} archive did not decode to the file")
                row[engine] = {"payload": _payload_bytes(archive), "archive": archive.stat().st_size,
                               "encode_s": round(seconds, 1)}  # fmt: skip
            rows.append(row)
            cells = "  ".join(f"{e} {row[e]['payload']:>6,} / {row[e]['archive'] or 'est.':>6}" for e in engines)  # type: ignore[index]
            print(f"{f.name:34s} {row['bytes']:>7,}  {cells}", flush=True)
    if len(engines) == 2:
        a, b = engines
        pa = sum(r[a]["payload"] for r in rows)  # type: ignore[index]
        pb = sum(r[b]["payload"] for r in rows)  # type: ignore[index]
        print(f"payloads {a} {pa:,} vs {b} {pb:,}: {pa / pb:.4f}x")
        if not args.estimate_float:
            aa = sum(r[a]["archive"] for r in rows)  # type: ignore[index]
            ab = sum(r[b]["archive"] for r in rows)  # type: ignore[index]
            print(f"archives {a} {aa:,} vs {b} {ab:,}: {aa / ab:.4f}x")
        worst = max(rows, key=lambda r: r[a]["payload"] / r[b]["payload"])  # type: ignore[index]
        print(f"largest ratio: {worst['file']} {worst[a]['payload'] / worst[b]['payload']:.4f}x")  # type: ignore[index]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
