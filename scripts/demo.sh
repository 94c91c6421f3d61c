#!/usr/bin/env bash
# Set up, then the main job on a shipped real gradient with the default model:
# compress, decompress (checks every CRC and the SHA-256), compare byte for byte, inspect.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
SAMPLE=${1:-samples/convnet_digits_fp32.safetensors}
OUT=${OUT_DIR:-out}
mkdir -p "$OUT"
name=$(basename "$SAMPLE")
.venv/bin/lmgc-tui compress "$SAMPLE" -o "$OUT/$name.lmgc" -f
.venv/bin/lmgc-tui decompress "$OUT/$name.lmgc" -o "$OUT/$name" -f
cmp "$SAMPLE" "$OUT/$name" && echo "round trip: $OUT/$name is identical to $SAMPLE, byte for byte"
.venv/bin/lmgc-tui inspect "$OUT/$name.lmgc"
