"""CLI commands for runs, leaderboards and plots, added to the groups ``harness.cli`` creates:

``harness runs list|show|reindex``, ``harness leaderboard show|compare|publish``,
``harness plot compute|column``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from harness import index, store
from harness import leaderboard as lb
from harness.console import console, fail, out
from harness.escaping import json_text, markup

RunsOpt = Annotated[Path, typer.Option("--runs", "--output", "-o", help="Runs root directory.")]
DEFAULT_RUNS = Path("runs")


_fail = fail


def _report_skipped(report: index.ScanReport) -> None:
    for path, why in report.skipped:
        console.print(f"[yellow]skipped[/] {markup(path)}: {markup(why)}", highlight=False)


def _board(ref: str) -> lb.Board:
    try:
        return lb.load_board(lb.find_board(ref))
    except lb.BoardError as exc:
        raise _fail(str(exc)) from None


def _table(ref: str, runs: Path) -> lb.BoardTable:
    board = _board(ref)
    if not runs.is_dir():
        raise _fail(f"no runs directory {runs} (pass --runs ROOT)")
    return lb.aggregate(board, runs)


def _when(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, OSError, OverflowError):
        return "-"


def _success(run: index.IndexedRun) -> str:
    m = run.metrics.get("success_rate")
    if not isinstance(m, Mapping) or not isinstance(m.get("value"), int | float):
        return "-"
    return f"{100 * float(m['value']):.1f}%"


# ---------------------------------------------------------------------------------------------- runs


def runs_list(
    output: RunsOpt = DEFAULT_RUNS,
    task: Annotated[str | None, typer.Option("--task", "-t", help="Only this task.")] = None,
    split: Annotated[str | None, typer.Option("--split", "-s", help="Only this split.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model name.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs with this status (complete, ...).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """List indexed runs (the index is brought up to date first)."""
    if not output.is_dir():
        raise _fail(f"no runs directory {output}")
    report = index.sync(output)
    _report_skipped(report)
    runs = index.query(output, task=task, split=split, model=model, status=status, do_sync=False)
    if as_json:
        rows = [{"run_id": r.run_id, "run_dir": str(r.run_dir), "task": r.task, "split": r.split,
                 "model": r.model, "recipe": r.recipe, "flops": r.flops, "seed": r.seed, "episodes": r.episodes,
                 "status": r.status, "finished": r.finished, "metrics": dict(r.metrics)} for r in runs]
        out.print_json(json.dumps(rows, default=str))
        return
    out.print(runs_table(runs, output, width=out.width))


def _when_short(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(float(ts)).strftime("%m-%d %H:%M")
    except (TypeError, ValueError, OSError, OverflowError):
        return "-"


def _left_cut(text: str, width: int) -> str:
    """The end of ``text`` when it is too long: a checkpoint path's informative part is its tail."""
    return text if len(text) <= width else "…" + text[len(text) - width + 1:]


def runs_table(runs: list[index.IndexedRun], output: Path, *, width: int) -> Table:
    """The ``runs list`` table, fitted to ``width`` columns: one line per run, a space between columns, the
    model column (cut at its start, keeping the tail) taking what the others leave. ``id`` is the start of
    the run id's hash (any unique part of a run id is enough for ``runs show``); ``args`` is a digest of
    the rest of its identity (generation and task arguments, budget, model content): runs with equal task,
    model, seed and args have equal configurations."""
    heads = ("id", "task/split", "model", "seed", "args", "training", "n", "success", "status", "finished")
    rows = []
    for r in runs:
        training = "-" if r.flops is None else f"{r.recipe or '?'} {r.flops:.2g}".replace("e+", "e")
        rows.append([r.run_id.rsplit("_", 1)[-1][:7], f"{r.task}/{r.split}", r.model,
                     "-" if r.seed is None else str(r.seed), r.args_digest, training,
                     str(r.episodes if r.episodes is not None else "-"), _success(r), r.status or "-",
                     _when_short(r.finished)])
    rows = [[markup(c, newlines=False) for c in row] for row in rows]
    natural = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(heads)]
    room = width - (sum(natural) - natural[2]) - len(heads)  # one space after each column
    model_w = max(8, min(natural[2], room))
    t = Table(title=markup(f"runs in {output}"), caption=f"{len(runs)} run(s)", caption_justify="left",
              title_justify="left", box=None, padding=(0, 1, 0, 0), pad_edge=False, header_style="bold")
    for i, h in enumerate(heads):
        t.add_column(h, justify="right" if h in ("seed", "n", "success") else "left", no_wrap=True,
                     overflow="ellipsis", width=model_w if i == 2 else None)
    for row in rows:
        row[2] = _left_cut(row[2], model_w)
        t.add_row(*row)
    return t


def runs_show(
    run_id: Annotated[str, typer.Argument(help="A run id, or any unique part of one (the id `runs list` shows).")],
    output: RunsOpt = DEFAULT_RUNS,
) -> None:
    """Print one run's record."""
    if not output.is_dir():
        raise _fail(f"no runs directory {output}")
    run = find_run(output, run_id)
    console.print(f"[dim]{markup(run.run_dir)}[/]", highlight=False)
    out.print_json(json.dumps(dict(run.record), default=str))


def find_run(output: Path, run_id: str) -> index.IndexedRun:
    """The one run whose id is ``run_id``, or the one whose id contains it; otherwise a usage error."""
    runs = index.query(output, run_id=run_id)
    exact = [r for r in runs if r.run_id == run_id]
    runs = exact or runs
    if not runs:
        raise _fail(f"no run {run_id!r} in {output}")
    if len(runs) > 1:
        raise _fail(f"{run_id!r} matches {len(runs)} runs: " + ", ".join(r.run_id for r in runs[:10]))
    return runs[0]


def runs_reindex(output: RunsOpt = DEFAULT_RUNS) -> None:
    """Rebuild the index from every run.json under the runs root (corrupt records are reported)."""
    if not output.is_dir():
        raise _fail(f"no runs directory {output}")
    report = index.rebuild(output)
    _report_skipped(report)
    out.print(markup(f"indexed {report.indexed} run(s), removed {report.removed} stale row(s), "
                     f"skipped {len(report.skipped)}; index: {index.index_path(output)}"), highlight=False)


# ---------------------------------------------------------------------------------------- leaderboard

FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, md, csv, html or json.")]
ColumnsOpt = Annotated[str | None, typer.Option(
    "--columns", "-c", help="Only these columns, comma-separated: task/split[/metric], a label, a column group "
    "or a 1-based position.")]


def _columns(table: lb.BoardTable, columns: str | None) -> lb.BoardTable:
    if not columns:
        return table
    try:
        return table.with_columns(columns.split(","))
    except lb.BoardError as exc:
        raise _fail(str(exc)) from None


def _emit(text: str, dest: Path | None, fmt: str = "") -> None:
    """Rendered text to stdout (renderers escape what they embed; JSON gets its terminal-unsafe characters
    as \\u escapes) or, atomically, to ``dest``: a full disk never leaves half a file in place."""
    if dest is None:
        text = json_text(text) if fmt == "json" else text
        out.out(text, highlight=False, end="" if text.endswith("\n") else "\n")
        return
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        store.write_text_atomic(dest, text)
    except OSError as exc:
        raise _fail(f"cannot write {dest}: {exc.strerror or exc}; nothing was changed there") from None
    console.print(f"wrote {markup(dest)}", highlight=False)


def board_show(
    board: Annotated[str, typer.Argument(help="Board name (./leaderboards, bundled) or a .toml path.")],
    fmt: FormatOpt = "table",
    runs: RunsOpt = DEFAULT_RUNS,
    dest: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
    columns: ColumnsOpt = None,
) -> None:
    """Render a board from the runs index. The terminal table fits the terminal's width: each value over its
    interval, and several tables of consecutive columns where one would not fit (`--columns` picks some)."""
    table = _columns(_table(board, runs), columns)
    if fmt == "table":
        if dest is not None:
            raise _fail("--format table prints to the terminal; use md, csv, html or json with --out")
        out.print(lb.to_rich(table, width=out.width))
        return
    try:
        text = lb.render(table, fmt)
    except lb.BoardError as exc:
        raise _fail(str(exc)) from None
    _emit(text, dest, fmt)


def _side(ref: str, board: str | None, runs: Path) -> tuple[lb.BoardTable, str]:
    """One side of a comparison: a published table (.md/.json), a runs root (needs --board), or a board;
    with the words captions use for it."""
    p = Path(ref)
    try:
        if p.is_file() and p.suffix in (".md", ".json"):
            return lb.read_table(p), f"published table {ref}"
        if p.is_dir():
            if board is None:
                raise _fail(f"{ref} is a runs directory: name the board to compare with --board")
            return lb.aggregate(_board(board), p), f"runs in {ref} (board {board})"
    except lb.BoardError as exc:
        raise _fail(str(exc)) from None
    return _table(ref, runs), f"board {ref} on the runs in {runs}"


def board_compare(
    a: Annotated[str, typer.Argument(help="A board, a runs root (with --board) or a published .md/.json.")],
    b: Annotated[str, typer.Argument(help="The same kinds as A.")],
    board: Annotated[str | None, typer.Option("--board", help="Board used for runs-root sides.")] = None,
    runs: RunsOpt = DEFAULT_RUNS,
    fmt: FormatOpt = "table",
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    dest: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
    columns: ColumnsOpt = None,
) -> None:
    """Two boards, run sets or published tables side by side, with deltas and significance."""
    if not 0 < alpha < 1:
        raise _fail(f"--alpha must be between 0 and 1, got {alpha}")
    (ta, name_a), (tb, name_b) = _side(a, board, runs), _side(b, board, runs)
    try:
        cmp = lb.compare(_columns(ta, columns), _columns(tb, columns), alpha=alpha, a_name=name_a, b_name=name_b)
    except lb.BoardError as exc:
        raise _fail(str(exc)) from None
    if fmt == "table" and dest is None:
        out.print(lb.comparison_to_rich(cmp))
    elif fmt in ("md", "markdown", "table"):
        _emit(lb.comparison_to_markdown(cmp), dest)
    elif fmt == "json":
        _emit(lb.comparison_to_json(cmp), dest, "json")
    else:
        raise _fail(f"compare formats: table, md, json (not {fmt!r})")


def board_publish(
    board: Annotated[str, typer.Argument(help="Board name or .toml path.")],
    runs: RunsOpt = DEFAULT_RUNS,
    dest: Annotated[Path | None, typer.Option("--out", help="Default: <board dir>/<name>.md.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a table shipped with harness.")] = False,
) -> None:
    """Regenerate BOARD.md (beside the board's TOML) from the runs index. The tables shipped with harness
    are replaced only with --force; --out writes anywhere else."""
    spec = _board(board)
    if not runs.is_dir():
        raise _fail(f"no runs directory {runs} (pass --runs ROOT)")
    target = dest or lb.default_publish_path(spec)
    before = lb.describe_table(target) if target.exists() else None
    try:
        path = lb.publish(spec, runs, target, force=force)
    except lb.BoardError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write {exc.filename or dest}: {exc.strerror or exc}; the published table is "
                    "unchanged") from None
    now = lb.describe_table(path)
    if before is None:
        out.print(f"wrote {markup(path)} ({markup(now)})", highlight=False)
    else:
        out.print(f"replaced {markup(path)}: it held {markup(before)}; now {markup(now)}", highlight=False)


# ---------------------------------------------------------------------------------------------- plot


def _matplotlib() -> None:
    """`harness plot` draws with matplotlib, an optional dependency: say which extra brings it."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise _fail("harness plot needs matplotlib: pip install 'harness[plots]'")


def plot_compute_cmd(
    board: Annotated[str | None, typer.Option("--board", help="Board to plot (default: every trained run).")]
    = None,
    runs: RunsOpt = DEFAULT_RUNS,
    dest: Annotated[Path, typer.Option("--out", help="File (.png/.svg) or a stem for both.")] = Path(
        "plots/compute"),
    metric: Annotated[str, typer.Option(help="Metric when no board is given.")] = "success_rate",
    log_x: Annotated[bool, typer.Option("--log-x", help="Logarithmic FLOPs axis.")] = False,
) -> None:
    """Success against training FLOPs for each recipe, in-distribution and OOD (the paper's figure)."""
    _matplotlib()
    from harness import plot

    if not runs.is_dir():
        raise _fail(f"no runs directory {runs}")
    try:
        table = plot.compute_table(runs, _board(board) if board else None, metric)
        paths = plot.plot_compute(table, dest, log_x=log_x)
    except plot.PlotError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write {exc.filename or dest}: {exc.strerror or exc}") from None
    for p in paths:
        out.print(f"wrote {markup(p)}", highlight=False)


def plot_column_cmd(
    board: Annotated[str, typer.Argument(help="Board name or .toml path.")],
    column: Annotated[str, typer.Argument(help="Column: task/split/metric, task/split, label or 1-based index.")],
    kind: Annotated[str, typer.Option(help="bar (one bar per row) or compute (against training FLOPs).")]
    = "bar",
    runs: RunsOpt = DEFAULT_RUNS,
    dest: Annotated[Path | None, typer.Option("--out", help="File (.png/.svg) or a stem for both.")] = None,
    log_x: Annotated[bool, typer.Option("--log-x")] = False,
) -> None:
    """Plot one board column."""
    _matplotlib()
    from harness import plot

    table = _table(board, runs)
    try:
        target = dest or Path("plots") / f"{table.name}-{column.replace('/', '-')}"
        paths = plot.plot_column(table, column, target, kind=kind, log_x=log_x)
    except plot.PlotError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write {exc.filename or dest}: {exc.strerror or exc}") from None
    for p in paths:
        out.print(f"wrote {markup(p)}", highlight=False)


_REGISTERED: set[int] = set()


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add the commands to ``groups['runs']``, ``groups['leaderboard']`` and ``groups['plot']``."""
    del app  # everything lives in sub-groups
    runs_g, board_g, plot_g = groups["runs"], groups["leaderboard"], groups["plot"]
    if id(runs_g) in _REGISTERED:  # idempotent: the CLI may be built more than once in one process
        return
    _REGISTERED.add(id(runs_g))
    runs_g.command("list")(runs_list)
    runs_g.command("show")(runs_show)
    runs_g.command("reindex")(runs_reindex)
    board_g.command("show")(board_show)
    board_g.command("compare")(board_compare)
    board_g.command("publish")(board_publish)
    plot_g.command("compute")(plot_compute_cmd)
    plot_g.command("column")(plot_column_cmd)


__all__ = ["register"]
