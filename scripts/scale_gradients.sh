# Sourced by bench_scale.sh and bench_frontier.sh (from the repository root, the venv made): the real
# SmolLM2-135M fine-tuning gradients of ~10 and ~120 MB, fp32 and a bf16 cast, made by corpus/make_large.py
# into OUT (OUT_DIR, default out/scale) unless they are there already.
OUT=${OUT_DIR:-out/scale}
mkdir -p "$OUT" benchmarks
for mb in 10 120; do
  f="$OUT/smollm2_${mb}mb_fp32.safetensors"
  [ -f "$f" ] || .venv/bin/python corpus/make_large.py "$f" --max-mb "$mb" --bf16
done
