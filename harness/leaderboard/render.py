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


def _header(col: Column, first_of_group: bool) -> str:
    """A column header: its title, under its TOML group's name on the group's first column."""
    title = markup(col.title, newlines=False)
    if not col.group:
        return title
    return (f"[dim]{markup(col.group, newlines=False)}[/]\n" if first_of_group else "\n") + title


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def _stack(cell: str) -> list[str]:
    """A cell's text as two lines, the value over its interval."""
    value, sep, ci = cell.partition(" [")
    return [value, "[" + ci] if sep else [value]


def _chunks(columns: list[Column], widths: dict[str, int], room: int) -> list[list[Column]]:
    """Columns split into consecutive runs whose widths (each plus 3 for padding and border) fit ``room``,
    broken at column-group boundaries where a whole group fits."""
    groups: list[list[Column]] = []
    for c in columns:
        if groups and groups[-1][0].group == c.group and c.group:
            groups[-1].append(c)
        else:
            groups.append([c])
    chunks: list[list[Column]] = [[]]
    used = 0
    for g in groups:
        need = sum(widths[c.key] + 3 for c in g)
        if chunks[-1] and used + need > room:
            chunks.append([])
            used = 0
        for c in g:  # a group wider than the room is split by columns
            w = widths[c.key] + 3
            if chunks[-1] and used + w > room:
                chunks.append([])
                used = 0
            chunks[-1].append(c)
            used += w
    return [c for c in chunks if c]


def to_rich(table: BoardTable, width: int | None = None) -> Any:
    """A rich renderable; every label, title and caption is escaped (a model named ``x[/]y`` is shown as it
    is). Given the terminal ``width``, a board that does not fit on one line per row is shown with each
    value over its interval, row groups as headings, and, where still too wide, as several tables of
    consecutive columns (split at column groups), each repeating the row labels: nothing is cut."""
    from rich.console import Group
    from rich.table import Table

    groups = _has_groups(table)
    one_line = {c.key: max([len(c.title), len(c.group) if c.group else 0,
                            *(len(fmt_cell(r.cells.get(c.key), c)) for r in table.rows)]) for c in table.columns}
    label_w = max([5, *(len(r.label) for r in table.rows)])
    group_w = max([5, *(len(r.group) for r in table.rows)]) if groups else 0
    full = 1 + label_w + 3 + (group_w + 3 if groups else 0) + sum(w + 3 for w in one_line.values())
    stacked = width is not None and full > width
    if stacked:
        label_w = min(label_w, max(12, width // 4))
        widths = {c.key: max([4, _longest_word(c.title), *(len(x) for r in table.rows
                                                           for x in _stack(fmt_cell(r.cells.get(c.key), c)))])
                  for c in table.columns}
        chunks = _chunks(list(table.columns), widths, max(1, width - 1 - (label_w + 3)))
    else:
        widths, chunks = one_line, [list(table.columns)]
    tables = []
    for i, cols in enumerate(chunks):
        part = f" ({i + 1}/{len(chunks)})" if len(chunks) > 1 else ""
        last = i == len(chunks) - 1
        t = Table(title=markup(table.title + part), caption=markup(_legend(table)) if last else None,
                  title_justify="left", caption_justify="left")
        if groups and not stacked:
            t.add_column("group", style="dim")
        # stacked: every width fixed, so the tables are exactly as wide as planned; long words fold, never cut
        t.add_column("row", style="bold", width=label_w if stacked else None, overflow="fold")
        for j, c in enumerate(cols):
            t.add_column(_header(c, j == 0 or cols[j - 1].group != c.group), justify="right",
                         width=widths[c.key] if stacked else None, overflow="fold")
        last_group = None
        for r in table.rows:
            if groups and r.group != last_group:
                if stacked:  # the row group as a heading line
                    t.add_row(f"[dim]{markup(r.group or '-', newlines=False)}[/]", *([""] * len(cols)))
                elif last_group is not None:
                    t.add_section()
            last_group = r.group
            cells = [fmt_cell(r.cells.get(c.key), c) for c in cols]
            if stacked:
                cells = ["\n".join(_stack(x)) for x in cells]
            lead = [r.group] if groups and not stacked else []
            t.add_row(*(markup(x, newlines=False) for x in [*lead, r.label]), *(markup(x) for x in cells))
        tables.append(t)
    return tables[0] if len(tables) == 1 else Group(*tables)


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
h1{font-size:1.4em}.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse}
th,td{padding:.35em .7em;border-bottom:1px solid #d0d7de}
th{cursor:pointer;user-select:none;background:#f6f8fa;text-align:left;white-space:nowrap}
thead tr.groups th{cursor:default;text-align:center;font-weight:600;color:#57606a;border-bottom:2px solid #d0d7de}
thead tr.groups th.g{border-left:1px solid #d0d7de;border-right:1px solid #d0d7de}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ci{color:#57606a;font-size:.8em;margin-left:.35em}
.bar{position:relative;height:11px;min-width:6em;margin-top:3px;
background:linear-gradient(#d0d7de,#d0d7de) 0 5px/100% 1px no-repeat}
.bar .f{position:absolute;left:0;top:3px;height:5px;background:#b6d4f5}
.bar .w{position:absolute;top:2px;height:7px;box-sizing:border-box;border-left:1px solid #424a53;
border-right:1px solid #424a53}
.bar .w::after{content:"";position:absolute;left:0;right:0;top:3px;height:1px;background:#424a53}
.bar .m{position:absolute;top:0;width:3px;height:11px;margin-left:-1.5px;background:#0969da;border-radius:1px}
.none{color:#8c959f}.legend{color:#57606a;margin-top:.6em}
td.label{white-space:nowrap}.hint{display:none;color:#57606a;font-size:.85em}.scroll.wide+.hint{display:block}
"""

_JS = """
(function(){
  var table=document.getElementById('board'), hr=table.tHead.rows, heads=hr[hr.length-1].cells;
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
  var box=table.parentNode;  // a board wider than the window scrolls sideways: say so
  function fit(){box.classList.toggle('wide',box.scrollWidth>box.clientWidth+1);}
  fit();window.addEventListener('resize',fit);
  var m=location.hash.match(/sort=(\\d+)(?::(asc|desc))?/);if(m)sortBy(+m[1],m[2]||'desc');
})();
"""


def to_html(table: BoardTable) -> str:
    """One self-contained page (inline CSS and script, no external assets). Column groups from the board's
    TOML head their columns; a board wider than the window scrolls sideways. Each percentage cell draws a
    bar: a fill up to the value, a mark at the value and whiskers over its 95% interval. Click a header to
    sort; ``page.html#sort=3:asc`` opens it sorted by the fourth column."""
    e = html_text
    groups = _has_groups(table)
    heads = (["Group"] if groups else []) + ["Model"]
    ths = [f"<th>{e(h)}</th>" for h in heads]
    ths += [f'<th title="{e(c.task)} / {e(c.split)} / {e(c.metric)}" data-key="{e(c.key)}">{e(c.title)}</th>'
            for c in table.columns]
    head_rows = ""
    if any(c.group for c in table.columns):
        spans: list[list[Any]] = []  # [group, count] for each run of consecutive columns
        for c in table.columns:
            if spans and spans[-1][0] == c.group:
                spans[-1][1] += 1
            else:
                spans.append([c.group, 1])
        cells = [f'<th colspan="{len(heads)}"></th>'] + [
            f'<th class="g" colspan="{n}" scope="colgroup">{e(g)}</th>' if g else f'<th colspan="{n}"></th>'
            for g, n in spans]
        head_rows = f'<tr class="groups">{"".join(cells)}</tr>'
    body = []
    for r in table.rows:
        tds = ([f'<td class="label" data-v="{e(r.group)}">{e(r.group)}</td>'] if groups else [])
        tds.append(f'<td class="label" data-v="{e(r.label)}">{e(r.label)}</td>')
        for c in table.columns:
            tds.append(_html_cell(r.cells.get(c.key), c))
        body.append("<tr>" + "".join(tds) + "</tr>")
    desc = f"<p>{e(table.description)}</p>" if table.description else ""
    legend = (f"{_legend(table)} Bars: the value (mark and fill) and its 95% interval (whiskers). "
              "Click a header to sort.")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(table.title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{e(table.title)}</h1>{desc}"
            f'<div class="scroll"><table id="board" aria-describedby="legend">'
            f"<thead>{head_rows}<tr>{''.join(ths)}</tr></thead><tbody>\n" + "\n".join(body)
            + f'\n</tbody></table></div><p class="hint">Scroll sideways for more columns →</p>'
            f'<p id="legend" class="legend">{e(legend)}</p><script>{_JS}</script></body></html>\n')


def _pct(x: float) -> float:
    return 100 * min(1.0, max(0.0, x))


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
        v = _pct(cell.value)
        whisker = ""
        if cell.has_ci:
            lo, hi = _pct(cell.ci_low), _pct(cell.ci_high)
            whisker = f'<i class="w" style="left:{lo:.2f}%;width:{hi - lo:.2f}%"></i>'
        bar = (f'<div class="bar" role="img" aria-label="{e(fmt_cell(cell, col))}"><i class="f" '
               f'style="width:{v:.2f}%"></i>{whisker}<i class="m" style="left:{v:.2f}%"></i></div>')
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


def publish(board: Board, root: Path | str, out: Path | str | None = None, *, force: bool = False) -> Path:
    """Regenerate the board's markdown table (default: beside its TOML, ``<name>.md``). A table shipped with
    harness (in :func:`~harness.leaderboard.schema.shipped_dirs`) is replaced only with ``force``: it is the
    reference table, and a run set of your own would silently rewrite it."""
    table = aggregate(board, root)
    out = Path(out) if out is not None else default_publish_path(board)
    if out.exists() and is_shipped(out) and not force:
        raise BoardError(f"{out} is the {board.name!r} table shipped with harness ({describe_table(out)}); pass "
                         "--force to replace it, or --out FILE to write your own copy")
    out.parent.mkdir(parents=True, exist_ok=True)
    store.write_text_atomic(out, to_markdown(table))  # a full disk leaves the published table as it was
    return out


def default_publish_path(board: Board) -> Path:
    base = Path(board.path).parent if board.path and _writable_dir(Path(board.path).parent) else Path("leaderboards")
    return base / f"{board.name}.md"


def is_shipped(path: Path) -> bool:
    from harness.leaderboard.schema import shipped_dirs

    where = path.resolve().parent
    return any(d.is_dir() and where == d.resolve() for d in shipped_dirs())


def describe_table(path: Path) -> str:
    """What a published table holds, in a few words: rows, filled cells and the runs' sources."""
    try:
        t = read_table(path)
    except BoardError:
        return "not a readable published table"
    cells = [c for r in t.rows for c in r.cells.values() if c is not None]
    return f"{len(t.rows)} rows, {len(cells)} of {len(t.rows) * len(t.columns)} cells filled"


def _writable_dir(p: Path) -> bool:
    import os

    return p.is_dir() and os.access(p, os.W_OK) and "site-packages" not in p.parts
