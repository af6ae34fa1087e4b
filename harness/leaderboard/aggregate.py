"""Aggregation: a :class:`~harness.leaderboard.schema.Board` filled from the run index. :func:`aggregate`
expands each row spec (``expand``), matches runs to rows and columns, and lets the board's selection rule
(latest, most-episodes or best) pick one run per cell. The result is a :class:`BoardTable` of :class:`Row`
objects holding :class:`Cell` values (value, 95% interval, episode count and the run it came from), which
the render and compare modules consume; ``BoardTable.to_dict``/``from_dict`` round-trip it as plain data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import index
from harness.leaderboard.schema import _COLUMN_KEYS, FIELD_PATHS, Board, Column, RowSpec, _where


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
