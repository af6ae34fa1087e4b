"""Escaping untrusted strings where they are shown: terminal (rich), markdown, CSV, HTML, plots.

Model names, run ids, server error bodies, plugin messages and board labels come from outside. Shown raw
they can crash rich (``[/]`` is a markup tag), restyle or spoof the terminal (``[bold red]``, escape
sequences, bidi overrides), inject markup into a published table (``<script>``) or a formula into a
spreadsheet (``=HYPERLINK(...)``). Every renderer passes such strings through one of these functions at
the point of output; the data on disk keeps the original text.
"""

from __future__ import annotations

import html
import re

from rich.markup import escape as _rich_escape

# C0 controls but tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates, lone surrogates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_LINE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")


def _visible(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: object, *, newlines: bool = True) -> str:
    """``text`` with every character that could drive a terminal or reorder what is shown replaced by a
    visible escape (``\\x1b``, ``\\u202e``); ``newlines=False`` escapes line breaks and tabs too."""
    s = text if isinstance(text, str) else str(text)
    return (_UNSAFE if newlines else _UNSAFE_LINE).sub(_visible, s)


def markup(text: object, *, newlines: bool = True) -> str:
    """Safe to embed in a rich markup string (``console.print(f"[dim]{markup(name)}[/]")``)."""
    return _rich_escape(printable(text, newlines=newlines))


def json_text(text: str) -> str:
    """JSON text safe for a terminal: C1 controls, DEL and bidi characters as ``\\uXXXX`` escapes (still
    valid JSON; C0 controls are escaped by every JSON encoder already)."""
    return re.sub("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]",
                  lambda m: f"\\u{ord(m.group()):04x}", text)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}()#+!|~])")


def md(text: object) -> str:
    """Plain text inside a markdown table cell or paragraph: no HTML, no links, emphasis or cell breaks."""
    s = printable(text, newlines=False)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", s)


def csv_field(text: object) -> str:
    """A CSV text field that a spreadsheet will not run as a formula (OWASP: prefix with a quote)."""
    s = printable(text, newlines=False)
    return "'" + s if s[:1] in ("=", "+", "-", "@") else s


def html_text(text: object) -> str:
    """Text or attribute value in HTML."""
    return html.escape(printable(text), quote=True)


def plot_text(text: object) -> str:
    """A matplotlib label: no mathtext (``$...$`` would be parsed, and can fail to draw)."""
    return printable(text, newlines=False).replace("$", r"\$")


__all__ = ["csv_field", "html_text", "json_text", "markup", "md", "plot_text", "printable"]


def short_repr(value: object, limit: int = 60) -> str:
    """A value as an error message quotes it: its ``repr``, cut to ``limit`` characters (a hostile value in a
    file or an argument can be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
