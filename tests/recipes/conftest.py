"""Fixtures for the recipe tests: tiny models built offline once per session, and a job builder that
wires a recipe to the real evaluator exactly as ``harness train`` does."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("accelerate")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness_plugins.hf.tiny import make_tiny

    return make_tiny("llama", tmp_path_factory.mktemp("tiny") / "llama")


@pytest.fixture(scope="session")
def tiny_qwen2_vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness_plugins.hf.tiny import make_tiny

    return make_tiny("qwen2-vl", tmp_path_factory.mktemp("tiny") / "qwen2-vl")


@pytest.fixture(scope="session")
def registry() -> Any:
    from harness.plugins import load_registry

    return load_registry(["harness_toy.plugin", "harness_tasks.generalpoints.plugin", "harness_plugins.hf.plugin",
                          "harness_plugins.recipes.plugin"], entry_points=False)


def make_job(reg: Any, *, recipe: str, model: Path, task: str, runs: Path, steps: int | None = None,
             budget: float | None = None, recipe_args: Mapping[str, Any] | None = None, verify_iter: int | None = 1,
             episodes: int = 2, max_tokens: int = 12, splits: tuple[str, ...] | None = None) -> Any:
    """The TrainJob ``harness train`` would build (same evaluator), with small evaluation settings."""
    from harness.training import make_evaluator
    from harness.types import GenParams, TrainJob

    spec = reg.task(task)
    margs = {"pretrained": str(model)}
    evaluate = make_evaluator(reg, task=spec, backend_name="hf", model_args=margs, runs_root=runs,
                              splits=list(splits or [s.name for s in spec.splits]), episodes=episodes, seed=0,
                              verify_iter=verify_iter, gen=GenParams(max_tokens=max_tokens), batch_size=8)
    return TrainJob(recipe=recipe, model=str(model), model_args=margs, task=spec, split="id",
                    out_dir=str(runs / "train" / recipe), evaluate=evaluate, seed=0, steps=steps, budget_flops=budget,
                    verify_iter=verify_iter, eval_episodes=episodes, recipe_args=dict(recipe_args or {}))
