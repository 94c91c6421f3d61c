#!/usr/bin/env bash
# Set up, then the main job on a shipped real gradient with the default model:
# compress with the LM level (--level max: the LM codes every float byte), decompress with it (checks
# every CRC and the SHA-256), compare byte for byte, inspect. The default level, auto, codes a file this
# small with the fast level at once: the LM's ~1 % cannot pay for the model record its header carries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
SAMPLE=${1:-samples/convnet_digits_fp32.safetensors}
OUT=${OUT_DIR:-out}
mkdir -p "$OUT"
name=$(basename "$SAMPLE")
.venv/bin/lmgc-tui compress "$SAMPLE" -o "$OUT/$name.lmgc" -f --level max
.venv/bin/lmgc-tui decompress "$OUT/$name.lmgc" -o "$OUT/$name" -f
cmp "$SAMPLE" "$OUT/$name" && echo "round trip: $OUT/$name is identical to $SAMPLE, byte for byte"
.venv/bin/lmgc-tui inspect "$OUT/$name.lmgc"
