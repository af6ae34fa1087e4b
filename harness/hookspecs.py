"""The plugin contract. A plugin is a module (or object) with any of these functions decorated by
``harness.hookimpl``; it is found through the ``harness`` entry-point group or ``--plugin module.path``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pluggy

from harness.records import RunRecord
from harness.types import BackendSpec, ModelAlias, RecipeSpec, TaskSpec

PROJECT = "harness"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def harness_tasks() -> Sequence[TaskSpec]:  # type: ignore[empty-body]
    """Return the tasks this plugin provides."""


@hookspec
def harness_backends() -> Sequence[BackendSpec]:  # type: ignore[empty-body]
    """Return model backend factories (hf, vllm, openai, oracle, random, ...)."""


@hookspec
def harness_models() -> Sequence[ModelAlias]:  # type: ignore[empty-body]
    """Return model aliases: a name mapped to a backend and its arguments."""


@hookspec
def harness_recipes() -> Sequence[RecipeSpec]:  # type: ignore[empty-body]
    """Return post-training recipes (sft, rl, ...)."""


@hookspec
def harness_run_finished(run: RunRecord, run_dir: str) -> None:
    """Called after a run's record is written: index it, export it, notify someone. ``run`` is the record
    as in ``run.json`` (:class:`harness.records.RunRecord`)."""


@hookspec
def harness_cli(app: Any, groups: Mapping[str, Any]) -> None:
    """Add commands to the CLI: ``app`` is the root typer app, ``groups`` its sub-apps by name
    (``models``, ``runs``, ``leaderboard``, ``plot``)."""


@hookspec
def harness_boards() -> Sequence[str]:  # type: ignore[empty-body]
    """Return paths of leaderboard TOML files this plugin ships; ``harness leaderboard show NAME`` finds them
    by file name (after ./leaderboards and the boards bundled with harness)."""
