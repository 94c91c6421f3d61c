"""An archive description (``describe_archive``) as rich tables, shared by the CLI and the app."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.table import Table

from .fmt import plain


def _overhead(info: dict[str, Any]) -> str:
    o = info["overhead"]
    if info.get("stored"):
        return f"{o['total']:,} bytes: the file is stored as it is (coding would not have made it smaller)"
    return (
        f"{o['total']:,} bytes beyond the coded data: preamble {o['preamble']}, header {o['header']:,} "
        f"(tensor table {o['tensor_table']:,}), index {o['index']:,}, frame heads {o['frame_heads']:,}, "
        f"footer {o['footer']}"
    )


def inspect_renderables(info: dict[str, Any], with_chunks: bool) -> list[RenderableType]:
    """What `lmgc-tui inspect` prints, as rich renderables (the app's Inspect tab shows the same)."""
    out: list[RenderableType] = []
    t = info["totals"]
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    m, ser, win = info["model"], info["serialization"], info["windows"]
    rows = [
        (
            "archive",
            f"{info['file']} ({info['archive_size']:,} bytes, format {info['format_version']}, "
            f"{info['created_by'] or 'writer not recorded'})",
        ),
        (
            "original",
            f"{info['source']['size']:,} bytes, {info['source']['tensor_count']} tensors, "
            f"SHA-256 {info['source']['sha256']}{'…' if len(info['source']['sha256']) < 64 else ''}",
        ),
        ("size", f"{t['percent_of_original']} % of original, {t['data_bits_per_byte']} bits/byte of tensor data"),
        ("overhead", _overhead(info)),
        (
            "portable",
            "yes: decodes byte-exact on any machine"
            if info["portable"]
            else "no: LM chunks decode only where the LM computes as the encoder's machine did",
        ),
        (
            "model",
            "none (no chunk needed one)"
            if m is None
            else f"{m['id']} ({m['kind']}, {m['architecture']}, {m['dtype']}, vocab {m['vocab_size']})",
        ),
        ("fingerprint", "-" if m is None else m["sha256"]),
        (
            "scheme",
            f"{ser['scheme']}, {ser['byte_order']}, bytes/group {ser['bytes_per_group'] or 'dtype size'}, "
            f"alphabet {ser['alphabet_size']} tokens",
        ),
        (
            "windows",
            f"{win['window_bytes']} bytes, batch {win['batch']}, head {win['head']}, {win['procedure']}",
        ),
        (
            "coder",
            f"{info['coder'].get('name')} {info['coder'].get('quant_bits', info['coder'].get('probability_bits'))}-bit",
        ),
        (
            "filters",
            ", ".join(f"{f['tensor']} ({f['kind']})" for f in info["filters"])
            or "none (no tensor's lines sum to zero)",
        ),
        *(
            [("rows", ", ".join(f"{r['tensor']} ({r['row']} per row)" for r in info["rows"]))]
            if info.get("rows")
            else []
        ),
        *(
            [
                (
                    "reference",
                    f"SHA-256 {info['reference']['sha256'][:16]}… over {len(info['reference']['tensors'])} "
                    "tensor(s) coded against it (decode with --reference)",
                )
            ]
            if info.get("reference")
            else []
        ),
        ("runtime", ", ".join(f"{k} {v}" for k, v in info["runtime"].items()) or "not recorded (no LM chunk)"),
        (
            "chunks",
            f"{t['chunks']} ({', '.join(f'{k} {v}' for k, v in t['codecs'].items())}), "
            f"{t['lm_tokens']:,} LM tokens, encoded in {t['encode_seconds']} s",
        ),
        (
            "LM coder",
            "not used"
            if t["lm_bits_per_byte"] is None
            else f"{t['lm_bits_per_byte']} bits/byte ({100 * t['lm_bits_per_byte'] / 8:.2f} %) on what it coded; "
            "a chunk keeps zstd/shuffle/raw where they are smaller",
        ),
    ]
    for k, v in rows:
        summary.add_row(k, plain(v))  # values hold file and tensor names: never markup
    out.append(summary)
    table = Table(title="per tensor", title_justify="left")
    for col, just in (
        ("tensor", "left"),
        ("dtype", "left"),
        ("shape", "left"),
        ("what", "left"),
        ("bytes", "right"),
        ("bits/value", "right"),
        ("bits/byte", "right"),
        ("LM bits/byte", "right"),
        ("% of original", "right"),
    ):
        # A name is never folded: in a narrow terminal it is shortened with an ellipsis (--wide and pipes
        # show it whole); the other columns are short.
        table.add_column(col, justify=just, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
    for row in info["tensors"]:
        table.add_row(
            plain(row["name"]),
            row["dtype"],
            "×".join(map(str, row["shape"])) or "scalar",
            row["representation"],
            f"{row['bytes']:,}",
            "-" if row["bits_per_value"] is None else f"{row['bits_per_value']:.3f}",
            "-" if row["bits_per_byte"] is None else f"{row['bits_per_byte']:.3f}",
            "-" if row["lm_bits_per_byte"] is None else f"{row['lm_bits_per_byte']:.3f}",
            "-" if row["percent"] is None else f"{row['percent']:.2f}",
        )
    out.append(table)
    if with_chunks:
        ct = Table(title="chunks", title_justify="left")
        for col in ("#", "codec", "data offset", "bytes", "payload", "model bits", "crc32"):
            ct.add_column(col, justify="right")
        for c in info["chunks"]:
            ct.add_row(
                str(c["index"]),
                c["codec"],
                f"{c['data_offset']:,}",
                f"{c['data_length']:,}",
                f"{c['payload_length']:,}",
                f"{c['model_bits']:,}",
                c["crc32"],
            )
        out.append(ct)
    return out
