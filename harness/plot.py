"""Plots from boards: success against training compute (the paper's main figure) and per-column bars.

Drawn with matplotlib's Agg backend (no display needed) to PNG and SVG. The compute plot takes every cell
whose run records ``training.flops``: one panel per task, one colour per series (the row's ``series``, else
the run's recipe), solid lines for in-distribution columns and dashed/dotted ones for OOD columns, with the
95% interval as a shaded band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import index, store
from harness.escaping import plot_text
from harness.leaderboard import Board, BoardError, BoardTable, Column, RowSpec, aggregate

_OOD_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)))
# One colour per recipe, the same in every plot and every command (SFT orange, RL blue, no training grey);
# other recipes get a colour from their name, so it never depends on what else is plotted.
RECIPE_COLOURS = {"sft": "#e66100", "rl": "#1f5fbf", "": "#6e7781"}
_OTHER_COLOURS = ("#2a9d3f", "#9c3fb8", "#b8860b", "#d6336c", "#16a0a8", "#8c564b")
_MARKERS = ("o", "s", "^", "D", "v", "P")


def recipe_colour(recipe: str | None) -> str:
    key = (recipe or "").lower()
    if key in RECIPE_COLOURS:
        return RECIPE_COLOURS[key]
    import hashlib

    return _OTHER_COLOURS[int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(_OTHER_COLOURS)]


class PlotError(ValueError):
    """Nothing to plot, or an unknown column; the message says what is missing."""


@dataclass(frozen=True)
class Point:
    panel: str
    column: Column
    series: str
    x: float
    y: float
    lo: float
    hi: float
    distribution: str
    recipe: str | None = None


def _distribution(col: Column, cell_dist: str | None) -> str:
    return col.distribution or cell_dist or ("id" if col.split == "id" else "ood")


def compute_points(table: BoardTable, columns: Sequence[Column] | None = None) -> list[Point]:
    """Every cell with a training-FLOPs value, as a point of the compute plot."""
    points = []
    for col in columns or table.columns:
        for row in table.rows:
            cell = row.cells.get(col.key)
            if cell is None or cell.flops is None:
                continue
            points.append(Point(panel=col.task, column=col, series=row.series or _recipe(cell.recipe, row.label),
                                x=cell.flops, y=cell.value, lo=cell.ci_low, hi=cell.ci_high,
                                distribution=_distribution(col, cell.distribution), recipe=cell.recipe))
    return points


def _recipe(recipe: str | None, fallback: str) -> str:
    if not recipe:
        return fallback
    return recipe.upper() if len(recipe) <= 4 else recipe


def compute_board(runs: Sequence[index.IndexedRun], metric: str = "success_rate") -> Board:
    """A board over every trained run in ``runs``: one column per task split, one row per (recipe, FLOPs),
    series per recipe and, when runs started from several models, per base model. Used by ``harness plot
    compute`` without ``--board``."""
    trained = [r for r in runs if r.flops is not None and r.status == "complete" and metric in r.metrics]
    keys = sorted({(r.task, r.split, r.distribution or "") for r in trained},
                  key=lambda k: (k[0], k[2] != "id", k[1]))
    columns = tuple(Column(task=t, split=s, metric=metric, distribution=d or None) for t, s, d in keys)
    # Checkpoints are separate models (their paths), so series follow the model training started from:
    # ``training.root_model`` (an RL run started from an SFT checkpoint keeps the SFT run's base model);
    # older records fall back to ``training.base_model``.
    by = next((f for f in ("training.root_model", "training.base_model") if all(r.get(f) for r in trained)),
              "model")
    if len({r.get(by) if by != "model" else r.model for r in trained}) > 1:
        name = by.split(".")[-1]
        rows = (RowSpec(label=f"{{{name}}} {{recipe}} {{flops:.3g}}", recipe="*", series=f"{{{name}}} {{recipe}}",
                        expand=(by, "recipe", "flops")),)
    else:  # one base model: the series are the recipes (upper-cased), as in the paper's figure
        rows = (RowSpec(label="{recipe} {flops:.3g}", recipe="*", expand=("recipe", "flops")),)
    return Board(name="compute", title=f"{metric} vs training compute", columns=columns, rows=rows)


def _figure(n_panels: int) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ncols = min(n_panels, 4)
    nrows = -(-n_panels // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.5 * nrows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels]


def _save(fig: Any, out: Path | str) -> list[Path]:
    """``out`` with .png or .svg writes that file; without a suffix both ``out.png`` and ``out.svg``."""
    import matplotlib.pyplot as plt

    out = Path(out)
    targets = [out] if out.suffix.lower() in (".png", ".svg", ".pdf") else [
        out.with_name(out.name + ".png"), out.with_name(out.name + ".svg")]
    try:
        for t in targets:
            t.parent.mkdir(parents=True, exist_ok=True)
            with store.atomic_path(t) as tmp:  # a full disk leaves the previous plot in place
                fig.savefig(tmp, format=t.suffix.lower().lstrip("."), dpi=150, bbox_inches="tight",
                            metadata={"Date": None} if t.suffix.lower() == ".svg" else None)
    finally:
        plt.close(fig)
    return targets


def _scale(col: Column) -> float:
    return 100.0 if col.fmt() == "pct" else 1.0


def plot_compute(table: BoardTable, out: Path | str, *, columns: Sequence[Column] | None = None,
                 log_x: bool = False, title: str | None = None) -> list[Path]:
    """Metric against training FLOPs, one panel per task (the paper's main figure), saved to ``out``."""
    return _save(compute_figure(table, columns=columns, log_x=log_x, title=title), out)


def compute_figure(table: BoardTable, *, columns: Sequence[Column] | None = None, log_x: bool = False,
                   title: str | None = None) -> Any:
    """The matplotlib figure :func:`plot_compute` saves."""
    from matplotlib.lines import Line2D

    points = compute_points(table, columns)
    if not points:
        raise PlotError("no cell has a run with training FLOPs (record['training']['flops']); evaluate "
                        "checkpoints written by a recipe, or add rows with recipe/flops to the board")
    panels = list(dict.fromkeys(p.panel for p in points))
    series = list(dict.fromkeys(p.series for p in points))
    recipe_of = {s: next(p.recipe for p in points if p.series == s) for s in series}
    colors = {s: recipe_colour(recipe_of[s]) for s in series}
    markers: dict[str, str] = {}  # series sharing a recipe (several base models) differ by marker
    for s in series:
        markers[s] = _MARKERS[sum(1 for t in markers if colors[t] == colors[s]) % len(_MARKERS)]
    fig, axes = _figure(len(panels))
    styles: dict[str, Any] = {}
    for ax, panel in zip(axes, panels, strict=True):
        mine = [p for p in points if p.panel == panel]
        cols = list(dict.fromkeys(p.column.key for p in mine))
        col_of = {p.column.key: p.column for p in mine}
        ood_i = 0
        for key in cols:
            dist = next(p.distribution for p in mine if p.column.key == key)
            if dist == "id":
                style: Any = "-"
            else:
                style = _OOD_STYLES[ood_i % len(_OOD_STYLES)]
                ood_i += 1
            styles.setdefault(_split_label(col_of[key], dist), style)
            for s in series:
                line = sorted((p for p in mine if p.column.key == key and p.series == s), key=lambda p: p.x)
                if not line:
                    continue
                k = _scale(col_of[key])
                xs = [p.x for p in line]
                ax.plot(xs, [k * p.y for p in line], linestyle=style, marker=markers[s], markersize=3.5,
                        color=colors[s], linewidth=1.6)
                if all(math.isfinite(p.lo) and math.isfinite(p.hi) for p in line):  # no NaN intervals
                    ax.fill_between(xs, [k * p.lo for p in line], [k * p.hi for p in line], color=colors[s],
                                    alpha=0.12, linewidth=0)
        first = col_of[cols[0]]
        ax.set_title(plot_text(panel))
        ax.set_xlabel("training FLOPs")
        ax.set_ylabel(plot_text(f"{first.metric}{' (%)' if first.fmt() == 'pct' else ''}"))
        if log_x:
            log_ticks(ax, [p.x for p in mine])
        else:
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[s], marker=markers[s], label=plot_text(s), linewidth=2) for s in series]
    handles += [Line2D([], [], color="0.3", linestyle=st, label=plot_text(lab)) for lab, st in styles.items()]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), frameon=False,
               bbox_to_anchor=(0.5, -0.02 - 0.05 * (len(handles) // 7)))
    fig.suptitle(plot_text(title or table.title))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def log_ticks(ax: Any, xs: Sequence[float]) -> None:
    """A log x axis whose labels never collide: ticks at 1, 2 and 5 x 10^k when the data span about a decade,
    at decades (every second or third one over wide spans) otherwise; labels as ``2e12``; no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    pos = [x for x in xs if x > 0 and math.isfinite(x)]
    if not pos:
        return
    lo, hi = min(pos), max(pos)
    k_lo, k_hi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks: list[float] = []
    for mult in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0 ** k for k in range(k_lo, k_hi + 1) for m in mult if lo / 1.5 <= m * 10.0 ** k <= hi * 1.5]
        if len(ticks) <= 6:
            break
    step = 1
    while len(ticks[::step]) > 6:
        step += 1
    ticks = ticks[::step] or [lo]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _short_e(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(min(lo, ticks[0]) / 1.2, max(hi, ticks[-1]) * 1.2)


def _short_e(x: float) -> str:
    """``2e12``, ``1.5e13``: short enough that six labels fit under a 4-inch panel."""
    if x <= 0:
        return "0"
    k = math.floor(math.log10(x) + 1e-9)
    m = x / 10.0 ** k
    return f"{m:.2g}e{k}"


def _split_label(col: Column, dist: str) -> str:
    return f"{col.split} ({dist})" if dist not in col.split else col.split


def plot_column(table: BoardTable, column: str | Column, out: Path | str, *, kind: str = "bar",
                log_x: bool = False) -> list[Path]:
    """One board column: ``bar`` (a bar per row with its 95% interval) or ``compute`` (against FLOPs)."""
    col = column if isinstance(column, Column) else _find_column(table, column)
    if kind == "compute":
        return plot_compute(table, out, columns=[col], log_x=log_x, title=f"{table.title}: {col.title}")
    if kind != "bar":
        raise PlotError(f"unknown plot kind {kind!r}; kinds: bar, compute")
    rows = [(r.label, r.cells.get(col.key)) for r in table.rows]
    rows = [(label, c) for label, c in rows if c is not None and math.isfinite(c.value)]
    if not rows:
        raise PlotError(f"column {col.title!r} has no values on this board")
    k = _scale(col)
    fig, (ax,) = _figure(1)
    fig.set_size_inches(6.5, 0.9 + 0.38 * len(rows))
    ys = list(range(len(rows)))[::-1]
    vals = [k * c.value for _, c in rows]
    # error bars never negative: intervals read back from disk may sit a hair on the wrong side of the value
    err = [[max(0.0, k * (c.value - c.ci_low)) if c.has_ci else 0.0 for _, c in rows],
           [max(0.0, k * (c.ci_high - c.value)) if c.has_ci else 0.0 for _, c in rows]]
    ax.barh(ys, vals, xerr=err, color=[recipe_colour(c.recipe) for _, c in rows], alpha=0.85, capsize=3,
            error_kw={"linewidth": 1})
    ax.set_yticks(ys, [plot_text(label) for label, _ in rows])
    ax.set_xlabel(plot_text(f"{col.metric}{' (%)' if col.fmt() == 'pct' else ''} [95% CI]"))
    ax.set_title(plot_text(f"{table.title}: {col.title}"))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, out)


def _find_column(table: BoardTable, ref: str) -> Column:
    try:
        cols = table.find_columns(ref)
    except BoardError as exc:
        raise PlotError(str(exc)) from None
    if len(cols) > 1:
        raise PlotError(f"{ref!r} names {len(cols)} columns ({', '.join(c.key for c in cols)}); name one")
    return cols[0]


def compute_table(root: Path | str, board: Board | None = None, metric: str = "success_rate") -> BoardTable:
    """The table a compute plot draws: ``board`` on ``root``, or every trained run there."""
    runs = index.query(root)
    return aggregate(board or compute_board(runs, metric), runs, source=str(root))


__all__ = ["RECIPE_COLOURS", "PlotError", "Point", "compute_board", "compute_figure", "compute_points",
           "compute_table", "log_ticks", "plot_column", "plot_compute", "recipe_colour"]
