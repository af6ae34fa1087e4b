"""Registers the ``sft`` and ``rl`` recipes. Heavy imports (torch, transformers, peft, accelerate) wait
until a recipe runs, so listing plugins stays fast and works without the ``train`` extra."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.hookspecs import hookimpl
from harness.types import RecipeSpec, TrainJob


def _sft(job: TrainJob) -> Mapping[str, Any]:
    from harness_plugins.recipes.sft import run

    return run(job)


def _rl(job: TrainJob) -> Mapping[str, Any]:
    from harness_plugins.recipes.rl import run

    return run(job)


@hookimpl
def harness_recipes() -> list[RecipeSpec]:
    return [
        RecipeSpec("sft", "supervised fine-tuning on the task oracle's transcripts (revisions after feedback "
                          "included); loss on answer tokens; LoRA or full", _sft, extra="train"),
        RecipeSpec("rl", "PPO with a value head (paper's settings) or GRPO on multi-turn verification-revision "
                         "rollouts; LoRA or full", _rl, extra="train"),
    ]
