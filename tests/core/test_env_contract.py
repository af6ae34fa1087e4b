"""The env contract is checked where it enters the core; a task bug fails the run naming the task plugin; envs
are built as episodes start; the plugins behind a run are recorded, and the task plugin's code is part of the
run's identity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.runner import EvalConfig, Runner, run_dir_for
from harness.simple_task import Judgement, SimpleTask
from harness.types import MetricSpec, SplitSpec
from harness_plugins.baselines import OracleBackend


class Bad(SimpleTask):
    """One task whose env breaks the contract in the way its ``mode`` says."""

    name, description = "bad", "breaks the env contract"
    splits = (SplitSpec("id", "-"),)
    metrics = (MetricSpec("hit", "a rate", "rate"), MetricSpec("frac", "a ratio", "ratio"))
    built = 0

    def __init__(self, *, mode: str = "ok") -> None:
        self.mode = mode
        Bad.built += 1

    def problem(self, rng, options):
        return rng.randint(0, 9)

    def prompt(self, p):
        return "?"

    def judge(self, p, answer):
        if self.mode == "raise":
            raise ZeroDivisionError("a bug in the judge")
        return Judgement(1.0, True)

    def summary(self, p, judgements):
        return {"ok": ({"hit": True, "frac": (1, 2)}, {}), "undeclared": ({"other": 1.0}, {}),
                "bad-rate": ({"hit": "high"}, {}), "bad-ratio": ({"frac": (3, 2)}, {}),
                "raise": ({}, {})}[self.mode]

    def expert(self, p):
        return str(p)

    def random_answer(self, p, rng):
        return "0"


def _run(tmp: Path, mode: str, **kw: Any) -> dict:
    spec = Bad.spec()
    cfg = EvalConfig(task="bad", split="id", model="m", backend="b", episodes=4, task_args={"mode": mode}, **kw)
    return Runner(spec, OracleBackend(), cfg, tmp / mode).run().record


@pytest.mark.parametrize(("mode", "reason"), [
    ("undeclared", "episode metric 'other' is not declared"),
    ("bad-rate", "is a rate metric"),
    ("bad-ratio", "is a ratio metric"),
])
def test_episode_summaries_are_checked_against_the_declared_metrics(tmp_path: Path, mode: str, reason: str) -> None:
    rec = _run(tmp_path, mode)
    assert rec["status"] == "failed" and rec["episodes_failed"] == 4
    assert reason in next(iter(rec["failure_reasons"]))
    assert "task plugin" not in rec["error"] and "a bug in task 'bad'" in rec["error"]


def test_a_well_behaved_task_passes(tmp_path: Path) -> None:
    rec = _run(tmp_path, "ok")
    assert rec["status"] == "complete" and rec["metrics"]["frac"]["value"] == 0.5


def test_an_env_that_raises_fails_the_run_naming_the_task_plugin(tmp_path: Path) -> None:
    prov = {"task": {"plugin": "bad-plugin", "id": "bad-dist 1.2"}}
    rec = _run(tmp_path, "raise", plugins=prov)
    assert rec["status"] == "failed" and rec["plugins"] == prov
    assert "a bug in task plugin 'bad-plugin' (bad-dist 1.2)" in rec["error"]
    assert "ZeroDivisionError: a bug in the judge" in rec["error"] and "test_env_contract.py" in rec["error"]
    assert "cannot fix" in rec["advice"]


def test_envs_are_built_as_episodes_start(tmp_path: Path) -> None:
    Bad.built = 0
    spec = Bad.spec()
    cfg = EvalConfig(task="bad", split="id", model="m", backend="b", episodes=3, batch_size=64)
    Runner(spec, OracleBackend(), cfg, tmp_path / "lazy").run()
    assert Bad.built <= 3 + 1  # one per live episode (the runner checks one before the run directory exists)


PLUGIN = """
from harness import hookimpl
from harness.simple_task import Judgement, SimpleTask
from harness.types import SplitSpec

class Echo(SimpleTask):
    name, description, splits = "echo", "say the number", (SplitSpec("id", "-"),)
    def problem(self, rng, options):
        return rng.randint(0, 9)
    def prompt(self, p):
        return f"Say {p}."
    def judge(self, p, answer):
        return Judgement(1.0 if answer == str(p) else 0.0, answer == str(p), "no")
    def expert(self, p):
        return str(p)
    def random_answer(self, p, rng):
        return "0"
    {extra}

@hookimpl
def harness_tasks():
    return [Echo.spec()]
"""


def _eval(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tmp), "HARNESS_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "harness.cli", "--plugin", "echo_task", "eval", "--model", "oracle",
                           "--task", "echo", "-n", "3", "-o", str(tmp / "runs"), "--json", *args], env=env,
                          capture_output=True, text=True, cwd=tmp, timeout=120)


def test_the_task_plugins_code_is_part_of_the_run_identity(tmp_path: Path) -> None:
    (tmp_path / "echo_task.py").write_text(PLUGIN.replace("{extra}", ""))
    first = _eval(tmp_path)
    assert first.returncode == 0, first.stderr
    rec = json.loads(first.stdout)
    task = rec["plugins"]["task"]
    assert task["plugin"] == "echo_task" and task["editable"] and len(task["source_sha256"]) == 64
    assert rec["identity"]["task_plugin"] == task["id"] and rec["plugins"]["backend"]["plugin"] == "baselines"
    assert {"python", "harness"} <= set(rec["versions"])
    again = _eval(tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr  # same code, same run
    (tmp_path / "echo_task.py").write_text(PLUGIN.replace("{extra}", "version = ''  # edited"))
    edited = _eval(tmp_path)
    assert edited.returncode == 0, edited.stderr  # edited code: a new run, never the old episodes
    assert json.loads(edited.stdout)["run_id"] != rec["run_id"]
    assert len({p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()}) == 2


def test_run_dir_for_without_plugins_is_unchanged(tmp_path: Path) -> None:
    cfg = EvalConfig(task="bad", split="id", model="m", backend="b")
    assert "task_plugin" not in cfg.identity() and run_dir_for(tmp_path, cfg).name.startswith("bad_id_m_")
