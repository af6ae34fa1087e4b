"""SIGKILL `harness eval` mid-run, resume, and compare with an uninterrupted run; one writer per run directory.

Kills wait for a state, never for a number of seconds: the run must have recorded at least k episodes (k
drawn at random) before it is killed, so the test means the same on an idle machine and a busy one.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

TOY = str(Path(__file__).parents[1] / "thirdparty_plugin" / "src")
ROOT = str(Path(__file__).parents[2])
EPISODES = 120


def _harness(*args: str, out: Path, n: int = EPISODES) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([TOY, ROOT]), "HARNESS_NO_PROGRESS": "1",
           "HARNESS_DISABLE_ENTRYPOINTS": "1"}
    cmd = [sys.executable, "-m", "harness.cli", "--plugin", "harness_toy.plugin", "--plugin",
           "harness_plugins.baselines", "--plugin", "tests.core.helpers", "--plugin", "harness_plugins.index_observer",
           "eval",
           "--task", "toy-add", "-n", str(n), "--seed", "11", "-o", str(out), "--json", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _lines(out: Path) -> int:
    return sum(1 for p in out.glob("*/samples.jsonl") for _ in p.open("rb"))


def _wait_for_lines(proc: subprocess.Popen, out: Path, k: int) -> None:
    """Block until the run has written k sample lines (or ended): the state a kill must land in."""
    while _lines(out) < k:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before writing {k} episodes: {proc.stderr.read().decode()}")
        time.sleep(0.005)


def _metrics(proc: subprocess.Popen) -> dict:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()
    return orjson.loads(stdout)["metrics"]


def test_sigkill_at_random_points_then_resume(tmp_path: Path) -> None:
    model = ["--model", "slow-oracle", "--model-args", "delay=0.02", "--batch-size", "3"]
    reference = _metrics(_harness("--model", "slow-oracle", "--model-args", "delay=0", "--batch-size", "3",
                                  out=tmp_path / "ref"))
    mid_run = 0
    for seed in range(3):
        rng = random.Random(seed)
        out = tmp_path / f"k{seed}"
        for _ in range(2):
            proc = _harness(*model, "--resume", out=out)
            _wait_for_lines(proc, out, min(EPISODES // 2, _lines(out) + rng.randint(1, 30)))
            proc.send_signal(signal.SIGKILL)  # anywhere: mid-episode, mid-write of a line, mid-compaction
            proc.wait()
            mid_run += 0 < _lines(out) < EPISODES
        final = _metrics(_harness(*model, "--resume", out=out))
        assert final == reference
        (run_dir,) = [p for p in out.iterdir() if p.is_dir()]  # beside the runs index
        lines = (run_dir / "samples.jsonl").read_bytes().splitlines()
        idx = [orjson.loads(x)["index"] for x in lines]
        assert sorted(idx) == list(range(EPISODES)), "no episode lost or duplicated"
    assert mid_run >= 1, "the kills must land mid-run for this test to mean anything"


def test_sigkill_before_the_first_episode_then_resume(tmp_path: Path) -> None:
    ref = _metrics(_harness("--model", "random", "--batch-size", "5", out=tmp_path / "ref"))
    out = tmp_path / "kr"
    proc = _harness("--model", "random", "--batch-size", "5", out=out)
    proc.send_signal(signal.SIGKILL)  # at once: python has not even imported harness yet
    proc.wait()
    assert _metrics(_harness("--model", "random", "--batch-size", "5", "--resume", out=out)) == ref


def test_a_second_writer_is_refused_and_a_killed_run_shows_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "lock"
    gate = tmp_path / "gate"  # the first run holds after its first batch until the test creates this
    args = ("--model", "slow-oracle", "--model-args", f"delay=0,gate={gate}", "--batch-size", "2")
    first = _harness(*args, out=out)
    try:
        _wait_for_lines(first, out, 1)
        second = _harness(*args, "--resume", out=out)
        _, err = second.communicate(timeout=300)
        text = " ".join(err.decode().split())
        assert second.returncode == 2 and "is being written by pid" in text and str(first.pid) in text
        listing = subprocess.run([sys.executable, "-m", "harness.cli", "runs", "list", "-o", str(out), "--json"],
                                 env={**os.environ, "PYTHONPATH": ROOT, "HARNESS_DISABLE_ENTRYPOINTS": "1"},
                                 capture_output=True, timeout=300, check=True)
        assert [r["status"] for r in json.loads(listing.stdout)] == ["running"]
        first.send_signal(signal.SIGKILL)
        first.wait()
        listing = subprocess.run([sys.executable, "-m", "harness.cli", "runs", "list", "-o", str(out), "--json"],
                                 env={**os.environ, "PYTHONPATH": ROOT, "HARNESS_DISABLE_ENTRYPOINTS": "1"},
                                 capture_output=True, timeout=300, check=True)
        assert [r["status"] for r in json.loads(listing.stdout)] == ["interrupted"]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_sigterm_is_recorded_as_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "term"
    gate = tmp_path / "gate"  # never created: the run holds after its first batch
    proc = _harness("--model", "slow-oracle", "--model-args", f"delay=0,gate={gate}", "--batch-size", "2", out=out)
    _wait_for_lines(proc, out, 2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "--resume" in err.decode()
    (record,) = out.glob("*/run.json")
    rec = orjson.loads(record.read_bytes())
    assert rec["status"] == "interrupted" and rec["episodes_ok"] == 2
    assert _metrics(_harness("--model", "slow-oracle", "--model-args", "delay=0", "--batch-size", "2", "--resume",
                             out=out))["success_rate"]["n"] == EPISODES
