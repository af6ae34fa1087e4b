"""Glue between recipes and the rest of the harness: checkpoint evaluation and training metadata.

A recipe knows nothing about runs, records or boards. It saves a checkpoint and calls ``job.evaluate``;
this module writes the checkpoint's training information beside it (the runner copies it into every run
record of that checkpoint, which is how boards and compute plots find recipe, step and FLOPs), then runs
the task's splits on the checkpoint with the same backend the base model used. Each evaluation's identity
holds the checkpoint's content hash, so retraining into the same folder never reuses the old episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import store
from harness.fingerprint import identify_model
from harness.plugins import Registry, local_path
from harness.runner import TRAINING_INFO_FILE, EvalConfig, Runner, run_dir_for
from harness.types import GenParams, TaskSpec


def default_out_dir(output: Path, *, recipe: str, task: str, split: str, model_args: Mapping[str, Any],
                    model_identity: Mapping[str, Any] | None, seed: int, steps: int | None,
                    budget: float | None, recipe_args: Mapping[str, Any], verify_iter: int | None) -> Path:
    """``<output>/train/<recipe>_<task>_<base>_s<seed>_<hash>``: the hash covers everything that shapes the
    weights (the base checkpoint's path and content, split, steps/budget, recipe arguments), so two trainings
    never share a folder: RL from ``sft-a/step-000200`` and from ``sft-b/step-000200`` included."""
    base = Path(str(model_args["pretrained"])).expanduser()
    label = store.slug("-".join(base.resolve().parts[-2:]))
    key = {"recipe": recipe, "task": task, "split": split, "base": str(base.resolve()),
           "base_identity": dict(model_identity or {}), "seed": seed, "steps": steps, "budget": budget,
           "recipe_args": dict(recipe_args), "verify_iter": verify_iter}
    return output / "train" / f"{recipe}_{task}_{label}_s{seed}_{store.config_hash(key)}"


def write_training_info(checkpoint_dir: str | Path, info: Mapping[str, Any]) -> None:
    """The training information beside a checkpoint, written atomically (a kill never leaves half a file)."""
    ckpt = Path(checkpoint_dir)
    ckpt.mkdir(parents=True, exist_ok=True)
    store.write_json_atomic(ckpt / TRAINING_INFO_FILE, dict(info))


def make_evaluator(reg: Registry, *, task: TaskSpec, backend_name: str, model_args: Mapping[str, Any],
                   runs_root: Path, splits: Sequence[str], episodes: int, seed: int,
                   verify_iter: int | None, gen: GenParams, batch_size: int,
                   on_result: Callable[[Mapping[str, Any]], None] | None = None,
                   ) -> Callable[[str, Mapping[str, Any]], list[Mapping[str, Any]]]:
    backend_spec = reg.backend(backend_name)

    def evaluate(checkpoint_dir: str, training_info: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        ckpt = Path(local_path(str(checkpoint_dir)))  # runs name the checkpoint by its absolute path
        write_training_info(ckpt, training_info)
        args = {**model_args, "pretrained": str(ckpt)}
        identity = identify_model(backend_spec, args)  # the new weights' content: never an old run's episodes
        backend = backend_spec.factory(args)
        records = []
        try:
            for split in splits:
                cfg = EvalConfig(task=task.name, split=split, model=str(ckpt), backend=backend_name,
                                 model_args=args, gen=gen, episodes=episodes, seed=seed,
                                 verify_iter=verify_iter, batch_size=batch_size, model_identity=identity,
                                 task_version=task.version, plugins=reg.provenance(task.name, backend_name))
                result = Runner(task, backend, cfg, run_dir_for(runs_root, cfg)).run(resume=True)
                reg.notify_run_finished(result.record, result.run_dir)
                records.append(result.record)
                if on_result:
                    on_result(result.record)
        finally:
            backend.close()
        return records

    return evaluate
