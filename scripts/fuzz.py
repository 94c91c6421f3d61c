"""Time-boxed fuzzing of the archive reader and decoder (no model needed).

Mutates the committed plain golden archive (byte edits, bit flips, truncations,
splices, random files) and checks the one property that matters: every input ends
in a clean ``LmgcError`` or decodes to exactly the original bytes. Anything else
(another exception, a hang past the per-case limit, wrong bytes) is a finding.

    python scripts/fuzz.py --seconds 300
    python scripts/fuzz.py --seconds 60 --write-corpus tests/data/fuzz   # keep one file per distinct error
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmgc_format.decoder import decode_file  # noqa: E402
from lmgc_format.errors import LmgcError  # noqa: E402

SEED = ROOT / "tests" / "data" / "golden_ints.safetensors.lmgc"
ORIGINAL = ROOT / "tests" / "data" / "golden_ints.safetensors"


def mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    kind = rng.randrange(6)
    if kind == 0:  # flip bits
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # overwrite bytes with extreme values
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    elif kind == 2:  # truncate
        data = data[: rng.randrange(len(data) + 1)]
    elif kind == 3:  # splice a block from elsewhere
        a, b = sorted(rng.randrange(len(data)) for _ in range(2))
        j = rng.randrange(len(data))
        data[j : j + (b - a)] = data[a:b]
    elif kind == 4:  # insert junk
        j = rng.randrange(len(data) + 1)
        data[j:j] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:  # random file
        data = bytearray(rng.randbytes(rng.randint(0, 2048)))
    return bytes(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write-corpus", type=Path, help="keep mutated archives with distinct errors here")
    ap.add_argument("--corpus-size", type=int, default=40, help="how many to keep (spread over the distinct errors)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    raw, original = SEED.read_bytes(), ORIGINAL.read_bytes()
    cases = rejected = decoded_ok = 0
    findings: list[str] = []
    kept: dict[str, bytes] = {}
    deadline = time.monotonic() + args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "case.lmgc", Path(tmp) / "out.safetensors"
        while time.monotonic() < deadline:
            data = mutate(rng, raw)
            path.write_bytes(data)
            out.unlink(missing_ok=True)
            cases += 1
            t0 = time.monotonic()
            try:
                decode_file(path, out)
            except LmgcError as exc:
                rejected += 1
                key = type(exc).__name__ + ": " + "".join(c for c in str(exc)[:40] if not c.isdigit())
                kept.setdefault(key, data)
                if out.exists():
                    findings.append(f"case {cases}: error but an output was left: {exc}")
            except Exception:
                findings.append(f"case {cases}: crash\n{traceback.format_exc()}")
            else:
                if out.read_bytes() != original:
                    findings.append(f"case {cases}: decoded to WRONG bytes")
                else:
                    decoded_ok += 1
            if time.monotonic() - t0 > 5:
                findings.append(f"case {cases}: took {time.monotonic() - t0:.1f} s")
    if args.write_corpus:
        args.write_corpus.mkdir(parents=True, exist_ok=True)
        for old in args.write_corpus.glob("case*.lmgc"):
            old.unlink()
        items = sorted(kept.items())
        step = max(1, len(items) // args.corpus_size)
        for i, (_key, data) in enumerate(items[::step][: args.corpus_size]):
            (args.write_corpus / f"case{i:03d}.lmgc").write_bytes(data)
    print(
        f"{cases} cases in {args.seconds:.0f} s: {rejected} rejected with an LmgcError, "
        f"{decoded_ok} decoded to the exact original, {len(findings)} findings, "
        f"{len(kept)} distinct errors"
    )
    for f in findings[:20]:
        print(f)
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
