"""Runs reach the index through the harness_run_finished hook; a third party exports through it too."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness import index
from harness import leaderboard as lb
from harness.plugins import load_registry
from harness.runner import EvalConfig, Runner, run_dir_for
from harness_plugins.baselines import OracleBackend, RandomBackend

EXPORTER = '''
from pathlib import Path
from harness import hookimpl

@hookimpl
def harness_run_finished(run, run_dir):
    line = f"{run['run_id']},{run['task']},{run['split']},{run['metrics']['success_rate']['value']}\\n"
    with (Path(run_dir).parent / "export.csv").open("a") as f:
        f.write(line)
'''


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    plugdir = tmp_path / "plug"
    plugdir.mkdir()
    (plugdir / "lb_test_exporter.py").write_text(textwrap.dedent(EXPORTER))
    monkeypatch.syspath_prepend(str(plugdir))
    monkeypatch.delenv("HARNESS_NO_INDEX", raising=False)
    return load_registry(["harness_toy.plugin", "harness_plugins.index_observer", "lb_test_exporter"],
                         entry_points=False)


def _run(reg, root: Path, backend, name: str, split: str = "id"):
    cfg = EvalConfig(task="toy-add", split=split, model=name, backend=name, episodes=12, seed=0, batch_size=4)
    result = Runner(reg.task("toy-add"), backend, cfg, run_dir_for(root, cfg)).run()
    reg.notify_run_finished(result.record, result.run_dir)  # what `harness eval` does after each run
    return result


def test_observer_indexes_and_third_party_exports(tmp_path: Path, registry) -> None:
    root = tmp_path / "runs"
    oracle = _run(registry, root, OracleBackend(), "oracle")
    rnd = _run(registry, root, RandomBackend(), "random")
    rows = index.query(root, do_sync=False)  # in the index without any sync: the observer put them there
    assert {r.run_id for r in rows} == {Path(oracle.run_dir).name, Path(rnd.run_dir).name}
    assert {r.model: r.status for r in rows} == {"oracle": "complete", "random": "complete"}
    export = (root / "export.csv").read_text().splitlines()
    assert len(export) == 2 and export[0].endswith(",toy-add,id,1.0")
    board = lb.parse_board({"name": "toy", "columns": [{"task": "toy-add", "split": "id"},
                                                       {"task": "toy-add", "split": "id", "metric": "first_try"}],
                            "rows": [{"label": "oracle", "model": "oracle"}, {"label": "random", "model": "random"}]})
    table = lb.aggregate(board, root)
    assert table.rows[0].cells["toy-add/id/success_rate"].value == 1.0
    assert table.rows[1].cells["toy-add/id/first_try"].n == 12
    # same seed, same episodes: the real runner's records pair up for McNemar
    cmp = lb.compare(table, table)
    assert cmp.deltas[("oracle", "toy-add/id/success_rate")].test == "mcnemar-exact"


def test_observer_can_be_switched_off(tmp_path: Path, registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_NO_INDEX", "1")
    root = tmp_path / "runs"
    _run(registry, root, OracleBackend(), "oracle")
    assert not (root / "index.sqlite").exists()
    assert len(index.query(root)) == 1  # a query syncs, so the run is still found
