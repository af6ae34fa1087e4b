"""Comparing two board tables (two run sets, boards or published tables) cell by cell. :func:`compare`
aligns rows by label and columns by task/split/metric and gives each cell a :class:`Delta` with a
significance verdict: an exact McNemar test (:func:`mcnemar_exact`) or a paired bootstrap
(:func:`paired_bootstrap`) when both runs evaluated the same episodes (read back from their
``samples.jsonl``), otherwise whether the 95% intervals overlap. The resulting :class:`Comparison` renders
to a rich table, markdown or JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import store
from harness.escaping import markup, md
from harness.leaderboard.aggregate import BoardTable, Cell
from harness.leaderboard.render import _jsonable, fmt_value
from harness.leaderboard.schema import BoardError, Column
from harness.store import read_samples


@dataclass(frozen=True)
class Delta:
    row: str
    column: str
    a: Cell | None
    b: Cell | None
    delta: float | None  # the B - A that is shown and tested: over the paired episodes when tested pairwise
    test: str  # mcnemar-exact, paired-bootstrap, ci-overlap or none
    p_value: float | None
    significant: bool | None
    detail: str = ""
    paired_n: int = 0  # episodes both runs played (0: not paired)
    cell_delta: float | None = None  # B's cell value - A's (differs from delta when the runs cover other episodes)


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
    if metric == "success_rate":  # an episode that failed counts as unsolved, as in the runs' success_rate
        return sample.get("status") == "ok" and bool(sample.get("success"))
    if sample.get("status") != "ok":
        return None
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
        if sa.get("episode_seed") != sb.get("episode_seed"):
            continue
        x, y = _episode_value(sa, metric), _episode_value(sb, metric)
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return (xs, ys) if xs else None


def _pooled(values: Sequence[Any]) -> float:
    """The metric over paired episodes as the runs compute it: pooled hits/total for ratios, else the mean."""
    if values and isinstance(values[0], list | tuple):
        total = sum(float(v[1]) for v in values)
        return sum(float(v[0]) for v in values) / total if total else math.nan
    return math.fsum(float(v) for v in values) / len(values)


def compare_cells(a: Cell | None, b: Cell | None, col: Column, row: str, alpha: float = 0.05) -> Delta:
    if a is None or b is None or math.isnan(a.value) or math.isnan(b.value):
        return Delta(row, col.key, a, b, None, "none", None, None)
    cell_delta = b.value - a.value
    paired = paired_values(a, b, col.metric)
    if paired is not None:
        xs, ys = paired
        delta = _pooled(ys) - _pooled(xs)  # what the paired test is about: the same episodes on both sides
        covers = "" if len(xs) == a.n == b.n else f" (A has {a.n}, B {b.n})"
        if all(isinstance(v, bool) for v in (*xs, *ys)):
            p, n01, n10 = mcnemar_exact(xs, ys)
            return Delta(row, col.key, a, b, delta, "mcnemar-exact", p, p < alpha,
                         f"{len(xs)} paired episodes{covers}; A-only {n10}, B-only {n01}; p={p:.3g}",
                         len(xs), cell_delta)
        p, lo, hi = paired_bootstrap(xs, ys)
        return Delta(row, col.key, a, b, delta, "paired-bootstrap", p, p < alpha,
                     f"{len(xs)} paired episodes{covers}; 95% CI of B-A [{lo:.3g}, {hi:.3g}]; p={p:.3g}",
                     len(xs), cell_delta)
    if not (a.has_ci and b.has_ci):
        return Delta(row, col.key, a, b, cell_delta, "none", None, None, "no intervals", 0, cell_delta)
    overlap = a.ci_low <= b.ci_high and b.ci_low <= a.ci_high
    return Delta(row, col.key, a, b, cell_delta, "ci-overlap", None, not overlap,
                 "intervals overlap" if overlap else "intervals disjoint", 0, cell_delta)


def compare(a: BoardTable, b: BoardTable, *, alpha: float = 0.05, a_name: str | None = None,
            b_name: str | None = None) -> Comparison:
    """Align rows by label and columns by task/split/metric; cells present on one side only show as such.
    ``a_name``/``b_name`` say what each side is in captions (default: the table's source or name)."""
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
    return Comparison(a_name=a_name or a.source or a.name, b_name=b_name or b.source or b.name, columns=columns,
                      rows=labels, deltas=deltas, alpha=alpha)


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
    paired = f" paired, n={d.paired_n}, p={d.p_value:.2g}" if d.paired_n and d.p_value is not None else ""
    return f"{a} → {b} ({sign}{mag}{paired}{mark})"


def comparison_legend(cmp: Comparison) -> str:
    return (f"A = {cmp.a_name}. B = {cmp.b_name}. Cells: A → B (B − A). Where both runs played the same "
            "episodes (same task, split and seed) the difference is over those episodes and tested pairwise "
            "(\"paired, n=episodes, p=...\": exact McNemar for success rates, a paired bootstrap for other "
            "metrics); otherwise it is the difference of the cell values and * means disjoint 95% intervals. "
            f"* = significant at alpha {cmp.alpha}; (ns) = not significant.")


def comparison_to_rich(cmp: Comparison) -> Any:
    from rich.table import Table

    t = Table(title=markup(f"comparison: A = {cmp.a_name}; B = {cmp.b_name}"), caption=markup(comparison_legend(cmp)),
              title_justify="left", caption_justify="left")
    t.add_column("row", style="bold")
    for c in cmp.columns:
        t.add_column(markup(c.title, newlines=False), justify="right")
    for label in cmp.rows:
        t.add_row(markup(label, newlines=False), *[markup(fmt_delta(cmp.deltas[(label, c.key)], c))
                                                   for c in cmp.columns])
    return t


def comparison_to_markdown(cmp: Comparison) -> str:
    head = ["Model"] + [c.title for c in cmp.columns]
    lines = ["| " + " | ".join(md(h) for h in head) + " |",
             "|:---|" + "|".join(["---:"] * len(cmp.columns)) + "|"]
    for label in cmp.rows:
        cells = [fmt_delta(cmp.deltas[(label, c.key)], c) for c in cmp.columns]  # our own numbers
        lines.append("| " + " | ".join([md(label), *cells]) + " |")
    return "\n".join([*lines, "", md(comparison_legend(cmp)), ""])


def comparison_to_json(cmp: Comparison) -> str:
    out = {"a": cmp.a_name, "b": cmp.b_name, "alpha": cmp.alpha,
           "columns": [{"key": c.key, "title": c.title} for c in cmp.columns],
           "cells": [{"row": d.row, "column": d.column, "a": asdict(d.a) if d.a else None,
                      "b": asdict(d.b) if d.b else None, "delta": d.delta, "test": d.test, "p_value": d.p_value,
                      "significant": d.significant, "detail": d.detail, "paired_n": d.paired_n,
                      "cell_delta": d.cell_delta} for d in cmp.deltas.values()]}
    return store.dumps(_jsonable(out), indent=True).decode()
