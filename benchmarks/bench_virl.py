"""V-IRL throughput: steps per second with the oracle backend through ``harness.runner.Runner`` on one core.

Everything but a model is timed: route generation, rendering (virl-vl), prompt building, answer parsing
and verification, and writing samples.jsonl. The first episodes of a process also build the city and the
render caches; ``--warmup`` runs a few episodes first so steady-state speed is what gets reported.

    python benchmarks/bench_virl.py [--episodes 300] [--image-size 512]

Target: virl-vl >= 300 steps/s on one core.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import orjson

from harness.runner import EvalConfig, Runner
from plugins.baselines import OracleBackend
from tasks.virl.plugin import VIRL_L, VIRL_VL


def bench(task, split: str, episodes: int, image_size: int, seed: int = 0) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = EvalConfig(task=task.name, split=split, model="oracle", backend="oracle", episodes=episodes,
                         seed=seed, batch_size=64, task_args={"image_size": image_size})
        t0 = time.perf_counter()
        res = Runner(task, OracleBackend(), cfg, Path(tmp)).run()
        wall = time.perf_counter() - t0
        assert res.metrics["success_rate"].value == 1.0, "the oracle must solve every route"
        steps = sum(len(orjson.loads(line)["turns"]) for line in (Path(tmp) / "samples.jsonl").read_bytes().split(b"\n")
                    if line)
    return steps, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--image-size", type=int, default=512)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # one core, as the target is stated
    print(f"python {platform.python_version()} on {platform.machine()}, cpu affinity "
          f"{sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}")
    print(f"{'task':8} {'split':9} {'episodes':>8} {'steps':>7} {'wall s':>7} {'steps/s':>9}")
    for task, split in ((VIRL_L, "id"), (VIRL_L, "ood-rule"), (VIRL_VL, "id"), (VIRL_VL, "world")):
        bench(task, split, args.warmup, args.image_size, seed=1)
        steps, wall = bench(task, split, args.episodes, args.image_size)
        print(f"{task.name:8} {split:9} {args.episodes:8d} {steps:7d} {wall:7.2f} {steps / wall:9.0f}")


if __name__ == "__main__":
    main()
