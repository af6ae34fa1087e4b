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
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import index
from harness.escaping import short_repr

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
    """Which runs feed a row. Strings are globs (a string also matches itself exactly, so a model named
    ``a[1]`` can be written as it is); ``recipe = "none"`` means runs without training info; ``flops`` is a
    number (matched within 1e-6 relative) or ``[low, high]``; ``where`` compares any record field by dotted
    path. ``expand`` splits the row into one row per distinct value of the named fields; each expanded row
    then matches its values exactly (``exact``), never as patterns: a model named ``gpt*`` is not gpt-4o."""

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
    exact: Mapping[str, Any] = field(default_factory=dict)  # dotted path -> value, set by expansion

    def matches(self, run: index.IndexedRun) -> bool:
        for path, want in self.exact.items():
            got = run.get(path)
            if got != want or isinstance(got, bool) != isinstance(want, bool) or type(got) is not type(want):
                return False
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
    return value is not None and (value == pattern or fnmatch.fnmatchcase(value, pattern))


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
            if not _glob(got, want):
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


MAX_BOARD_BYTES = 1 << 20
MAX_FORMAT_NUMBER = 100  # widths and precisions in label templates ("{flops:.3g}"); bigger ones only hang
FORMATS = ("pct", "float")
DISTRIBUTIONS = ("id", "ood")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*\Z")


def _check_keys(what: str, body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(str(k) for k in set(body) - allowed)
    if unknown:
        raise BoardError(f"{what}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _get(where: str, body: Mapping[str, Any], key: str, kind: str, default: Any = None) -> Any:
    """``body[key]`` checked to be of ``kind`` (str, int, num, bool), or ``default`` when absent."""
    if key not in body:
        return default
    v = body[key]
    ok = {"str": isinstance(v, str),
          "int": isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63,
          "num": isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
          "bool": isinstance(v, bool)}[kind]
    if not ok:
        noun = {"str": "a string", "int": "an integer", "num": "a finite number", "bool": "true or false"}[kind]
        raise BoardError(f"{where}.{key} must be {noun}, got {short_repr(v)}")
    return float(v) if kind == "num" else v


def _choice(where: str, body: Mapping[str, Any], key: str, options: tuple[str, ...], default: Any = None) -> Any:
    v = _get(where, body, key, "str", default)
    if v is not None and v not in options:
        raise BoardError(f"{where}.{key} must be one of {', '.join(options)}, got {short_repr(v)}")
    return v


def _tables(where: str, data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    v = data.get(key) or []
    if not isinstance(v, list) or not all(isinstance(x, Mapping) for x in v):
        raise BoardError(f"{where}: '{key}' must be an array of tables ([[{key}]]), got {short_repr(v)}")
    return v


def _where_table(where: str, body: Mapping[str, Any]) -> dict[str, Any]:
    v = body.get("where") or {}
    if not isinstance(v, Mapping):
        raise BoardError(f"{where}.where must be a table of field = value, got {short_repr(v)}")
    for path, want in v.items():
        if not _DOTTED.match(str(path)):
            raise BoardError(f"{where}.where: {short_repr(path)} is not a field path like 'gen.temperature'")
        if not (isinstance(want, str | bool | int) or (isinstance(want, float) and math.isfinite(want))):
            raise BoardError(f"{where}.where.{path} must be a string, number or boolean, got {short_repr(want)}")
    return dict(v)


def check_template(text: str, where: str) -> None:
    """A row label/series template: ``{name}`` or ``{name:spec}`` placeholders with plain names and small
    widths (a width of 10**9 would make formatting hang), nothing else Python's format language allows."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise BoardError(f"{where}: {short_repr(text)} is not a valid template ({exc}); "
                         "write {{ for a literal brace") from None
    for _, name, spec, conv in parts:
        if name is None:
            continue
        if not _NAME.match(name):
            raise BoardError(f"{where}: placeholder {{{name}}} must be a plain field name like {{flops}}")
        if conv not in (None, "r", "s", "a") or "{" in (spec or ""):
            raise BoardError(f"{where}: placeholder {{{name}}} has an unsupported conversion or nested field")
        if any(int(d) > MAX_FORMAT_NUMBER for d in re.findall(r"\d+", spec or "")):
            raise BoardError(f"{where}: placeholder {{{name}:{spec}}} asks for a width or precision over "
                             f"{MAX_FORMAT_NUMBER}")


def _column(where: str, c: Mapping[str, Any], metric: str, board_fmt: str | None) -> Column:
    _check_keys(where, c, _COLUMN_KEYS)
    if "task" not in c or "split" not in c:
        raise BoardError(f"{where} needs 'task' and 'split'")
    return Column(task=_get(where, c, "task", "str"), split=_get(where, c, "split", "str"),
                  metric=_get(where, c, "metric", "str", metric), label=_get(where, c, "label", "str", ""),
                  group=_get(where, c, "group", "str", ""), format=_choice(where, c, "format", FORMATS, board_fmt),
                  distribution=_choice(where, c, "distribution", DISTRIBUTIONS),
                  seed=_get(where, c, "seed", "int"), where=_where_table(where, c))


def _flops(where: str, r: Mapping[str, Any]) -> float | tuple[float, float] | None:
    flops = r.get("flops")
    if isinstance(flops, list):
        if len(flops) != 2:
            raise BoardError(f"{where}.flops must be a number or [low, high], got {short_repr(flops)}")
        lo, hi = (_get(f"{where}.flops", {"low": flops[0], "high": flops[1]}, k, "num") for k in ("low", "high"))
        if lo > hi:
            raise BoardError(f"{where}.flops: low {lo:g} is above high {hi:g}")
        return (lo, hi)
    return _get(where, r, "flops", "num")


def _row(where: str, r: Mapping[str, Any]) -> RowSpec:
    _check_keys(where, r, _ROW_KEYS)
    if "label" not in r:
        raise BoardError(f"{where} needs a 'label'")
    expand = r.get("expand") or ()
    expand = (expand,) if isinstance(expand, str) else expand
    if not isinstance(expand, list | tuple) or not all(isinstance(e, str) and _DOTTED.match(e) for e in expand):
        raise BoardError(f"{where}.expand must be a field name or a list of them (model, recipe, flops, "
                         f"step, backend or a dotted record path), got {short_repr(r.get('expand'))}")
    label = _get(where, r, "label", "str")
    series = _get(where, r, "series", "str")
    if expand:
        check_template(label, f"{where}.label")
        if series is not None:
            check_template(series, f"{where}.series")
    return RowSpec(label=label, group=_get(where, r, "group", "str", ""), model=_get(where, r, "model", "str"),
                   backend=_get(where, r, "backend", "str"), recipe=_get(where, r, "recipe", "str"),
                   flops=_flops(where, r), seed=_get(where, r, "seed", "int"), where=_where_table(where, r),
                   expand=tuple(expand), series=series, select=_choice(where, r, "select", SELECT_RULES))


def parse_board(data: Mapping[str, Any], *, name: str = "board", path: str | None = None) -> Board:
    """Build a :class:`Board` from parsed TOML, checking every key and the type of every value (a typo or a
    wrong type is an error naming the file and the field, not a traceback or a silently empty column)."""
    where = path or name
    if not isinstance(data, Mapping):
        raise BoardError(f"{where}: a board must be a table")
    _check_keys(where, data, _BOARD_KEYS)
    metric = _get(where, data, "metric", "str", "success_rate")
    board_fmt = _choice(where, data, "format", FORMATS)
    columns = [_column(f"{where}: columns[{i}]", c, metric, board_fmt)
               for i, c in enumerate(_tables(where, data, "columns"))]
    rows = [_row(f"{where}: rows[{i}]", r) for i, r in enumerate(_tables(where, data, "rows"))]
    if not columns:
        raise BoardError(f"{where}: a board needs at least one [[columns]] entry")
    if len({c.key for c in columns}) != len(columns):
        raise BoardError(f"{where}: two columns have the same task/split/metric")
    select = _choice(where, data, "select", SELECT_RULES, "latest")
    status = data.get("status", ["complete"])
    status = [status] if isinstance(status, str) else status
    if not isinstance(status, list) or not status or not all(isinstance(x, str) for x in status):
        raise BoardError(f"{where}.status must be a run status or a list of them, got {short_repr(data.get('status'))}")
    alpha = _get(where, data, "alpha", "num", 0.05)
    if not 0 < alpha < 1:
        raise BoardError(f"{where}.alpha must be between 0 and 1, got {alpha:g}")
    board_name = _get(where, data, "name", "str", name)
    return Board(name=board_name, title=_get(where, data, "title", "str", board_name),
                 description=_get(where, data, "description", "str", ""), columns=tuple(columns), rows=tuple(rows),
                 select=select, status=tuple(status), alpha=alpha, path=path)


def load_board(path: Path | str) -> Board:
    path = Path(path)
    try:
        raw = path.read_bytes()
        if len(raw) > MAX_BOARD_BYTES:
            raise BoardError(f"{path}: {len(raw)} bytes is too big for a board file (at most {MAX_BOARD_BYTES})")
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise BoardError(f"cannot read board {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BoardError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise BoardError(f"{path}: nested too deeply to be a board") from None
    return parse_board(data, name=path.stem, path=str(path))


def shipped_dirs() -> list[Path]:
    """Where the boards bundled with harness live: the package's ``boards/`` folder and the source checkout's
    ``leaderboards/`` (their published tables are the reference results harness ships)."""
    here = Path(__file__).resolve().parent.parent  # the harness package (this file is harness/leaderboard/schema.py)
    return [here / "boards", here.parent / "leaderboards"]


def board_dirs(cwd: Path | None = None) -> list[Path]:
    """Where board names are looked up: ./leaderboards, then the boards bundled with the package (the
    package's ``boards/`` folder, or the source checkout's ``leaderboards/``)."""
    dirs = [(cwd or Path.cwd()) / "leaderboards", *shipped_dirs()]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


PLUGIN_BOARDS: dict[str, Path] = {}  # name -> file, from plugins' harness_boards hook (set by the CLI)


def find_board(ref: str | Path, cwd: Path | None = None) -> Path:
    """A board by path, or by name in :func:`board_dirs`, then among the boards plugins ship."""
    try:
        p = Path(ref)
        if p.suffix == ".toml" or p.is_file():
            if p.is_file():
                return p
            raise BoardError(f"no board file {p}")
        for d in board_dirs(cwd):
            cand = d / f"{ref}.toml"
            if cand.is_file():
                return cand
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long for the file system
        if isinstance(exc, BoardError):
            raise
        raise BoardError(f"no board named {str(ref)!r} ({exc})") from None
    if str(ref) in PLUGIN_BOARDS:
        return PLUGIN_BOARDS[str(ref)]
    known = sorted({f.stem for d in board_dirs(cwd) for f in d.glob("*.toml")} | set(PLUGIN_BOARDS))
    raise BoardError(f"no board named {str(ref)!r}; known boards: {', '.join(known) or '(none)'}")
