"""Aggregation: a :class:`~harness.leaderboard.schema.Board` filled from the run index. :func:`aggregate`
expands each row spec (``expand``), matches runs to rows and columns, and lets the board's selection rule
(latest, most-episodes or best) pick one run per cell. The result is a :class:`BoardTable` of :class:`Row`
objects holding :class:`Cell` values (value, 95% interval, episode count and the run it came from), which
the render and compare modules consume; ``BoardTable.to_dict``/``from_dict`` round-trip it as plain data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from harness import index
from harness.leaderboard.schema import FIELD_PATHS, Board, BoardError, Column, RowSpec, _where


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

    def __post_init__(self) -> None:
        # an interval always holds its value: records written before the metrics were exact can have a bound
        # a hair on the wrong side (a 0% cell with ci_low 1.7e-18), shown and exported as a clean bound
        v, lo, hi = self.value, self.ci_low, self.ci_high
        if math.isfinite(v) and math.isfinite(lo) and lo > v:
            object.__setattr__(self, "ci_low", v)
        if math.isfinite(v) and math.isfinite(hi) and hi < v:
            object.__setattr__(self, "ci_high", v)

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

    def find_columns(self, ref: str) -> list[Column]:
        """The columns ``ref`` names: a key (task/split/metric), task/split, a title or label, a column group
        (all its columns), or a 1-based position. None named is a :class:`BoardError` listing the columns."""
        ref = ref.strip()
        hits = [c for c in self.columns if ref in (c.key, c.title, c.label, f"{c.task}/{c.split}")]
        hits = hits or [c for c in self.columns if c.group and c.group == ref]
        if not hits and ref.isdigit() and 1 <= int(ref) <= len(self.columns):
            hits = [self.columns[int(ref) - 1]]
        if not hits:
            groups = sorted({c.group for c in self.columns if c.group})
            raise BoardError(f"no column {ref!r}; columns: {', '.join(c.key for c in self.columns)}"
                             + (f"; groups: {', '.join(groups)}" if groups else ""))
        return hits

    def with_columns(self, refs: Sequence[str]) -> BoardTable:
        """The table with only the columns ``refs`` name (see :meth:`find_columns`), in the board's order."""
        keep = {c.key for ref in refs if ref.strip() for c in self.find_columns(ref)}
        return replace(self, columns=[c for c in self.columns if c.key in keep])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "description": self.description, "select": self.select,
                "source": self.source,
                "columns": [{**asdict(c), "key": c.key, "title": c.title, "where": dict(c.where)}
                            for c in self.columns],
                "rows": [{"label": r.label, "group": r.group, "series": r.series,
                          "cells": {k: (asdict(v) if v else None) for k, v in r.cells.items()}}
                         for r in self.rows]}

    @staticmethod
    def from_dict(data: Any, where: str = "table") -> BoardTable:
        """A table from its ``to_dict`` form (a published table read back); every field is checked and a
        wrong one is a :class:`BoardError` naming ``where`` and the field."""
        if not isinstance(data, Mapping):
            raise BoardError(f"{where}: table data must be an object")
        cols = []
        for i, c in enumerate(_list(where, data, "columns")):
            at = f"{where}: columns[{i}]"
            if not isinstance(c, Mapping) or not all(isinstance(c.get(k), str) for k in ("task", "split")):
                raise BoardError(f"{at} must be an object with text 'task' and 'split'")
            cols.append(Column(task=c["task"], split=c["split"], metric=_field(at, c, "metric", str, "success_rate"),
                               label=_field(at, c, "label", str, ""), group=_field(at, c, "group", str, ""),
                               format=_field(at, c, "format", str, None), seed=_field(at, c, "seed", int, None),
                               distribution=_field(at, c, "distribution", str, None),
                               where=_field(at, c, "where", Mapping, {})))
            if cols[-1].format not in (None, "pct", "float"):
                raise BoardError(f"{at}.format must be pct or float")
        rows = []
        for i, r in enumerate(_list(where, data, "rows")):
            at = f"{where}: rows[{i}]"
            if not isinstance(r, Mapping) or not isinstance(r.get("label"), str):
                raise BoardError(f"{at} must be an object with a text 'label'")
            cells_in = _field(at, r, "cells", Mapping, {})
            cells = {}
            for k, v in cells_in.items():
                if not isinstance(k, str):
                    raise BoardError(f"{at}.cells: keys must be text")
                cells[k] = _cell(f"{at}.cells[{k!r}]", v)
            rows.append(Row(label=r["label"], group=_field(at, r, "group", str, ""),
                            series=_field(at, r, "series", str, None), cells=cells))
        return BoardTable(name=_field(where, data, "name", str, "table"), title=_field(where, data, "title", str, ""),
                          columns=cols, rows=rows, description=_field(where, data, "description", str, ""),
                          select=_field(where, data, "select", str, "latest"),
                          source=_field(where, data, "source", str, ""))


def _list(where: str, data: Mapping[str, Any], key: str) -> list[Any]:
    v = data.get(key)
    if not isinstance(v, list):
        raise BoardError(f"{where}: '{key}' must be a list")
    return v


def _field(where: str, body: Mapping[str, Any], key: str, kind: Any, default: Any) -> Any:
    v = body.get(key)
    if v is None:
        return default
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise BoardError(f"{where}.{key} has the wrong type ({type(v).__name__})")
    return v


def _cell(where: str, v: Any) -> Cell | None:
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise BoardError(f"{where} must be an object or null")
    nums = {}
    for f in ("value", "ci_low", "ci_high", "flops"):
        x = v.get(f)
        if x is not None and (isinstance(x, bool) or not isinstance(x, int | float)):
            raise BoardError(f"{where}.{f} must be a number or null, got {type(x).__name__}")
        nums[f] = x
    n = v.get("n", 0)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise BoardError(f"{where}.n must be a non-negative integer")
    return Cell(value=_nan(nums["value"]), ci_low=_nan(nums["ci_low"]), ci_high=_nan(nums["ci_high"]), n=n,
                run_id=_field(where, v, "run_id", str, ""), run_dir=_field(where, v, "run_dir", str, ""),
                seed=_field(where, v, "seed", int, None), flops=None if nums["flops"] is None else float(nums["flops"]),
                recipe=_field(where, v, "recipe", str, None), distribution=_field(where, v, "distribution", str, None),
                candidates=_field(where, v, "candidates", int, 1))


def _pick(cands: list[tuple[index.IndexedRun, Mapping[str, Any]]], rule: str
          ) -> tuple[index.IndexedRun, Mapping[str, Any]]:
    def when(r: index.IndexedRun) -> float:
        return r.finished or r.created or 0.0

    if rule == "best":
        return max(cands, key=lambda c: (_f(c[1].get("value")), when(c[0])))
    if rule == "most-episodes":
        return max(cands, key=lambda c: (_n(c[1].get("n")), when(c[0])))
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
            # only scalar values make rows (a list or an object in a record field cannot be a row key)
            if all(isinstance(k, str | int | float) for k in key):
                seen.setdefault(key, None)
    out = []
    for key in sorted(seen, key=lambda k: tuple((str(type(v)), v) for v in k)):
        exact = dict(spec.exact)
        names = {}
        for n, v in zip(spec.expand, key, strict=True):
            exact[FIELD_PATHS.get(n, n)] = v  # the value itself, never a pattern: "gpt*" is not gpt-4o
            names[n.split(".")[-1]] = v
        label = _template(spec.label, names, key)
        series = _template(spec.series, names, ()) if spec.series else None
        concrete = RowSpec(label=label, group=spec.group, model=spec.model, backend=spec.backend,
                           recipe=spec.recipe, flops=spec.flops, seed=spec.seed, where=dict(spec.where),
                           series=series, select=spec.select, exact=exact)
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
                                      ci_high=_nan(m.get("ci_high")), n=_n(m.get("n")), run_id=run.run_id,
                                      run_dir=str(run.run_dir), seed=run.seed, flops=run.flops, recipe=run.recipe,
                                      distribution=run.distribution, candidates=len(cands))
            rows.append(Row(label=label, group=concrete.group, cells=cells, series=concrete.series))
    return BoardTable(name=board.name, title=board.title, columns=list(board.columns), rows=rows,
                      description=board.description, select=board.select, source=source)


def _nan(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return math.nan
    return float(x)


def _n(x: Any) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) and x >= 0 else 0
