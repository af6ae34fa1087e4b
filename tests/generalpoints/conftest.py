"""Shared helpers for the GeneralPoints tests: the task specs and a tiny Runner driver."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from harness.runner import EvalConfig, Runner
from harness.types import Backend, Completion, GenParams, Request, RunResult, TaskSpec
from harness_tasks.generalpoints.plugin import harness_tasks


@pytest.fixture(scope="session")
def tasks() -> dict[str, TaskSpec]:
    return {t.name: t for t in harness_tasks()}


class ScriptedBackend:
    """Answers turn k of every episode with ``script[k]`` (``None`` means the oracle's answer) and keeps
    every request it saw."""

    def __init__(self, script: Sequence[str | None]) -> None:
        self.script = list(script)
        self.requests: list[Request] = []

    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        out = []
        for r in requests:
            self.requests.append(r)
            ans = self.script[min(r.turn, len(self.script) - 1)]
            out.append(Completion(ans if ans is not None else r.expert()))  # type: ignore[misc]
        return out

    def close(self) -> None:
        pass


def run_episodes(task: TaskSpec, backend: Backend, tmp: Path, split: str = "id", episodes: int = 20,
                 **kw: object) -> RunResult:
    cfg = EvalConfig(task=task.name, split=split, model="test", backend="test", episodes=episodes, **kw)
    return Runner(task, backend, cfg, tmp / f"run-{task.name}-{split}").run()


@pytest.fixture
def play(tmp_path: Path) -> Callable[..., RunResult]:
    """``play(task, backend, split=..., episodes=...)`` runs episodes through the real Runner."""

    def _play(task: TaskSpec, backend: Backend, split: str = "id", episodes: int = 20, **kw: object) -> RunResult:
        return run_episodes(task, backend, tmp_path, split, episodes, **kw)

    return _play


@pytest.fixture
def scripted() -> type[ScriptedBackend]:
    return ScriptedBackend
