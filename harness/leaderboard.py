"""Leaderboards: board definitions (TOML), aggregation from the run index, rendering, comparison.

A board names its columns (task, split, metric) and its rows (a model, or model + recipe + compute). Each
cell is filled from one run picked by the board's selection rule among the matching indexed runs; the
cell keeps that run's value, 95% interval, episode count and where the run lives, so ``compare`` can go
back to its episodes for a paired test. See ``leaderboards/sft-vs-rl.toml`` for a complete example.
"""

from __future__ import annotations

import csv
import fnmatch
import html
import io
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harness import index
from harness.store import read_samples

SELECT_RULES = ("latest", "most-episodes", "best")
FIELD_PATHS = {"model": "model.name", "backend": "model.backend", "recipe": "training.recipe",
               "flops": "training.flops", "step": "training.step"}
DATA_MARKER = "harness-board-data"


class BoardError(ValueError):
    """A board definition or reference that cannot be used; the message says what to fix."""


# ------------------------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Column:
    task: str
    split: str
    metric: str = "success_rate"
    label: str = ""
    group: str = ""
    format: str | None = None  # "pct" or "float"; default: pct for *_rate / *_accuracy metrics
    distribution: str | None = None  # "id" / "ood"; default: the runs' own split distribution
    seed: int | None = None
    where: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.task}/{self.split}/{self.metric}"

    @property
    def title(self) -> str:
        return self.label or f"{self.task} {self.split}" + ("" if self.metric == "success_rate" else
                                                            f" {self.metric}")

    def fmt(self) -> str:
        if self.format:
            return self.format
        return "pct" if re.search(r"(rate|accuracy|acc)$", self.metric) else "float"


@dataclass(frozen=True)
class RowSpec:
    """Which runs feed a row. Strings are globs; ``recipe = "none"`` means runs without training info;
    ``flops`` is a number (matched within 1e-6 relative) or ``[low, high]``; ``where`` compares any record
    field by dotted path. ``expand`` splits the row into one row per distinct value of the named fields."""

    label: str
    group: str = ""
    model: str | None = None
    backend: str | None = None
    recipe: str | None = None
    flops: float | tuple[float, float] | None = None
    seed: int | None = None
    where: Mapping[str, Any] = field(default_factory=dict)
    expand: tuple[str, ...] = ()
    series: str | None = None  # a name for plots (defaults to the recipe)
    select: str | None = None

    def matches(self, run: index.IndexedRun) -> bool:
        if self.model is not None and not _glob(run.model, self.model):
            return False
        if self.backend is not None and not _glob(run.backend, self.backend):
            return False
        if self.recipe is not None:
            if self.recipe == "none" and run.recipe is not None:
                return False
            if self.recipe != "none" and not _glob(run.recipe, self.recipe):
                return False
        if self.flops is not None and not _flops_match(run.flops, self.flops):
            return False
        if self.seed is not None and run.seed != self.seed:
            return False
        return _where(run, self.where)


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[RowSpec, ...]
    description: str = ""
    select: str = "latest"
    status: tuple[str, ...] = ("complete",)
    alpha: float = 0.05
    path: str | None = None

    def column(self, ref: str) -> Column:
        """A column by key (task/split/metric), label, or 1-based position."""
        for c in self.columns:
            if ref in (c.key, c.title, c.label) or ref == f"{c.task}/{c.split}":
                return c
        if ref.isdigit() and 1 <= int(ref) <= len(self.columns):
            return self.columns[int(ref) - 1]
        raise BoardError(f"board {self.name!r} has no column {ref!r}; columns: "
                         + ", ".join(c.key for c in self.columns))


def _glob(value: str | None, pattern: str) -> bool:
    return value is not None and fnmatch.fnmatchcase(value, pattern)


def _flops_match(value: float | None, want: float | tuple[float, float]) -> bool:
    if value is None:
        return False
    if isinstance(want, tuple):
        return want[0] <= value <= want[1]
    return math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-9)


def _where(run: index.IndexedRun, where: Mapping[str, Any]) -> bool:
    for path, want in where.items():
        got = run.get(FIELD_PATHS.get(path, path))
        if isinstance(want, str) and isinstance(got, str):
            if not fnmatch.fnmatchcase(got, want):
                return False
        elif isinstance(want, int | float) and isinstance(got, int | float) and not isinstance(want, bool):
            if not math.isclose(float(got), float(want), rel_tol=1e-9):
                return False
        elif got != want:
            return False
    return True


_BOARD_KEYS = {"name", "title", "description", "select", "status", "alpha", "metric", "format", "columns",
               "rows"}
_COLUMN_KEYS = {"task", "split", "metric", "label", "group", "format", "distribution", "seed", "where"}
_ROW_KEYS = {"label", "group", "model", "backend", "recipe", "flops", "seed", "where", "expand", "series",
             "select"}


def _check_keys(what: str, body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BoardError(f"{what}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def parse_board(data: Mapping[str, Any], *, name: str = "board", path: str | None = None) -> Board:
    """Build a :class:`Board` from parsed TOML, checking every key (a typo is an error, not a blank)."""
    where = path or name
    _check_keys(where, data, _BOARD_KEYS)
    metric = str(data.get("metric", "success_rate"))
    board_fmt = data.get("format")
    columns = []
    for i, c in enumerate(data.get("columns") or []):
        _check_keys(f"{where}: columns[{i}]", c, _COLUMN_KEYS)
        if "task" not in c or "split" not in c:
            raise BoardError(f"{where}: columns[{i}] needs 'task' and 'split'")
        columns.append(Column(task=str(c["task"]), split=str(c["split"]), metric=str(c.get("metric", metric)),
                              label=str(c.get("label", "")), group=str(c.get("group", "")),
                              format=c.get("format", board_fmt), distribution=c.get("distribution"),
                              seed=c.get("seed"), where=dict(c.get("where") or {})))
    rows = []
    for i, r in enumerate(data.get("rows") or []):
        _check_keys(f"{where}: rows[{i}]", r, _ROW_KEYS)
        if "label" not in r:
            raise BoardError(f"{where}: rows[{i}] needs a 'label'")
        flops = r.get("flops")
        if isinstance(flops, list):
            if len(flops) != 2:
                raise BoardError(f"{where}: rows[{i}].flops must be a number or [low, high]")
            flops = (float(flops[0]), float(flops[1]))
        elif flops is not None:
            flops = float(flops)
        expand = r.get("expand") or ()
        select = r.get("select")
        if select is not None and select not in SELECT_RULES:
            raise BoardError(f"{where}: rows[{i}].select must be one of {', '.join(SELECT_RULES)}")
        rows.append(RowSpec(label=str(r["label"]), group=str(r.get("group", "")), model=r.get("model"),
                            backend=r.get("backend"), recipe=r.get("recipe"), flops=flops, seed=r.get("seed"),
                            where=dict(r.get("where") or {}),
                            expand=(expand,) if isinstance(expand, str) else tuple(expand),
                            series=r.get("series"), select=select))
    if not columns:
        raise BoardError(f"{where}: a board needs at least one [[columns]] entry")
    if len({c.key for c in columns}) != len(columns):
        raise BoardError(f"{where}: two columns have the same task/split/metric")
    select = str(data.get("select", "latest"))
    if select not in SELECT_RULES:
        raise BoardError(f"{where}: select must be one of {', '.join(SELECT_RULES)}")
    status = data.get("status", ["complete"])
    return Board(name=str(data.get("name", name)), title=str(data.get("title", data.get("name", name))),
                 description=str(data.get("description", "")), columns=tuple(columns), rows=tuple(rows),
                 select=select, status=(status,) if isinstance(status, str) else tuple(status),
                 alpha=float(data.get("alpha", 0.05)), path=path)


def load_board(path: Path | str) -> Board:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BoardError(f"cannot read board {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: not valid TOML: {exc}") from None
    return parse_board(data, name=path.stem, path=str(path))


def board_dirs(cwd: Path | None = None) -> list[Path]:
    """Where board names are looked up: ./leaderboards, then the boards bundled with the package (the
    package's ``boards/`` folder, or the source checkout's ``leaderboards/``)."""
    here = Path(__file__).resolve().parent
    dirs = [(cwd or Path.cwd()) / "leaderboards", here / "boards", here.parent / "leaderboards"]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def find_board(ref: str | Path, cwd: Path | None = None) -> Path:
    """A board by path, or by name in :func:`board_dirs`."""
    p = Path(ref)
    if p.suffix == ".toml" or p.is_file():
        if p.is_file():
            return p
        raise BoardError(f"no board file {p}")
    for d in board_dirs(cwd):
        cand = d / f"{ref}.toml"
        if cand.is_file():
            return cand
    known = sorted({f.stem for d in board_dirs(cwd) for f in d.glob("*.toml")})
    raise BoardError(f"no board named {str(ref)!r}; known boards: {', '.join(known) or '(none)'}")


# -------------------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class Cell:
    value: float
    ci_low: float
    ci_high: float
    n: int
    run_id: str = ""
    run_dir: str = ""
    seed: int | None = None
    flops: float | None = None
    recipe: str | None = None
    distribution: str | None = None
    candidates: int = 1

    @property
    def has_ci(self) -> bool:
        return not (math.isnan(self.ci_low) or math.isnan(self.ci_high))


@dataclass
class Row:
    label: str
    group: str
    cells: dict[str, Cell | None]
    series: str | None = None


@dataclass
class BoardTable:
    """A board filled from one set of runs (or read back from a published table)."""

    name: str
    title: str
    columns: list[Column]
    rows: list[Row]
    description: str = ""
    select: str = "latest"
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "description": self.description, "select": self.select,
                "source": self.source,
                "columns": [{**asdict(c), "key": c.key, "title": c.title, "where": dict(c.where)}
                            for c in self.columns],
                "rows": [{"label": r.label, "group": r.group, "series": r.series,
                          "cells": {k: (asdict(v) if v else None) for k, v in r.cells.items()}}
                         for r in self.rows]}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> BoardTable:
        cols = [Column(**{k: v for k, v in c.items() if k in _COLUMN_KEYS}) for c in data["columns"]]
        rows = [Row(label=r["label"], group=r.get("group", ""), series=r.get("series"),
                    cells={k: (Cell(**{f: (math.nan if x is None and f.startswith(("value", "ci_")) else x)
                                       for f, x in v.items()}) if v else None)
                           for k, v in r["cells"].items()})
                for r in data["rows"]]
        return BoardTable(name=data.get("name", "table"), title=data.get("title", ""), columns=cols, rows=rows,
                          description=data.get("description", ""), select=data.get("select", "latest"),
                          source=data.get("source", ""))


def _pick(cands: list[tuple[index.IndexedRun, Mapping[str, Any]]], rule: str
          ) -> tuple[index.IndexedRun, Mapping[str, Any]]:
    def when(r: index.IndexedRun) -> float:
        return r.finished or r.created or 0.0

    if rule == "best":
        return max(cands, key=lambda c: (_f(c[1].get("value")), when(c[0])))
    if rule == "most-episodes":
        return max(cands, key=lambda c: (int(c[1].get("n") or 0), when(c[0])))
    return max(cands, key=lambda c: (when(c[0]), c[0].run_id))


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if math.isnan(v) else v


def _expand_value(run: index.IndexedRun, name: str) -> Any:
    return run.get(FIELD_PATHS.get(name, name))


def _expand(spec: RowSpec, runs: Sequence[index.IndexedRun]) -> list[tuple[RowSpec, str]]:
    """One concrete row per distinct value (tuple) of ``spec.expand`` among the runs the row matches."""
    if not spec.expand:
        return [(spec, spec.label)]
    seen: dict[tuple[Any, ...], None] = {}
    for r in runs:
        if spec.matches(r):
            key = tuple(_expand_value(r, n) for n in spec.expand)
            if all(k is not None for k in key):
                seen.setdefault(key, None)
    out = []
    for key in sorted(seen, key=lambda k: tuple((str(type(v)), v) for v in k)):
        where = dict(spec.where)
        names = {}
        for n, v in zip(spec.expand, key, strict=True):
            where[FIELD_PATHS.get(n, n)] = v
            names[n.split(".")[-1]] = v
        label = _template(spec.label, names, key)
        series = _template(spec.series, names, ()) if spec.series else None
        concrete = RowSpec(label=label, group=spec.group, model=spec.model, backend=spec.backend,
                           recipe=spec.recipe, flops=spec.flops, seed=spec.seed, where=where,
                           series=series, select=spec.select)
        out.append((concrete, label))
    return out


def _template(text: str, names: Mapping[str, Any], key: tuple[Any, ...]) -> str:
    """``label = "RL {flops:.2g}"``: the expanded values by name; without placeholders they are appended."""
    if "{" not in text:
        return " ".join([text, *(_short(v) for v in key)])
    try:
        return text.format(**names)
    except (KeyError, IndexError, ValueError):
        return " ".join([text, *(_short(v) for v in key)])


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def aggregate(board: Board, runs: Sequence[index.IndexedRun] | Path | str, *, source: str = "") -> BoardTable:
    """Fill ``board`` from indexed runs (a runs root is synced and queried first).

    Selection: a cell takes the runs whose task and split equal the column's, whose status is in the
    board's ``status`` (default: complete only), that report the column's metric, and that match the row
    (and the column's ``seed``/``where``). Of those, the board's (or row's) ``select`` rule picks one:
    ``latest`` (most recently finished; the default), ``most-episodes`` (largest n, then latest) or
    ``best`` (highest value, then latest: optimistic, say so when you publish it).
    """
    if isinstance(runs, Path | str):
        source = source or str(runs)
        runs = index.query(runs)
    runs = [r for r in runs if (r.status or "") in board.status]
    rows: list[Row] = []
    for spec in board.rows:
        for concrete, label in _expand(spec, runs):
            matched = [r for r in runs if concrete.matches(r)]
            cells: dict[str, Cell | None] = {}
            for col in board.columns:
                cands = []
                for r in matched:
                    m = r.metrics.get(col.metric)
                    if (r.task == col.task and r.split == col.split and isinstance(m, Mapping)
                            and (col.seed is None or r.seed == col.seed) and _where(r, col.where)):
                        cands.append((r, m))
                if not cands:
                    cells[col.key] = None
                    continue
                run, m = _pick(cands, concrete.select or board.select)
                cells[col.key] = Cell(value=_nan(m.get("value")), ci_low=_nan(m.get("ci_low")),
                                      ci_high=_nan(m.get("ci_high")), n=int(m.get("n") or 0), run_id=run.run_id,
                                      run_dir=str(run.run_dir), seed=run.seed, flops=run.flops, recipe=run.recipe,
                                      distribution=run.distribution, candidates=len(cands))
            rows.append(Row(label=label, group=concrete.group, cells=cells, series=concrete.series))
    return BoardTable(name=board.name, title=board.title, columns=list(board.columns), rows=rows,
                      description=board.description, select=board.select, source=source)


def _nan(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


# ------------------------------------------------------------------------------------------ render


def fmt_value(v: float, fmt: str) -> str:
    if math.isnan(v):
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
    from rich.table import Table

    t = Table(title=table.title, caption=_legend(table), title_justify="left", caption_justify="left")
    if _has_groups(table):
        t.add_column("group", style="dim")
    t.add_column("row", style="bold")
    for c in table.columns:
        t.add_column(c.title, justify="right")
    last_group = None
    for r in table.rows:
        if _has_groups(table) and last_group is not None and r.group != last_group:
            t.add_section()
        last_group = r.group
        cells = [fmt_cell(r.cells.get(c.key), c) for c in table.columns]
        t.add_row(*([r.group] if _has_groups(table) else []), r.label, *cells)
    return t


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(table: BoardTable, *, embed_data: bool = True) -> str:
    """A GitHub markdown table. With ``embed_data``, the table's data rides along in an HTML comment so
    ``compare`` can read a published table back exactly."""
    groups = _has_groups(table)
    head = (["Group"] if groups else []) + ["Model"] + [c.title for c in table.columns]
    lines = [f"# {table.title}", ""]
    if table.description:
        lines += [table.description.strip(), ""]
    lines += ["| " + " | ".join(_md_escape(h) for h in head) + " |",
              "|" + "|".join([":---"] * (len(head) - len(table.columns)) + ["---:"] * len(table.columns)) + "|"]
    for r in table.rows:
        cells = [fmt_cell(r.cells.get(c.key), c) for c in table.columns]
        lines.append("| " + " | ".join(_md_escape(x) for x in ([r.group] if groups else []) + [r.label, *cells])
                     + " |")
    lines += ["", _legend(table), ""]
    cols = ", ".join(f"{c.title} = {c.task}/{c.split} {c.metric}" for c in table.columns)
    lines += [f"Columns: {cols}.", ""]
    if embed_data:
        data = orjson.dumps(_jsonable(_portable(table.to_dict()))).decode()
        data = data.replace("--", "-\\u002d")  # never close the comment early
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
            base = [r.group, r.label, c.title, c.task, c.split, c.metric]
            if cell is None:
                w.writerow([*base, "", "", "", "", "", "", "", ""])
            else:
                w.writerow([*base, _num(cell.value), _num(cell.ci_low), _num(cell.ci_high), cell.n, cell.run_id,
                            "" if cell.seed is None else cell.seed, "" if cell.flops is None else repr(cell.flops),
                            cell.recipe or ""])
    return buf.getvalue()


def _num(v: float) -> str:
    return "" if math.isnan(v) else repr(v)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def to_json(table: BoardTable) -> str:
    return orjson.dumps(_jsonable(table.to_dict()), option=orjson.OPT_INDENT_2).decode()


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
    e = html.escape
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
    e = html.escape
    if cell is None or math.isnan(cell.value):
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
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return BoardTable.from_dict(orjson.loads(text))
    m = re.search(rf"<!-- {DATA_MARKER}\n(.*?)\n-->", text, re.S)
    if not m:
        raise BoardError(f"{path}: no embedded table data (regenerate it with `harness leaderboard publish`)")
    return BoardTable.from_dict(orjson.loads(m.group(1)))


# ------------------------------------------------------------------------------------------ compare


@dataclass(frozen=True)
class Delta:
    row: str
    column: str
    a: Cell | None
    b: Cell | None
    delta: float | None
    test: str  # mcnemar-exact, paired-bootstrap, ci-overlap or none
    p_value: float | None
    significant: bool | None
    detail: str = ""


@dataclass
class Comparison:
    a_name: str
    b_name: str
    columns: list[Column]
    rows: list[str]
    deltas: dict[tuple[str, str], Delta]
    alpha: float = 0.05


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> tuple[float, int, int]:
    """Exact (binomial) McNemar test on paired successes. Returns (two-sided p, n01, n10) where n01 counts
    pairs A failed and B solved, n10 the reverse; ties carry no information about a difference."""
    n01 = sum(1 for x, y in zip(a, b, strict=True) if not x and y)
    n10 = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    n = n01 + n10
    if n == 0:
        return 1.0, 0, 0
    k = min(n01, n10)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n), n01, n10


def paired_bootstrap(a: Sequence[Any], b: Sequence[Any], *, iters: int = 4000, seed: int = 0
                     ) -> tuple[float, float, float]:
    """Bootstrap over episodes of the difference B - A (means, or pooled ratios for (hits, total) pairs).
    Returns (two-sided p, low, high) of the 95% interval of the difference."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(a)
    idx = rng.integers(0, n, size=(iters, n))
    if a and isinstance(a[0], list | tuple):
        ah, at = np.array([x[0] for x in a], float), np.array([x[1] for x in a], float)
        bh, bt = np.array([x[0] for x in b], float), np.array([x[1] for x in b], float)
        with np.errstate(invalid="ignore", divide="ignore"):
            diff = bh[idx].sum(1) / bt[idx].sum(1) - ah[idx].sum(1) / at[idx].sum(1)
        diff = diff[~np.isnan(diff)]
    else:
        av, bv = np.array(a, float), np.array(b, float)
        diff = (bv - av)[idx].mean(1)
    if diff.size == 0:
        return 1.0, math.nan, math.nan
    p = min(1.0, 2 * min(float((diff <= 0).mean()), float((diff >= 0).mean())))
    return p, float(np.quantile(diff, 0.025)), float(np.quantile(diff, 0.975))


def _episode_value(sample: Mapping[str, Any], metric: str) -> Any:
    if metric == "success_rate":
        return bool(sample.get("success"))
    if metric == "mean_reward":
        return float(sample.get("reward", 0.0))
    if metric == "mean_turns":
        return len(sample.get("turns") or [])
    return (sample.get("metrics") or {}).get(metric)


def paired_values(a: Cell, b: Cell, metric: str) -> tuple[list[Any], list[Any]] | None:
    """Per-episode values of both runs on the episodes they share (same index and episode seed), or None
    when the runs are not paired (different seed, no samples on disk, no common episode)."""
    if a.seed is None or a.seed != b.seed or not a.run_dir or not b.run_dir:
        return None
    pa, pb = Path(a.run_dir) / "samples.jsonl", Path(b.run_dir) / "samples.jsonl"
    if not (pa.is_file() and pb.is_file()):
        return None
    ra, _ = read_samples(pa)
    rb, _ = read_samples(pb)
    xs, ys = [], []
    for i in sorted(set(ra) & set(rb)):
        sa, sb = ra[i], rb[i]
        if sa.get("status") != "ok" or sb.get("status") != "ok" or sa.get("episode_seed") != sb.get("episode_seed"):
            continue
        x, y = _episode_value(sa, metric), _episode_value(sb, metric)
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return (xs, ys) if xs else None


def compare_cells(a: Cell | None, b: Cell | None, col: Column, row: str, alpha: float = 0.05) -> Delta:
    if a is None or b is None or math.isnan(a.value) or math.isnan(b.value):
        return Delta(row, col.key, a, b, None, "none", None, None)
    delta = b.value - a.value
    paired = paired_values(a, b, col.metric)
    if paired is not None:
        xs, ys = paired
        if all(isinstance(v, bool) for v in (*xs, *ys)):
            p, n01, n10 = mcnemar_exact(xs, ys)
            return Delta(row, col.key, a, b, delta, "mcnemar-exact", p, p < alpha,
                         f"{len(xs)} paired episodes; A-only {n10}, B-only {n01}")
        p, lo, hi = paired_bootstrap(xs, ys)
        return Delta(row, col.key, a, b, delta, "paired-bootstrap", p, p < alpha,
                     f"{len(xs)} paired episodes; 95% CI of B-A [{lo:.3g}, {hi:.3g}]")
    if not (a.has_ci and b.has_ci):
        return Delta(row, col.key, a, b, delta, "none", None, None, "no intervals")
    overlap = a.ci_low <= b.ci_high and b.ci_low <= a.ci_high
    return Delta(row, col.key, a, b, delta, "ci-overlap", None, not overlap,
                 "intervals overlap" if overlap else "intervals disjoint")


def compare(a: BoardTable, b: BoardTable, *, alpha: float = 0.05) -> Comparison:
    """Align rows by label and columns by task/split/metric; cells present on one side only show as such."""
    b_cols = {c.key for c in b.columns}
    columns = [c for c in a.columns if c.key in b_cols]
    if not columns:
        raise BoardError("the two tables share no column (task/split/metric)")
    labels = [r.label for r in a.rows] + [r.label for r in b.rows if r.label not in {x.label for x in a.rows}]
    a_rows, b_rows = {r.label: r for r in a.rows}, {r.label: r for r in b.rows}
    deltas = {}
    for label in labels:
        for c in columns:
            ca = a_rows[label].cells.get(c.key) if label in a_rows else None
            cb = b_rows[label].cells.get(c.key) if label in b_rows else None
            deltas[(label, c.key)] = compare_cells(ca, cb, c, label, alpha)
    return Comparison(a_name=a.source or a.name, b_name=b.source or b.name, columns=columns, rows=labels,
                      deltas=deltas, alpha=alpha)


def fmt_delta(d: Delta, col: Column) -> str:
    fmt = col.fmt()
    if d.a is None and d.b is None:
        return "–"
    a = fmt_value(d.a.value, fmt) if d.a else "–"
    b = fmt_value(d.b.value, fmt) if d.b else "–"
    if d.delta is None:
        return f"{a} → {b}"
    sign = "+" if d.delta >= 0 else "−"
    mag = fmt_value(abs(d.delta), fmt)
    mark = "" if d.significant is None else (" *" if d.significant else " (ns)")
    return f"{a} → {b} ({sign}{mag}{mark})"


def comparison_legend(cmp: Comparison) -> str:
    return (f"A = {cmp.a_name}; B = {cmp.b_name}. Cells: A → B (B − A). * = significant at "
            f"alpha {cmp.alpha}: exact McNemar on paired episodes for success (paired bootstrap for other "
            "metrics) when both runs have the same episodes; otherwise disjoint 95% intervals. (ns) = not "
            "significant (overlapping intervals, or paired p ≥ alpha).")


def comparison_to_rich(cmp: Comparison) -> Any:
    from rich.table import Table

    t = Table(title="comparison", caption=comparison_legend(cmp), title_justify="left", caption_justify="left")
    t.add_column("row", style="bold")
    for c in cmp.columns:
        t.add_column(c.title, justify="right")
    for label in cmp.rows:
        t.add_row(label, *[fmt_delta(cmp.deltas[(label, c.key)], c) for c in cmp.columns])
    return t


def comparison_to_markdown(cmp: Comparison) -> str:
    head = ["Model"] + [c.title for c in cmp.columns]
    lines = ["| " + " | ".join(_md_escape(h) for h in head) + " |",
             "|:---|" + "|".join(["---:"] * len(cmp.columns)) + "|"]
    for label in cmp.rows:
        cells = [fmt_delta(cmp.deltas[(label, c.key)], c) for c in cmp.columns]
        lines.append("| " + " | ".join(_md_escape(x) for x in [label, *cells]) + " |")
    return "\n".join([*lines, "", comparison_legend(cmp), ""])


def comparison_to_json(cmp: Comparison) -> str:
    out = {"a": cmp.a_name, "b": cmp.b_name, "alpha": cmp.alpha,
           "columns": [{"key": c.key, "title": c.title} for c in cmp.columns],
           "cells": [{"row": d.row, "column": d.column, "a": asdict(d.a) if d.a else None,
                      "b": asdict(d.b) if d.b else None, "delta": d.delta, "test": d.test, "p_value": d.p_value,
                      "significant": d.significant, "detail": d.detail} for d in cmp.deltas.values()]}
    return orjson.dumps(_jsonable(out), option=orjson.OPT_INDENT_2).decode()


def publish(board: Board, root: Path | str, out: Path | str | None = None) -> Path:
    """Regenerate the board's markdown table (default: beside its TOML, ``<name>.md``)."""
    table = aggregate(board, root)
    if out is None:
        base = Path(board.path).parent if board.path and _writable_dir(Path(board.path).parent) else Path(
            "leaderboards")
        out = base / f"{board.name}.md"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_markdown(table), encoding="utf-8")
    return out


def _writable_dir(p: Path) -> bool:
    import os

    return p.is_dir() and os.access(p, os.W_OK) and "site-packages" not in p.parts


def used_runs(table: BoardTable) -> Iterable[str]:
    return sorted({c.run_id for r in table.rows for c in r.cells.values() if c})


__all__ = ["Board", "BoardError", "BoardTable", "Cell", "Column", "Comparison", "Delta", "Row", "RowSpec",
           "aggregate", "board_dirs", "compare", "compare_cells", "find_board", "load_board", "mcnemar_exact",
           "paired_bootstrap", "parse_board", "publish", "read_table", "render", "to_csv", "to_html", "to_json",
           "to_markdown", "to_rich"]
