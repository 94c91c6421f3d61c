"""The plain command line: what a user types, what they get back, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from safetensors.torch import save_file

from lmgc_format.container.constants import MAJOR, MINOR
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_tui.cli import cli
from tests.conftest import ROOT, gradient_like


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_help_lists_commands() -> None:
    code, out = run("--help")
    assert code == 0 and "compress" in out and "inspect" in out and "app" in out


def test_bare_command_opens_the_app_only_in_a_terminal(small_file: Path) -> None:
    # CliRunner gives no TTY: the app refuses with a usage error instead of hanging
    code, out = run()
    assert code == 2 and "needs a terminal" in out
    code, out = run(str(small_file))  # `lmgc-tui FILE` is `lmgc-tui app FILE`
    assert code == 2 and "needs a terminal" in out
    code, out = run("no-such-command")
    assert code == 2 and "No such command" in out


def test_compress_decompress_verify_inspect(tmp_path: Path, tiny_model: str, small_file: Path) -> None:
    arc = tmp_path / "g.safetensors.lmgc"
    args = ["--model", tiny_model, "--window-bytes", "32", "--no-fallback"]  # else the file is stored (smaller)
    code, out = run("compress", str(small_file), "-o", str(arc), *args)
    assert code == 0, out
    assert "% " in out or "%)" in out
    restored = tmp_path / "g.safetensors"
    code, out = run("decompress", str(arc), "--model", tiny_model)
    assert code == 0, out
    assert restored.read_bytes() == small_file.read_bytes()
    code, out = run("verify", str(arc), "--model", tiny_model)
    assert code == 0 and "verified" in out
    code, out = run("inspect", str(arc), "--json")
    assert code == 0
    info = json.loads(out)
    assert set(info) >= {
        "file", "format_version", "archive_size", "source", "model", "serialization",
        "windows", "coder", "filters", "runtime", "totals", "tensors", "chunks",
    }  # fmt: skip
    assert info["format_version"] == f"{MAJOR}.{MINOR}"
    assert info["filters"] == []  # random values: no line sums to zero
    assert info["model"]["kind"] == "hf-dir" and len(info["model"]["sha256"]) == 64
    assert info["serialization"]["scheme"] == "comma"
    assert info["windows"]["window_bytes"] == 32
    assert {t["name"] for t in info["tensors"]} == {"layer.weight", "layer.bias", "steps"}
    for t in info["tensors"]:
        # A 24-byte tensor coded first in its chunk pays ~8 bits a byte before the models have learned
        # anything (random tiny LM), plus its share of the range coder's flush: sane, not "at most raw".
        assert t["bits_per_byte"] is None or 0 < t["bits_per_byte"] <= 9.0
    assert info["source"]["size"] == small_file.stat().st_size
    assert sum(c["data_length"] for c in info["chunks"]) == info["source"]["data_bytes"]
    code, out = run("inspect", str(arc), "--chunks")
    assert code == 0 and "layer." in out and "bits/byte" in out and "LM coder" in out
    assert "filters" in out and "none" in out


def test_overwrite_refused_with_exit_8(tmp_path: Path, tiny_model: str, small_file: Path) -> None:
    arc = tmp_path / "g.lmgc"
    arc.write_text("keep me")
    code, out = run("compress", str(small_file), "-o", str(arc), "--model", tiny_model)
    assert code == 8
    assert "already exists" in out and "Traceback" not in out
    assert arc.read_text() == "keep me"


def test_missing_input_and_bad_archive(tmp_path: Path) -> None:
    code, out = run("compress", str(tmp_path / "nope.safetensors"))
    assert code == 3 and "no such file" in out
    junk = tmp_path / "junk.lmgc"
    junk.write_bytes(b"hello world, not an archive at all")
    code, out = run("inspect", str(junk))
    assert code == 4 and "not an lmgc archive" in out
    code, out = run("decompress", str(junk), "-o", str(tmp_path / "x"))
    assert code == 4 and not (tmp_path / "x").exists()


def test_verify_fails_on_damage(tmp_path: Path, tiny_model: str, small_file: Path) -> None:
    arc = tmp_path / "g.lmgc"
    assert run("compress", str(small_file), "-o", str(arc), "--model", tiny_model, "--no-fallback", "-q")[0] == 0
    with ArchiveReader(arc) as r:
        off = r.payload_offset(len(r.index.chunks) - 1)
    data = bytearray(arc.read_bytes())
    data[off] ^= 1
    arc.write_bytes(bytes(data))
    code, out = run("verify", str(arc), "--model", tiny_model)
    assert code == 5 and "damaged" in out


def test_models_lists_default() -> None:
    code, out = run("models")
    assert code == 0 and "smollm2-135m" in out and "installed" in out


LONG_NAME = "encoder.layers.0.self_attention.query_key_value.weight.gradx"  # 60 characters


def _piped(*args: str) -> str:
    """Run lmgc-tui with stdout to a pipe, as `... | grep` does (not CliRunner: a real process)."""
    proc = subprocess.run(
        [sys.executable, "-m", "lmgc_tui", *args], capture_output=True, text=True, cwd=ROOT, timeout=600, check=True
    )
    return proc.stdout


def test_tables_in_a_pipe_keep_long_names_on_one_line(tmp_path: Path) -> None:
    """Rich would fold a 60-character name over three lines at 80 columns; grep must find it whole."""
    assert len(LONG_NAME) == 60
    src = tmp_path / ("g" * 70 + ".safetensors")
    save_file({LONG_NAME: gradient_like((8, 8), 1), "b": gradient_like((8,), 2)}, str(src))
    arc = tmp_path / "g.lmgc"
    encode_file(src, arc, EncodeOptions(level="fast"))
    assert any(LONG_NAME in line for line in _piped("inspect", str(arc)).splitlines())
    bench = _piped("bench", str(src), "--codecs", "zstd-19", "--levels", "fast", "-q")
    assert any(src.name in line for line in bench.splitlines())
    models = _piped("models")
    assert any(line.count("/") >= 4 and ".gguf" in line for line in models.splitlines())  # the whole path


def test_stdin_stdout_several_files_and_zstd_habits(tmp_path: Path) -> None:
    """zstd/xz habits (issue 21, item 11): - for standard input and output, several inputs, -k."""
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((32, 32), 1)}, str(src))
    runner = CliRunner()
    res = runner.invoke(cli, ["compress", "-", "-o", "-", "--level", "fast", "-q"], input=src.read_bytes())
    assert res.exit_code == 0, res.output
    archive = res.stdout_bytes
    assert archive[:8] == b"\x89LMGC\r\n\x1a"
    (tmp_path / "a.lmgc").write_bytes(archive)
    res = runner.invoke(cli, ["decompress", "-c", str(tmp_path / "a.lmgc"), "-q"])
    assert res.exit_code == 0 and res.stdout_bytes == src.read_bytes()
    res = runner.invoke(cli, ["decompress", "-", "-q"], input=archive)  # stdin in: stdout out
    assert res.exit_code == 0 and res.stdout_bytes == src.read_bytes()
    other = tmp_path / "h.safetensors"
    save_file({"v": gradient_like((8, 8), 2)}, str(other))
    res = runner.invoke(cli, ["compress", str(src), str(other), "-k", "--level", "fast", "-q"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "g.safetensors.lmgc").exists() and (tmp_path / "h.safetensors.lmgc").exists()
    assert src.exists() and other.exists()  # -k: inputs are never deleted anyway
    res = runner.invoke(cli, ["compress", str(src), str(other), "-o", str(tmp_path / "x.lmgc")])
    assert res.exit_code == 2 and "one input" in res.output
    res = runner.invoke(cli, ["decompress", str(tmp_path / "g.safetensors.lmgc"), "--force", "-o", os.devnull, "-f"])
    assert res.exit_code == 0, res.output  # the old spelling of --ignore-model-mismatch still works
