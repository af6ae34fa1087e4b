"""What recording what the model saw costs: samples.jsonl bytes per episode, and ``--save-images`` time.

    python benchmarks/bench_records.py [--episodes 400]

For each task, two policies through the real ``Runner``: the oracle (one answer per GeneralPoints episode,
whole V-IRL routes) and a mixed one (a random well-formed answer 55% of the time, else the oracle's), which
makes the verification-revision turns a real model produces. Per episode: bytes of the samples.jsonl line,
bytes of its ``shown`` entries, and what those texts would take stored whole (no deltas). Then gp-vl with
and without ``save_images`` (ms per episode, PNG bytes per image). Pinned to one core.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from harness import store, transcript
from harness.runner import EvalConfig, Runner
from harness.types import Completion, GenParams, Request
from harness_tasks.generalpoints.plugin import harness_tasks as gp_tasks
from harness_tasks.virl.plugin import harness_tasks as virl_tasks

TASKS = {t.name: t for t in (*gp_tasks(), *virl_tasks())}


class Policy:
    def __init__(self, wrong: float) -> None:
        self.wrong, self.rng = wrong, random.Random(0)

    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        return [Completion(r.random_answer(self.rng) if self.rng.random() < self.wrong else r.expert())
                for r in requests]

    def close(self) -> None:
        pass


def run(task: str, episodes: int, wrong: float, **kw: object) -> tuple[float, list[dict], Path, str]:
    tmp = tempfile.mkdtemp()
    cfg = EvalConfig(task=task, split="id", model="p", backend="p", episodes=episodes, batch_size=64, **kw)
    t0 = time.perf_counter()
    Runner(TASKS[task], Policy(wrong), cfg, Path(tmp) / "run").run()
    dt = time.perf_counter() - t0
    path = Path(tmp) / "run" / "samples.jsonl"
    return dt, [orjson.loads(x) for x in path.read_bytes().splitlines()], path, tmp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=400)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"{'task':8s} {'policy':7s} {'turns/ep':>8s} {'bytes/ep':>9s} {'shown/ep':>9s} {'whole/ep':>9s}")
    for task in TASKS:
        n = args.episodes if task.startswith("gp") else max(20, args.episodes // 10)
        for name, wrong in (("oracle", 0.0), ("mixed", 0.55)):
            _, samples, path, _ = run(task, n, wrong)
            shown = sum(len(store.dumps(t["shown"])) for s in samples for t in s["turns"])
            whole = sum(len(store.dumps(x)) for s in samples for x in transcript.turn_texts(s["turns"]))
            turns = sum(len(s["turns"]) for s in samples)
            print(f"{task:8s} {name:7s} {turns / n:8.1f} {path.stat().st_size / n:9,.0f} {shown / n:9,.0f} "
                  f"{whole / n:9,.0f}")
    n = max(20, args.episodes // 4)
    plain, *_ = run("gp-vl", n, 0.0)
    saved, samples, _, tmp = run("gp-vl", n, 0.0, save_images=True)
    pngs = list((Path(tmp) / "run" / transcript.IMAGE_DIR).iterdir())
    print(f"gp-vl --save-images: {1e3 * (saved - plain) / n:.1f} ms per episode more "
          f"({1e3 * plain / n:.2f} -> {1e3 * saved / n:.2f}), {sum(p.stat().st_size for p in pngs) / len(pngs):,.0f} "
          f"bytes per PNG, {len(pngs)} files for {n} episodes")


if __name__ == "__main__":
    main()
