"""``--reference`` on the sequence pairs (corpus/sequences.py): lmgc's fast level (or ``--level quick``)
alone, with the earlier file as reference, and ZipNN's delta method (the file XOR-ed with the reference,
then the best classical codec: xz -9e, zstd -22, each plain or byte-split per tensor, and ZipNN and pcodec
on the XOR per tensor).

    python corpus/sequences.py /tmp/seq
    python corpus/bench_sequences.py /tmp/seq --json benchmarks/sequences.json --md benchmarks/sequences.md
    python corpus/bench_sequences.py /tmp/seq --level quick --md benchmarks/sequences_quick.md

Every archive made with a reference is decoded again and compared. Sizes are whole files.
"""

from __future__ import annotations

import argparse
import json
import lzma
import sys
import tempfile
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lmgc_format.bench.classical import Unavailable, _pcodec_enc, _zipnn_enc
from lmgc_format.bench.runner import xor_with
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.tensors.source import read_layout
from lmgc_format.transforms.shuffle import byte_shuffle

PAIRS = (  # (kind, dtype, steps after T of the newer file; the reference is T)
    ("weights", "fp32", 1), ("weights", "bf16", 1), ("adam_v", "fp32", 1), ("adam_m", "fp32", 1),
    ("grad", "fp32", 1), ("grad", "bf16", 1), ("grad", "fp32", 10), ("weights", "fp32", 100),
    ("weights", "bf16", 100), ("adam_v", "fp32", 100),
)  # fmt: skip


def xor_baseline(new: Path, ref: Path) -> dict[str, int]:
    """ZipNN's delta method: the whole file of the XOR with the reference (paired tensors; the JSON header
    and any unpaired tensor as they are) under each classical codec."""
    lay = read_layout(new)
    a = new.read_bytes()
    data = xor_with(lay, a[lay.data_offset :], ref)  # what `bench --reference` gives its classical codecs
    split = bytearray(data)
    for t in lay.tensors:
        split[t.begin : t.end] = byte_shuffle(data[t.begin : t.end], t.item_size)
    sizes = {}
    for name, section in (("", data), ("bytesplit+", bytes(split))):
        whole = a[: lay.data_offset] + section
        sizes[f"XOR+{name}xz -9e"] = len(lzma.compress(whole, preset=9 | lzma.PRESET_EXTREME))
        sizes[f"XOR+{name}zstd -22"] = len(zstandard.ZstdCompressor(level=22).compress(whole))
    for name, encode in (("ZipNN", _zipnn_enc), ("pcodec", _pcodec_enc)):  # one call per tensor
        try:
            parts = [encode(data[t.begin : t.end], t.dtype) for t in lay.tensors if t.nbytes]
        except Unavailable:
            continue
        sizes[f"XOR+{name}"] = lay.data_offset + sum(map(len, parts))
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seq", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--md", type=Path)
    ap.add_argument("--level", choices=("fast", "quick"), default="fast", help="lmgc's level (default fast)")
    args = ap.parse_args()
    level = args.level
    manifest = json.loads((args.seq / "sequences.json").read_text())
    families = sorted({f["family"] for f in manifest["files"]}, key=lambda f: (f in _held_out(manifest), f))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fam in families:
            for kind, dt, k in PAIRS:
                new, ref = (
                    args.seq / f"{fam}_{kind}_{dt}_t{k}.safetensors",
                    args.seq / f"{fam}_{kind}_{dt}_t0.safetensors",
                )
                if not new.exists():
                    continue
                alone, with_ref, out = Path(tmp) / "a.lmgc", Path(tmp) / "b.lmgc", Path(tmp) / "b.out"
                a = encode_file(new, alone, EncodeOptions(level=level), overwrite=True)
                b = encode_file(new, with_ref, EncodeOptions(level=level, reference=str(ref)), overwrite=True)
                decode_file(with_ref, out, DecodeOptions(reference=str(ref)), overwrite=True)
                assert out.read_bytes() == new.read_bytes(), new.name
                sizes = xor_baseline(new, ref)
                how = min(sizes, key=lambda c: sizes[c])
                xor = sizes[how]
                row = {
                    "family": fam, "split": "held_out" if fam in _held_out(manifest) else "tuning",
                    "pair": f"{kind} {dt} T+{k} vs T", "file": new.stat().st_size, "alone": a.archive_size,
                    "reference": b.archive_size, "xor_best": xor, "xor_codec": how,
                    "xor_zipnn": sizes.get("XOR+ZipNN"), "level": level,
                }  # fmt: skip
                rows.append(row)
                print(
                    f"{fam:12s} {row['pair']:24s} alone {a.archive_size:>10,} ref {b.archive_size:>10,} "
                    f"({b.archive_size / a.archive_size:.3f}) {how} {xor:>10,} (ref/xor {b.archive_size / xor:.3f}) "
                    f"XOR+ZipNN {sizes.get('XOR+ZipNN', 0):>10,}",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    if args.md:
        lines = [
            f"| family | split | pair | lmgc {level} | with --reference | / alone | XOR + best classical | / XOR "
            "| XOR + ZipNN | / XOR + ZipNN |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['family']} | {r['split']} | {r['pair']} | {r['alone']:,} | {r['reference']:,} | "
                f"{r['reference'] / r['alone']:.3f} | {r['xor_best']:,} ({r['xor_codec']}) | "
                f"{r['reference'] / r['xor_best']:.3f} | {r['xor_zipnn'] or 0:,} | "
                f"{r['reference'] / r['xor_zipnn'] if r['xor_zipnn'] else 0:.3f} |"
            )
        args.md.write_text("\n".join(lines) + "\n")


def _held_out(manifest: dict[str, list[dict[str, str]]]) -> set[str]:
    return {f["family"] for f in manifest["files"] if f["split"] == "held_out"}


if __name__ == "__main__":
    main()
