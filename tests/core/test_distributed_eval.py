"""``harness eval`` over several processes (torchrun, gloo on CPU): each process plays its share of every
run's episodes with its own model copy; the main process records one run equal to a one-process run, and
a killed multi-process run holds its lock while alive and resumes (with one process) to the same metrics.

(``accelerate launch --cpu --num_processes 2`` starts a single process on CPU, so the test launches with
``torch.distributed.run``; on GPUs ``accelerate launch`` starts the same processes with the same variables.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

pytest.importorskip("torch.distributed")

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ("--plugin", "harness_plugins.baselines", "--plugin", "tests.core.helpers",
           "--plugin", "harness_plugins.index_observer")


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "HARNESS_NO_PROGRESS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _cmd(nproc: int, *argv: str) -> list[str]:
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] \
        if nproc > 1 else [sys.executable]
    return [*launch, "-m", "harness.cli", *PLUGINS, "eval", *argv]


def _eval(nproc: int, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(nproc, *argv), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)


def _runs(root: Path) -> dict[str, tuple[dict, list[dict]]]:
    out = {}
    for run_json in sorted(root.glob("*/run.json")):
        lines = (run_json.parent / "samples.jsonl").read_bytes().splitlines()
        out[run_json.parent.name] = (orjson.loads(run_json.read_bytes()), [orjson.loads(x) for x in lines])
    return out


def _same(a: dict, b: dict) -> None:
    assert len(a) == len(b) and a
    for (name, (rec_a, samples_a)), (rec_b, samples_b) in zip(sorted(a.items()), [b[k] for k in sorted(b)],
                                                               strict=True):
        assert rec_a["metrics"] == rec_b["metrics"] and rec_a["status"] == rec_b["status"] == "complete", name
        by_index = {s["index"]: s for s in samples_b}
        assert len(samples_a) == len(samples_b) == len(by_index)  # one line per episode: nothing doubled
        for s in samples_a:  # the same episodes, seeds, answers, rewards and what was shown
            t = by_index[s["index"]]
            assert (s["episode_seed"], s["turns"], s["reward"], s["success"]) == (
                t["episode_seed"], t["turns"], t["reward"], t["success"])


def test_two_processes_make_the_run_one_process_makes(tmp_path: Path) -> None:
    from harness_plugins.hf.tiny import make_tiny

    model = make_tiny("llama", tmp_path / "tiny")
    # batch size 1: a batch's composition (which differs between shards) cannot change a greedy answer then
    args = ["-m", str(model), "-t", "gp-l", "-s", "all", "-n", "3", "--max-tokens", "6", "--batch-size", "1",
            "--verify-iter", "1", "--task-args", "answer_after_budget=false"]  # one answer per episode: fast
    two = _eval(2, *args, "-o", str(tmp_path / "two"), cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    from harness.cli import main  # the one-process run in this process: no second start-up to pay for

    with pytest.raises(SystemExit) as done:
        main([*PLUGINS, "eval", *args, "-o", str(tmp_path / "one")])
        raise SystemExit(0)
    assert done.value.code in (0, None)
    one_runs, two_runs = _runs(tmp_path / "one"), _runs(tmp_path / "two")
    assert one_runs.keys() == two_runs.keys()  # the same run ids: the same identities
    _same(one_runs, two_runs)
    assert not list((tmp_path / "two").glob("*/samples.part-*"))  # folded into samples.jsonl
    records = [r for r, _ in _runs(tmp_path / "two").values()]
    assert all(r["processes"] == 2 for r in records)
    assert two.stdout.count("gp-l/ood-rule") == 1  # one combined table, printed by the main process only


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def test_a_killed_multiprocess_run_is_locked_then_resumes_to_the_same_metrics(tmp_path: Path) -> None:
    gate = tmp_path / "gate"  # the backend holds its second call until this exists: the run waits mid-way
    args = ["-m", "slow-oracle", "--model-args", f"delay=0,gate={gate}", "-t", "gp-l", "-n", "16",
            "--batch-size", "2"]
    runs = tmp_path / "runs"
    proc = subprocess.Popen(_cmd(2, *args, "-o", str(runs)), cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        run_dir = None
        while proc.poll() is None:  # wait for a state: both processes have recorded their first batch
            found = list(runs.glob("gp-l_id_*"))
            if found and _lines(found[0] / "samples.jsonl") >= 2 and _lines(found[0] / "samples.part-1.jsonl") >= 2:
                run_dir = found[0]
                break
            time.sleep(0.05)  # polling for that state, not waiting a set time
        assert run_dir is not None, proc.communicate()[1][-3000:]
        second = _eval(1, *args, "-o", str(runs), "--resume", cwd=tmp_path)
        assert second.returncode == 2 and "is being written by pid" in second.stderr
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"  # killed: no chance to say
    gate.touch()
    resumed = _eval(1, *args, "-o", str(runs), "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not list(run_dir.glob("samples.part-*"))
    # the same episodes played by one uninterrupted process (in this one: no start-up to pay for)
    from harness.plugins import load_registry
    from harness.runner import EvalConfig, Runner
    from tests.core.helpers import SlowOracle

    cfg = EvalConfig(task="gp-l", split="id", model="ref", backend="ref", episodes=16, batch_size=2)
    Runner(load_registry([]).task("gp-l"), SlowOracle(0), cfg, tmp_path / "fresh" / "ref").run()
    _same(_runs(tmp_path / "fresh"), _runs(runs))
