"""V-IRL throughput: steps per second with the oracle backend through ``harness.runner.Runner`` on one core.

Everything but a model is timed: route generation, rendering (virl-vl), prompt building, answer parsing
and verification, and writing samples.jsonl. The first episodes of a process also build the city and the
render caches; ``--warmup`` runs a few episodes first so steady-state speed is what gets reported.

    python benchmarks/bench_virl.py [--episodes 300] [--image-size 512] [--panorama-episodes 20]

Target: virl-vl >= 300 steps/s on one core (generated cities). The last rows play routes from a data folder in
the paper's layout (synthetic 2048x1024 panoramas, one every ~4 m) at the paper's 1200-pixel views, cut with
OpenCV when it is installed and with the numpy fallback: the cost of the paper's own street views.
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
from harness_plugins.baselines import OracleBackend
from harness_tasks.virl.plugin import VIRL_L, VIRL_VL


def bench(task, split: str, episodes: int, image_size: int | None, seed: int = 0, **task_args) -> tuple[int, float]:
    if image_size is not None:
        task_args["image_size"] = image_size
    with tempfile.TemporaryDirectory() as tmp:
        cfg = EvalConfig(task=task.name, split=split, model="oracle", backend="oracle", episodes=episodes,
                         seed=seed, batch_size=64, task_args=task_args)
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
    ap.add_argument("--panorama-episodes", type=int, default=20)
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
    if args.panorama_episodes:
        bench_panoramas(args.panorama_episodes)


def bench_panoramas(episodes: int) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' data-folder writer
    from harness_tasks.virl import panorama
    from tests.virl.helpers import paper_route, write_data_folder

    with tempfile.TemporaryDirectory() as tmp:
        routes = [paper_route(90, 2, start=(40.70 + 0.005 * i, -73.99)) for i in range(8)]
        folder = write_data_folder(Path(tmp) / "data", routes, pano_size=(2048, 1024))
        have = panorama._cv2
        for label, cv in (("opencv", have), ("numpy", None)):
            if label == "opencv" and cv is None:
                continue
            panorama._cv2 = cv
            panorama._maps.cache_clear()
            bench(VIRL_VL, "id", 2, None, seed=1, data=str(folder))
            steps, wall = bench(VIRL_VL, "id", episodes, None, data=str(folder))
            print(f"{'virl-vl':8} {'paper ' + label:14} {episodes:3d} {steps:7d} {wall:7.2f} {steps / wall:9.1f}  "
                  f"(2405x2405 grid of 1200-pixel views)")
        panorama._cv2 = have


if __name__ == "__main__":
    main()
