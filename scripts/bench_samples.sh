#!/usr/bin/env bash
# Reproduce BENCHMARKS.md: every shipped sample through every classical codec and the LM codec
# (default model), each output decoded and compared. About an hour on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip --disable-pip-version-check -q install -e ".[bench]"
mkdir -p benchmarks
.venv/bin/lmgc-tui bench samples/*_fp32.safetensors samples/*_bf16.safetensors "$@" \
  --save benchmarks/results.json --markdown > benchmarks/results.md
echo "wrote benchmarks/results.md and benchmarks/results.json"
