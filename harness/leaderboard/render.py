"""Rendering a :class:`~harness.leaderboard.aggregate.BoardTable` for people and for other tools: a rich
terminal table, GitHub markdown (with the table's data embedded in an HTML comment), tidy CSV, JSON and a
self-contained sortable HTML page. :func:`render` picks one by format name, :func:`publish` regenerates a
board's markdown file from the run index, and :func:`read_table` reads a published JSON or markdown table
back so it can be compared exactly. The cell and value formatters are shared with the compare module.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any

import orjson

from harness import store
from harness.escaping import csv_field, html_text, json_text, markup, md
from harness.leaderboard.aggregate import BoardTable, Cell, aggregate
from harness.leaderboard.schema import Board, BoardError, Column

DATA_MARKER = "harness-board-data"
MAX_TABLE_BYTES = 64 << 20


def fmt_value(v: float, fmt: str) -> str:
    if not math.isfinite(v):
        return "n/a"
    return f"{100 * v:.1f}" if fmt == "pct" else f"{v:.3g}"


def fmt_cell(cell: Cell | None, col: Column, *, ci: bool = True) -> str:
    if cell is None:
        return "–"
    text = fmt_value(cell.value, col.fmt())
    if ci and cell.has_ci:
        text += f" [{fmt_value(cell.ci_low, col.fmt())}, {fmt_value(cell.ci_high, col.fmt())}]"
    return text


def _has_groups(table: BoardTable) -> bool:
    return any(r.group for r in table.rows)


def _legend(table: BoardTable) -> str:
    pct = any(c.fmt() == "pct" for c in table.columns)
    return (f"Cells: value [95% CI]{' (percent)' if pct else ''}; one run per cell, selected by "
            f"'{table.select}' among complete runs; – means no run.")


def to_rich(table: BoardTable) -> Any:
    """A rich table; every label, title and caption is escaped (a model named ``x[/]y`` is shown as it is)."""
    from rich.table import Table

    t = Table(title=markup(table.title), caption=markup(_legend(table)), title_justify="left",
              caption_justify="left")
    if _has_groups(table):
        t.add_column("group", style="dim")
    t.add_column("row", style="bold")
    for c in table.columns:
        t.add_column(markup(c.title, newlines=False), justify="right")
    last_group = None
    for r in table.rows:
        if _has_groups(table) and last_group is not None and r.group != last_group:
            t.add_section()
        last_group = r.group
        cells = [fmt_cell(r.cells.get(c.key), c) for c in table.columns]
        t.add_row(*(markup(x, newlines=False) for x in ([r.group] if _has_groups(table) else []) + [r.label]),
                  *cells)
    return t



def to_markdown(table: BoardTable, *, embed_data: bool = True) -> str:
    """A GitHub markdown table. With ``embed_data``, the table's data rides along in an HTML comment so
    ``compare`` can read a published table back exactly."""
    groups = _has_groups(table)
    head = (["Group"] if groups else []) + ["Model"] + [c.title for c in table.columns]
    lines = [f"# {md(table.title)}", ""]
    if table.description:
        lines += [md(table.description.strip()), ""]
    lines += ["| " + " | ".join(md(h) for h in head) + " |",
              "|" + "|".join([":---"] * (len(head) - len(table.columns)) + ["---:"] * len(table.columns)) + "|"]
    for r in table.rows:
        cells = [fmt_cell(r.cells.get(c.key), c) for c in table.columns]  # our own numbers: nothing to escape
        lines.append("| " + " | ".join([*(md(x) for x in ([r.group] if groups else []) + [r.label]), *cells])
                     + " |")
    lines += ["", md(_legend(table)), ""]
    cols = ", ".join(f"{c.title} = {c.task}/{c.split} {c.metric}" for c in table.columns)
    lines += [f"Columns: {md(cols)}.", ""]
    if embed_data:
        data = json_text(store.dumps(_jsonable(_portable(table.to_dict()))).decode())
        # never close the comment early, and no raw markup or terminal controls even inside it
        data = data.replace("--", "-\\u002d").replace("<", "\\u003c").replace(">", "\\u003e")
        lines += [f"<!-- {DATA_MARKER}", data, "-->", ""]
    return "\n".join(lines)


def _portable(data: dict[str, Any]) -> dict[str, Any]:
    """Published data keeps run ids but not this machine's paths."""
    for row in data["rows"]:
        for cell in row["cells"].values():
            if cell:
                cell["run_dir"] = ""
    return data


def to_csv(table: BoardTable) -> str:
    """Tidy CSV: one line per (row, column) cell with its interval, n and the run it came from."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["group", "row", "column", "task", "split", "metric", "value", "ci_low", "ci_high", "n",
                "run_id", "seed", "flops", "recipe"])
    for r in table.rows:
        for c in table.columns:
            cell = r.cells.get(c.key)
            base = [csv_field(x) for x in (r.group, r.label, c.title, c.task, c.split, c.metric)]
            if cell is None:
                w.writerow([*base, "", "", "", "", "", "", "", ""])
            else:
                w.writerow([*base, _num(cell.value), _num(cell.ci_low), _num(cell.ci_high), cell.n,
                            csv_field(cell.run_id), "" if cell.seed is None else cell.seed,
                            "" if cell.flops is None else repr(cell.flops), csv_field(cell.recipe or "")])
    return buf.getvalue()


def _num(v: float) -> str:
    return "" if not math.isfinite(v) else repr(v)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def to_json(table: BoardTable) -> str:
    return store.dumps(_jsonable(table.to_dict()), indent=True).decode()


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#1b1f24}
h1{font-size:1.4em}table{border-collapse:collapse}th,td{padding:.35em .7em;border-bottom:1px solid #d0d7de}
th{cursor:pointer;user-select:none;background:#f6f8fa;text-align:left;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ci{color:#57606a;font-size:.8em;margin-left:.35em}.bar{position:relative;height:3px;background:#eaeef2;margin-top:2px}
.bar i{position:absolute;top:0;height:3px;background:#0969da}.none{color:#8c959f}caption{caption-side:bottom;
text-align:left;color:#57606a;padding-top:.6em}
"""

_JS = """
(function(){
  var table=document.getElementById('board'), heads=table.tHead.rows[0].cells;
  function key(td){var v=td.getAttribute('data-v');if(v===null||v==='')return null;
    var n=parseFloat(v);return isNaN(n)?v.toLowerCase():n;}
  function sortBy(i,dir){
    var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
      if(x===y)return 0;if(x===null)return 1;if(y===null)return -1;
      return (x<y?-1:1)*(dir==='asc'?1:-1);});
    rows.forEach(function(r){body.appendChild(r);});
    for(var j=0;j<heads.length;j++)heads[j].removeAttribute('aria-sort');
    heads[i].setAttribute('aria-sort',dir==='asc'?'ascending':'descending');
  }
  Array.prototype.forEach.call(heads,function(th,i){th.addEventListener('click',function(){
    sortBy(i,th.getAttribute('aria-sort')==='descending'?'asc':'desc');});});
  var m=location.hash.match(/sort=(\\d+)(?::(asc|desc))?/);if(m)sortBy(+m[1],m[2]||'desc');
})();
"""


def to_html(table: BoardTable) -> str:
    """One self-contained page (inline CSS and script, no external assets). Click a header to sort;
    ``page.html#sort=3:asc`` opens it sorted by the fourth column."""
    e = html_text
    groups = _has_groups(table)
    heads = (["Group"] if groups else []) + ["Model"]
    ths = [f"<th>{e(h)}</th>" for h in heads]
    ths += [f'<th title="{e(c.task)} / {e(c.split)} / {e(c.metric)}" data-key="{e(c.key)}">{e(c.title)}</th>'
            for c in table.columns]
    body = []
    for r in table.rows:
        tds = ([f'<td data-v="{e(r.group)}">{e(r.group)}</td>'] if groups else [])
        tds.append(f'<td data-v="{e(r.label)}">{e(r.label)}</td>')
        for c in table.columns:
            tds.append(_html_cell(r.cells.get(c.key), c))
        body.append("<tr>" + "".join(tds) + "</tr>")
    desc = f"<p>{e(table.description)}</p>" if table.description else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(table.title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{e(table.title)}</h1>{desc}"
            f'<table id="board"><caption>{e(_legend(table))} Click a header to sort.</caption>'
            f"<thead><tr>{''.join(ths)}</tr></thead><tbody>\n" + "\n".join(body)
            + f"\n</tbody></table><script>{_JS}</script></body></html>\n")


def _html_cell(cell: Cell | None, col: Column) -> str:
    e = html_text
    if cell is None or not math.isfinite(cell.value):
        return '<td class="num none" data-v="">–</td>'
    fmt = col.fmt()
    ci = ""
    bar = ""
    if cell.has_ci:
        ci = f'<span class="ci">[{fmt_value(cell.ci_low, fmt)}, {fmt_value(cell.ci_high, fmt)}]</span>'
        if fmt == "pct":
            lo, hi = max(0.0, cell.ci_low), min(1.0, cell.ci_high)
            bar = (f'<div class="bar"><i style="left:{100 * lo:.1f}%;width:{max(0.5, 100 * (hi - lo)):.1f}%">'
                   "</i></div>")
    tip = f"run {cell.run_id}, n={cell.n}"
    return (f'<td class="num" data-v="{cell.value!r}" title="{e(tip)}"><span class="v">'
            f"{fmt_value(cell.value, fmt)}</span>{ci}{bar}</td>")


def render(table: BoardTable, fmt: str) -> str:
    """Render to ``md``, ``csv``, ``json`` or ``html`` text (``table`` is for the terminal: see to_rich)."""
    renderers = {"md": to_markdown, "markdown": to_markdown, "csv": to_csv, "json": to_json, "html": to_html}
    if fmt not in renderers:
        raise BoardError(f"unknown format {fmt!r}; formats: table, {', '.join(renderers)}")
    return renderers[fmt](table)


def read_table(path: Path | str) -> BoardTable:
    """A published table: JSON from ``--format json``, or markdown from ``publish`` (its data comment)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if len(raw) > MAX_TABLE_BYTES:
            raise BoardError(f"{path}: {len(raw)} bytes is too big for a published table")
        text = raw.decode("utf-8")
    except OSError as exc:
        raise BoardError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BoardError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if path.suffix == ".json":
        payload = text
    else:
        m = re.search(rf"<!-- {DATA_MARKER}\n(.*?)\n-->", text, re.S)
        if not m:
            raise BoardError(f"{path}: no embedded table data (regenerate it with `harness leaderboard publish`)")
        payload = m.group(1)
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BoardError(f"{path}: the table data is not valid JSON ({exc})") from None
    return BoardTable.from_dict(data, where=str(path))


def publish(board: Board, root: Path | str, out: Path | str | None = None) -> Path:
    """Regenerate the board's markdown table (default: beside its TOML, ``<name>.md``)."""
    table = aggregate(board, root)
    if out is None:
        base = Path(board.path).parent if board.path and _writable_dir(Path(board.path).parent) else Path(
            "leaderboards")
        out = base / f"{board.name}.md"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    store.write_text_atomic(out, to_markdown(table))  # a full disk leaves the published table as it was
    return out


def _writable_dir(p: Path) -> bool:
    import os

    return p.is_dir() and os.access(p, os.W_OK) and "site-packages" not in p.parts
