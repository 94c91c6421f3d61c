"""Formatting shared by the command line and the app (no Textual import: the CLI uses it): numbers, and
user-supplied strings (file and tensor names) made safe to show."""

from __future__ import annotations

from rich.text import Text


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GiB"


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "–:–"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def progress_line(done: int, total: int, tokens: int, elapsed: float) -> str:
    """ "1.2 KiB / 3.2 KiB  25 B/s  49 tok/s  ETA 1:20" from a Progress event and the time since Started."""
    elapsed = max(elapsed, 1e-6)
    rate = done / elapsed
    eta = (total - done) / rate if rate > 0 else None
    return (
        f"{human_bytes(done)} / {human_bytes(total)}  {human_bytes(rate)}/s  "
        f"{tokens / elapsed:,.0f} tok/s  ETA {eta_text(eta)}"
    )


def printable(s: object) -> str:
    """``s`` with every control character shown as an escape (``\\x1b``, ``\\u202e``), so that a tensor or
    file name can never set the terminal's title or colours, move the cursor or reorder the line."""
    text = str(s)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def shown(s: object) -> str:
    """``s`` ready to sit inside Rich/Textual markup: control characters escaped, brackets taken literally."""
    from rich.markup import escape

    return escape(printable(s))


def plain(s: object) -> Text:
    """``s`` as a Rich Text (never parsed as markup), control characters escaped: for table cells."""
    return Text(printable(s))
