"""Synthetic run directories in the runner's on-disk format (run.json + samples.jsonl)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from harness import store
from harness.metrics import aggregate
from harness.runner import episode_seed
from harness.types import MetricSpec

RECOG = MetricSpec("recognition_accuracy", "cards read right", "ratio")


def make_run(root: Path, *, task: str = "gp-l", split: str = "id", model: str = "m", seed: int = 0,
             successes: Sequence[bool] = (True, False), recipe: str | None = None, flops: float | None = None,
             status: str = "complete", finished: float | None = None, distribution: str | None = None,
             run_id: str | None = None, recognition: Sequence[tuple[int, int]] | None = None,
             extra: dict[str, Any] | None = None, task_version: str | None = None) -> Path:
    """Write a run the way ``harness.runner.Runner`` would and return its directory. First-party tasks get their
    protocol version (the shipped boards only take runs of it)."""
    if task_version is None:
        task_version = "paper-1" if task in ("gp-l", "gp-vl", "virl-l", "virl-vl") else ""
    n = len(successes)
    rid = run_id or f"{task}_{split}_{store.slug(model)}_{recipe or 'base'}_{flops or 0:g}_{seed}_{n}"
    run_dir = root / rid
    run_dir.mkdir(parents=True, exist_ok=True)
    samples = []
    for i, ok in enumerate(successes):
        metrics: dict[str, Any] = {}
        if recognition is not None:
            metrics["recognition_accuracy"] = list(recognition[i])
        samples.append({"schema_version": store.SCHEMA_VERSION, "index": i,
                        "episode_seed": episode_seed(task, split, seed, i), "status": "ok", "error": None,
                        "success": bool(ok), "reward": 5.0 if ok else -1.0,
                        "turns": [{"answer": "x", "reward": 5.0 if ok else -1.0, "feedback": ""}],
                        "metrics": metrics, "details": {}, "tokens": {"prompt": 10, "completion": 2}})
    (run_dir / "samples.jsonl").write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in samples))
    specs = (RECOG,) if recognition is not None else ()
    metrics = {k: v.as_dict() for k, v in aggregate(samples, specs).items()}
    now = finished if finished is not None else time.time()
    record = {
        "schema_version": store.SCHEMA_VERSION, "run_id": rid, "identity": {"task": task, "seed": seed},
        "task": task, "task_version": task_version, "split": split,
        "distribution": distribution or ("id" if split == "id" else "ood"),
        "model": {"name": model, "backend": "hf", "args": {}}, "gen": {}, "seed": seed, "episodes": n,
        "verify_iter": 1, "task_args": {}, "batch_size": 8, "created": now - 1, "versions": {},
        "git_commit": None, "training": ({"recipe": recipe, "flops": flops} if recipe else None),
        "status": status, "finished": now, "wall_time_s": 1.0, "episodes_ok": n, "episodes_failed": 0,
        "failure_reasons": {}, "metrics": metrics, "tokens": {"prompt": 10 * n, "completion": 2 * n},
        **(extra or {}),
    }
    store.write_json_atomic(run_dir / "run.json", record)
    return run_dir


def pattern(n: int, k: int) -> list[bool]:
    """n episodes, the first k solved."""
    return [i < k for i in range(n)]


def run_cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """``harness ARGV`` in this process: (exit code, stdout, stderr)."""
    from harness.cli import main

    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
