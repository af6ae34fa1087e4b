"""Board definitions: what a leaderboard is before any run fills it. A board (usually a TOML file under
``leaderboards/``) names its columns (:class:`Column`: task, split, metric) and its rows (:class:`RowSpec`:
which indexed runs feed a row, by model, backend, recipe, compute, seed or any record field).
:func:`parse_board` checks every key so a typo is an error rather than a silently empty column,
:func:`load_board` reads a TOML file, and :func:`find_board` resolves a board name to a file in
:func:`board_dirs`. Errors are :class:`BoardError`, which the rest of the package raises too.
"""

from __future__ import annotations

import fnmatch
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import index

SELECT_RULES = ("latest", "most-episodes", "best")
FIELD_PATHS = {"model": "model.name", "backend": "model.backend", "recipe": "training.recipe",
               "flops": "training.flops", "step": "training.step"}


class BoardError(ValueError):
    """A board definition or reference that cannot be used; the message says what to fix."""



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
    here = Path(__file__).resolve().parent.parent  # the harness package (this file is harness/leaderboard/schema.py)
    dirs = [(cwd or Path.cwd()) / "leaderboards", here / "boards", here.parent / "leaderboards"]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


PLUGIN_BOARDS: dict[str, Path] = {}  # name -> file, from plugins' harness_boards hook (set by the CLI)


def find_board(ref: str | Path, cwd: Path | None = None) -> Path:
    """A board by path, or by name in :func:`board_dirs`, then among the boards plugins ship."""
    p = Path(ref)
    if p.suffix == ".toml" or p.is_file():
        if p.is_file():
            return p
        raise BoardError(f"no board file {p}")
    for d in board_dirs(cwd):
        cand = d / f"{ref}.toml"
        if cand.is_file():
            return cand
    if str(ref) in PLUGIN_BOARDS:
        return PLUGIN_BOARDS[str(ref)]
    known = sorted({f.stem for d in board_dirs(cwd) for f in d.glob("*.toml")} | set(PLUGIN_BOARDS))
    raise BoardError(f"no board named {str(ref)!r}; known boards: {', '.join(known) or '(none)'}")
