#!/usr/bin/env bash
# Size against speed (BENCHMARKS.md "Speed and size"): real SmolLM2-135M fine-tuning gradients made by
# corpus/make_large.py (~10 and ~120 MB, fp32 and a bf16 cast; not committed), through lmgc's quick and fast
# levels and the classical codecs of the speed-size curve, every output decoded and compared; then the plot.
# About 25 minutes on 2 CPU cores. OUT_DIR (default out/scale) holds the gradients.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/scale_gradients.sh
.venv/bin/lmgc-tui bench "$OUT"/smollm2_10mb_*.safetensors "$OUT"/smollm2_120mb_*.safetensors \
  --codecs zstd-3,zstd-19,xz-9e,bytesplit+xz-9,blosc2shuffle+zstd,blosc2bitshuffle+zstd,ZipNN,pcodec \
  --levels quick,fast "$@" --save benchmarks/frontier.json --markdown > benchmarks/frontier.md
.venv/bin/python scripts/frontier_plot.py benchmarks/frontier.json benchmarks/frontier.png
echo "wrote benchmarks/frontier.md, frontier.json and frontier.png"
