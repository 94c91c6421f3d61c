"""On a CUDA machine: round trips decoded in a fresh process, and engine speed (EXPERIMENTS.md "CUDA").

    python scripts/cuda_check.py OUTDIR [quick]

Round trips use the tests' tiny Llama; speed uses a model of SmolLM2-135M's shape with random weights
(speed depends on the shape; sizes are no compression result). The tokenizer comes from
$LMGC_TOKENIZER (a saved tokenizer directory) or the packaged default model. Writes
OUTDIR/cuda_check.json as it goes. ``quick``: one round trip and one small run (a dry run on a CPU).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

import tests.tiny_model as tm
from lmgc_format.bench.speed import measure
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
quick = len(sys.argv) > 2
dev = "cuda" if torch.cuda.is_available() else "cpu"
tok = (
    AutoTokenizer.from_pretrained(os.environ["LMGC_TOKENIZER"])
    if "LMGC_TOKENIZER" in os.environ
    else tm.default_tokenizer()
)
tm.TOKENIZER_CACHE["tok"] = tok
work = Path(tempfile.mkdtemp())
tiny = str(tm.make_tiny_model(work / "tiny", seed=0))
report = {"device": dev, "gpu": torch.cuda.get_device_name(0) if dev == "cuda" else None, "torch": torch.__version__}


def smol_shaped(path: Path) -> str:
    """SmolLM2-135M's shape with random weights (the real GGUF is 98 MB, over the device transfer limit)."""
    cfg = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    m = LlamaForCausalLM(cfg)
    m.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return str(path)


DECODE = (
    "import sys; sys.path.insert(0, '.'); from lmgc_format.pipeline.decoder import DecodeOptions, decode_file; "
    "r = decode_file(sys.argv[1], sys.argv[2], DecodeOptions(model=sys.argv[3])); print(r.seconds)"
)


def round_trip(src: str, model: str, **kw) -> dict:
    arc = work / "a.lmgc"
    back = work / "b.safetensors"
    for p in (arc, back):
        p.unlink(missing_ok=True)
    t = time.monotonic()
    res = encode_file(src, arc, EncodeOptions(model=model, fallback=False, **kw))
    enc_s = time.monotonic() - t
    p = subprocess.run([sys.executable, "-c", DECODE, str(arc), str(back), model], capture_output=True, text=True)
    with ArchiveReader(arc) as r:
        proc, rt = r.header.layout.procedure, r.header.runtime
    ok = p.returncode == 0 and back.read_bytes() == Path(src).read_bytes()
    return {
        "kw": kw,
        "procedure": proc,
        "runtime_device": rt.get("device"),
        "percent": round(100 * res.coded_bytes / res.data_bytes, 2),
        "encode_s": round(enc_s, 1),
        "decode": p.stdout.strip() or p.stderr.strip()[-600:],
        "identical_in_fresh_process": ok,
    }


report["roundtrips"] = []
cases = [
    ("lmgc", "float32", "comma"),
    ("lmgc", "bfloat16", "comma"),
    ("transformers", "float32", "comma"),
    ("lmgc", "float32", "iso"),
]
for engine, dtype, scheme in cases[:1] if quick else cases:
    r = round_trip(
        "samples/convnet_digits_bf16.safetensors", tiny, engine=engine, dtype=dtype, scheme=scheme, window_bytes=128
    )
    report["roundtrips"].append(r)
    print(json.dumps(r), flush=True)
    (out / "cuda_check.json").write_text(json.dumps(report, indent=1))

smol = smol_shaped(work / "smol")
if quick:
    smol = tiny
report["speed"] = []
src = Path("samples/convnet_digits_bf16.safetensors" if quick else "samples/speed/mlpwide_digits_bf16.safetensors")
runs = [
    ("lmgc", "bfloat16", False),
    ("lmgc", "float32", False),
    ("transformers", "float32", False),
    ("transformers", "bfloat16", False),
    ("lmgc", "float32", True),
]
for engine, dtype, mix in runs[:1] if quick else runs:
    t = time.monotonic()
    s = measure(src, engine, dtype, model=smol, batch=64, mixing=mix, top_byte=mix)
    o = s.to_obj()
    o["wall_s"] = round(time.monotonic() - t, 1)
    o["mixing"] = mix
    report["speed"].append(o)
    print(json.dumps(o), flush=True)
    (out / "cuda_check.json").write_text(json.dumps(report, indent=1))
print("done", flush=True)
