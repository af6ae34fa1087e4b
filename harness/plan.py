"""Which runs one ``harness eval`` makes: every (task, split) of ``--task a,b --split x,y|all``, or every cell a
board needs (``--board NAME``: the distinct task/split pairs of its columns). Each cell is its own run, with
its own directory, identity, resume and status; the command loads the model once for all of them.

``--task-args`` apply to every task, except those written ``TASK:k=v`` (or ``TASK:{json}``), which apply to
that task alone: ``--task-args gp-vl:image_size=800 --task-args virl-vl:data=routes/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.types import TaskSpec


class PlanError(ValueError):
    """The tasks, splits or board asked for do not make a plan (the message says what to pass)."""


@dataclass(frozen=True)
class Cell:
    task: TaskSpec
    split: str  # the split's name (never an alias)


def names(values: Iterable[str] | None) -> list[str]:
    """Repeated and comma-separated values as one list, in order, each once (``-t a,b -t c``)."""
    out: list[str] = []
    for value in values or ():
        for name in value.split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out


def cells(get_task: Callable[[str], TaskSpec], tasks: Sequence[str], splits: Sequence[str]) -> list[Cell]:
    """Every task with every split (``all``: each task's own splits). A split a task lacks is refused, so a
    typo never quietly runs less than asked."""
    if not tasks:
        raise PlanError("no task given: pass --task NAME (several: --task a,b) or --board NAME")
    out: list[Cell] = []
    for name in tasks:
        spec = get_task(name)
        if not splits or "all" in splits:
            if len(splits) > 1:
                raise PlanError("--split all already means every split; give it alone")
            wanted = [s.name for s in spec.splits]
        else:
            wanted = []
            for s in splits:
                try:
                    wanted.append(spec.split(s).name)
                except KeyError as exc:
                    more = (" (with several tasks, every split must exist in each; use --split all, or one command "
                            "per task)") if len(tasks) > 1 else ""
                    raise PlanError(str(exc).strip("'\"") + more) from None
        for split in wanted:
            cell = Cell(spec, split)
            if cell not in out:
                out.append(cell)
    return out


def board_cells(get_task: Callable[[str], TaskSpec], columns: Iterable[Any]) -> list[Cell]:
    """The distinct (task, split) pairs of a board's columns, in column order."""
    out: list[Cell] = []
    for col in columns:
        spec = get_task(col.task)
        try:
            cell = Cell(spec, spec.split(col.split).name)
        except KeyError as exc:
            raise PlanError(f"board column {col.task}/{col.split}: {str(exc).strip(chr(39) + chr(34))}") from None
        if cell not in out:
            out.append(cell)
    return out


def task_args(values: Iterable[str] | None, tasks: Sequence[str], parse: Callable[[str, str], dict[str, Any]]
              ) -> dict[str, dict[str, Any]]:
    """Task arguments per task: unscoped values apply to all, ``TASK:...`` to that task (later wins)."""
    common: dict[str, Any] = {}
    scoped: dict[str, dict[str, Any]] = {t: {} for t in tasks}
    for value in values or ():
        head, sep, rest = value.partition(":")
        if sep and "=" not in head and "{" not in head and head.strip() in scoped:
            _merge(scoped[head.strip()], parse(rest, f"--task-args {head.strip()}:"), f"--task-args {head.strip()}:")
        elif sep and "=" not in head and "{" not in head:
            raise PlanError(f"--task-args {value!r}: {head.strip()!r} is not one of this command's tasks "
                            f"({', '.join(tasks)})")
        else:
            _merge(common, parse(value, "--task-args"), "--task-args")
    return {t: {**common, **scoped[t]} for t in tasks}


def _merge(into: dict[str, Any], more: Mapping[str, Any], what: str) -> None:
    for key, v in more.items():
        if key in into and into[key] != v:
            raise PlanError(f"{what} {key!r} is given twice ({into[key]!r} and {v!r}); give it once")
        into[key] = v


def worst_exit(codes: Iterable[int]) -> int:
    """The exit status of several runs: interrupted (130) over usage (2) over failed (1) over complete (0)."""
    rank: Mapping[int, int] = {0: 0, 1: 1, 2: 2, 130: 3}
    return max(codes, key=lambda c: rank.get(c, 2), default=0)


__all__ = ["Cell", "PlanError", "board_cells", "cells", "names", "task_args", "worst_exit"]
