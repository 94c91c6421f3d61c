"""Bench reports as a rich table or Markdown (the numbers come from lmgc_format.bench)."""

from __future__ import annotations

from rich.table import Table

from lmgc_format.bench.positions import PositionRow
from lmgc_format.bench.runner import CodecResult, FileReport
from lmgc_format.bench.speed import SpeedResult

from .fmt import plain


def _rate(bps: float | None) -> str:
    if bps is None:
        return "-"
    if bps == float("inf"):
        return "∞"
    for unit in ("B/s", "KB/s", "MB/s", "GB/s"):
        if bps < 1000 or unit == "GB/s":
            return f"{bps:,.0f} {unit}" if unit == "B/s" else f"{bps:,.1f} {unit}"
        bps /= 1000
    return ""


def _row(r: CodecResult) -> list[str]:
    ok = "not decoded" if r.estimate else "-" if r.roundtrip is None else ("yes" if r.roundtrip else "NO")
    return [
        r.codec,
        "-" if r.size is None else f"{r.size:,}",
        "-" if r.percent is None else f"{r.percent:.2f}",
        _rate(r.encode_bps),
        _rate(r.decode_bps),
        ok,
        r.note,
    ]


HEADERS = ("codec", "bytes", "% of original", "encode", "decode", "round trip", "note")


def summary(report: FileReport) -> str:
    best = report.best_classical()
    parts = [f"{report.file}: {report.data_bytes:,} bytes of {report.dtype} tensor data"]
    if best is not None:
        parts.append(f"best classical {best.codec} {best.percent:.2f} %")
        for r in report.lm_results():
            if (r.ranked or r.estimate) and r.size is not None and best.size:
                parts.append(f"{r.codec} / best classical = {r.size / best.size:.3f}")
    return "; ".join(parts)


def _ordered(report: FileReport) -> list[CodecResult]:
    """Smallest first among sizes that count (verified round trips, and estimates), then the rest."""
    sized = sorted((r for r in report.results if r.ranked or r.estimate), key=lambda r: r.size or 0)
    return sized + [r for r in report.results if r not in sized]


def bench_table(report: FileReport) -> Table:
    """The file's results; its summary line is printed apart (a table's title wraps at the table's width,
    which would fold a long file name in a pipe)."""
    table = Table()
    for h in HEADERS:
        # the note may wrap (it is prose); names and numbers are never folded (ellipsis in a narrow terminal)
        wrap = h == "note"
        table.add_column(
            h,
            justify="left" if h in ("codec", "note") else "right",
            overflow="fold" if wrap else "ellipsis",
            no_wrap=not wrap,
        )
    for r in _ordered(report):
        style = "bold green" if r.codec.startswith(report.lm_name) else ("dim" if not r.ranked else "")
        table.add_row(*(plain(cell) for cell in _row(r)), style=style)
    return table


def bench_markdown(reports: list[FileReport]) -> str:
    out: list[str] = []
    for report in reports:
        out.append(f"**{summary(report)}**\n")
        out.append("| " + " | ".join(HEADERS) + " |")
        out.append("|" + "---|" * len(HEADERS))
        for r in _ordered(report):
            cells = _row(r)
            if r.codec.startswith(report.lm_name):
                cells[0], cells[2] = f"**{cells[0]}**", f"**{cells[2]}**"
            out.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
        out.append("")
    return "\n".join(out)


SPEED_HEADERS = (
    "engine",
    "dtype",
    "batch",
    "tokens",
    "encode tok/s",
    "encode",
    "decode tok/s",
    "decode",
    "% of original",
    "round trip",
    "peak RSS",
)


def _speed_row(r: SpeedResult) -> list[str]:
    return [
        f"{r.engine} ({r.procedure})",
        r.dtype,
        str(r.batch),
        f"{r.tokens:,}",
        f"{r.encode_tps:,.0f}",
        _rate(r.encode_bps),
        f"{r.decode_tps:,.0f}",
        _rate(r.decode_bps),
        f"{r.percent:.2f}",
        "yes" if r.roundtrip else "NO",
        f"{r.peak_rss_mb:,.0f} MB",
    ]


def _table(title: str, headers: tuple[str, ...], rows: list[list[str]], left: tuple[str, ...]) -> Table:
    table = Table(title=plain(title), title_justify="left")
    for h in headers:
        table.add_column(h, justify="left" if h in left else "right")
    for cells in rows:
        table.add_row(*(plain(cell) for cell in cells))
    return table


def _markdown(file: str, headers: tuple[str, ...], rows: list[list[str]]) -> str:
    lines = [f"**{file}**", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def speed_table(file: str, results: list[SpeedResult]) -> Table:
    title = f"{file}: LM engine speed (every chunk LM-coded, round trip checked)"
    return _table(title, SPEED_HEADERS, [_speed_row(r) for r in results], ("engine", "dtype", "round trip"))


def speed_markdown(file: str, results: list[SpeedResult]) -> str:
    return _markdown(file, SPEED_HEADERS, [_speed_row(r) for r in results])


POSITION_HEADERS = ("byte position", "bytes", "coded bits/byte", "order-0 entropy bits/byte", "coded - order-0")


def _position_cells(r: PositionRow, group: int) -> list[str]:
    if r.position < 0:
        return ["separator", f"{r.nbytes:,}", f"{r.lm_bits_per_byte:.3f}", "-", "-"]
    name = f"{r.position}" + (" (msb: sign/exponent)" if r.position == 0 and group > 1 else "")
    diff = r.lm_bits_per_byte - r.order0_bits_per_byte
    return [name, f"{r.nbytes:,}", f"{r.lm_bits_per_byte:.3f}", f"{r.order0_bits_per_byte:.3f}", f"{diff:+.3f}"]


def _position_rows(rows: list[PositionRow]) -> list[list[str]]:
    group = sum(1 for r in rows if r.position >= 0)
    return [_position_cells(r, group) for r in rows]


def positions_table(file: str, rows: list[PositionRow]) -> Table:
    title = f"{file}: bits the coder spends per byte position vs order-0 entropy"
    return _table(title, POSITION_HEADERS, _position_rows(rows), ("byte position",))


def positions_markdown(file: str, rows: list[PositionRow]) -> str:
    return _markdown(file, POSITION_HEADERS, _position_rows(rows))
