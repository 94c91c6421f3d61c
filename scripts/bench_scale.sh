#!/usr/bin/env bash
# The scale benchmark (BENCHMARKS.md, first table): real SmolLM2-135M fine-tuning gradients made here by
# corpus/make_large.py (~120 MB and ~10 MB, fp32 and a bf16 cast; not committed), through the classical
# codecs that matter for floats and lmgc's fast and auto levels, every output decoded and compared.
# About 20 minutes on 2 CPU cores. OUT_DIR (default out/scale) holds the gradients.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/scale_gradients.sh
.venv/bin/lmgc-tui bench "$OUT"/smollm2_10mb_*.safetensors "$OUT"/smollm2_120mb_*.safetensors \
  --codecs zstd-19,xz-9e,blosc2shuffle+zstd,blosc2bitshuffle+zstd,bytesplit+xz-9,ZipNN,FLAC \
  --levels fast,auto "$@" --save benchmarks/scale.json --markdown > benchmarks/scale.md
echo "wrote benchmarks/scale.md and benchmarks/scale.json"
