"""Several tasks and splits in one ``harness eval``: one model start, one run per cell, one combined table,
the worst exit status; repeated options are combined (tasks, splits, task args) or refused (the rest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core import helpers
from tests.leaderboard.helpers import run_cli

PLUGINS = ["--plugin", "harness_toy.plugin", "--plugin", "harness_toy.countdown", "--plugin", "tests.core.helpers"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, *PLUGINS, *argv)


def _runs(root: Path) -> list[tuple[str, str]]:
    recs = [json.loads(p.read_text()) for p in root.glob("*/run.json")]
    return sorted((r["task"], r["split"]) for r in recs)


def test_tasks_and_splits_combine_and_the_model_starts_once(capsys, tmp_path: Path) -> None:
    before = len(helpers.STARTS)
    code, out, err = _run(capsys, "eval", "-m", "counting-oracle", "-t", "toy-add", "-t", "countdown,toy-add",
                          "-s", "id", "-s", "ood", "-n", "4", "-o", str(tmp_path))
    assert code == 0, err
    assert len(helpers.STARTS) == before + 1  # one model load for the four runs
    assert _runs(tmp_path) == [("countdown", "id"), ("countdown", "ood"), ("toy-add", "id"), ("toy-add", "ood")]
    assert "4 of 4 runs" in out and out.count("run: ") == 4  # one combined table, then the run directories
    code, out, _ = _run(capsys, "eval", "-m", "counting-oracle", "-t", "toy-add,countdown", "-s", "all", "-n", "4",
                        "-o", str(tmp_path / "j"), "--json")
    assert code == 0 and [(r["task"], r["split"]) for r in json.loads(out)] == [
        ("toy-add", "id"), ("toy-add", "ood"), ("countdown", "id"), ("countdown", "ood")]


@pytest.mark.parametrize(("argv", "needle"), [
    (["-m", "oracle", "-m", "random", "-t", "toy-add"], "--model was given 2 times ('oracle', 'random')"),
    (["-m", "oracle", "-t", "toy-add", "-n", "3", "--episodes", "4"], "--episodes was given 2 times"),
    (["-m", "oracle", "-t", "toy-add", "--seed=1", "--seed", "2"], "--seed was given 2 times"),
    (["-m", "oracle", "-t", "toy-add,countdown", "-s", "big"], "with several tasks, every split must exist"),
    (["-m", "oracle", "-t", "toy-add", "-s", "all,id"], "--split all already means every split"),
    (["-m", "oracle", "--board", "sft-vs-rl", "-t", "toy-add"], "--board picks the tasks and splits itself"),
    (["-m", "oracle", "-t", "toy-add,countdown", "--task-args", "low=2"], "--task-args toy-add:k=v"),
    (["-m", "oracle", "-t", "toy-add", "--task-args", "nope:high=20"], "'nope' is not one of this command's tasks"),
    (["-m", "slow-oracle", "-t", "toy-add", "--model-args", "delay=0", "--model-args", "delay=1"],
     "--model-args: 'delay' is given twice (0 and 1)"),
    (["-m", "oracle", "-t", "toy-add", "--task-args", "high=3", "--task-args", "high=4"],
     "--task-args 'high' is given twice"),
])
def test_refused_before_anything_runs(capsys, tmp_path: Path, argv: list[str], needle: str) -> None:
    code, _, err = _run(capsys, "eval", *argv, "-o", str(tmp_path))
    assert code == 2 and needle in " ".join(err.split()), err
    assert not list(tmp_path.glob("*/run.json"))


def test_repeated_identical_values_are_harmless_and_key_values_merge(capsys, tmp_path: Path) -> None:
    code, _, err = _run(capsys, "eval", "-m", "oracle", "-m", "oracle", "-t", "toy-add", "-n", "3", "-n3",
                        "-o", str(tmp_path))
    assert code == 0, err
    code, out, err = _run(capsys, "eval", "-m", "slow-oracle", "--model-args", "delay=0", "--model-args",
                          "gate=", "--gen-args", "temperature=0.5", "--gen-args", "max_tokens=9", "-t", "toy-add",
                          "-n", "3", "-o", str(tmp_path / "m"), "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert rec["model"]["args"] == {"delay": 0, "gate": ""} and rec["gen"]["max_tokens"] == 9
    assert rec["gen"]["temperature"] == 0.5


def test_scoped_task_args_reach_only_their_task(capsys, tmp_path: Path) -> None:
    code, _, err = _run(capsys, "eval", "-m", "oracle", "-t", "toy-add,countdown", "-n", "3", "-o", str(tmp_path),
                        "--task-args", "countdown:high=20", "--task-args", "toy-add:high=50")
    assert code == 0, err
    recs = [json.loads(p.read_text()) for p in tmp_path.glob("*/run.json")]
    args = {r["task"]: r["task_args"] for r in recs}
    assert args == {"countdown": {"high": 20}, "toy-add": {"high": 50}}


def test_the_worst_exit_status_wins_and_other_runs_still_run(capsys, tmp_path: Path) -> None:
    code, _, _ = _run(capsys, "eval", "-m", "oracle", "-t", "toy-add", "-s", "id", "-n", "3", "-o", str(tmp_path))
    assert code == 0
    # id exists (no --resume): refused with 2; ood still runs; the command exits 2
    code, out, err = _run(capsys, "eval", "-m", "oracle", "-t", "toy-add", "-s", "all", "-n", "3", "-o",
                          str(tmp_path))
    assert code == 2 and "already exists" in err and "not run" in out
    assert _runs(tmp_path) == [("toy-add", "id"), ("toy-add", "ood")]
    # every episode fails on one split: 1, over 0 for the other
    code, _, _ = _run(capsys, "eval", "-m", "scripted", "--model-args", "mode=fail", "-t", "toy-add,countdown",
                      "-n", "2", "-o", str(tmp_path / "f"))
    assert code == 1


def test_an_interrupt_stops_the_runs_not_yet_started(capsys, tmp_path: Path) -> None:
    code, _, err = _run(capsys, "eval", "-m", "scripted", "--model-args", "mode=interrupt,after=0", "-t",
                        "toy-add,countdown", "-s", "all", "-n", "3", "-o", str(tmp_path))
    assert code == 130 and "--resume" in err
    assert _runs(tmp_path) == [("toy-add", "id")]  # the one that was interrupted, recorded as such
    assert json.loads(next(tmp_path.glob("*/run.json")).read_text())["status"] == "interrupted"


def test_board_runs_every_cell_its_columns_need(capsys, tmp_path: Path) -> None:
    board = tmp_path / "toys.toml"
    board.write_text('name = "toys"\ntitle = "Toys"\n'
                     '[[columns]]\ntask = "toy-add"\nsplit = "id"\n'
                     '[[columns]]\ntask = "toy-add"\nsplit = "big"\nmetric = "first_try"\n'
                     '[[columns]]\ntask = "toy-add"\nsplit = "ood"\n'
                     '[[columns]]\ntask = "countdown"\nsplit = "ood"\n'
                     '[[rows]]\nlabel = "Oracle"\nmodel = "oracle"\n')
    runs = tmp_path / "runs"
    code, _, err = _run(capsys, "eval", "-m", "oracle", "--board", str(board), "-n", "3", "-o", str(runs),
                        "--plugin", "harness_plugins.index_observer")
    assert code == 0, err
    assert _runs(runs) == [("countdown", "ood"), ("toy-add", "id"), ("toy-add", "ood")]  # each cell once
    assert "these runs fill row(s) Oracle" in " ".join(err.split())
    code, _, err = _run(capsys, "eval", "-m", "random", "--board", str(board), "-n", "3", "-o", str(runs),
                        "--plugin", "harness_plugins.index_observer")
    assert code == 0 and "no row of board 'toys' matches model 'random'" in " ".join(err.split())
