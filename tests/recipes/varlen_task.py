"""``varlen``: a test task whose episodes end after a number of turns that depends on the process (and on
the seed), so that two training processes see different numbers of turns, rounds and minibatches.

Process 0's episodes always end after one answer; process 1's after 2 to 4 answers (the verifier replies
"again" until then). The reward is 1 for an answer that contains a digit, else 0 (a multi-token, learnable
signal, not used by the test). Loaded with ``--plugin tests.recipes.varlen_task``.
"""

from __future__ import annotations

import os
import random
from typing import Any

from harness import hookimpl
from harness.env import TextEnv
from harness.types import Observation, SplitSpec, TaskSpec


class VarLenEnv(TextEnv):
    def __init__(self, split: str = "id", verify_iter: int = 4, **_: Any) -> None:
        self.verify_iter = verify_iter
        self.length = self.answers = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        rank = int(os.environ.get("RANK", "0"))
        self.length = 1 if rank == 0 else 2 + random.Random(seed).randrange(3)
        self.answers = 0
        return Observation("Write any number, then keep going when asked.", new_context=True), {}

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        self.answers += 1
        done = self.answers >= self.length
        reward = 1.0 if any(ch.isdigit() for ch in action) else 0.0
        info: dict[str, Any] = {"episode": {"success": reward > 0}} if done else {}
        return Observation("again"), reward, done, False, info

    def expert_action(self) -> str:
        return "42"

    def random_action(self, rng: random.Random) -> str:
        return str(rng.randint(0, 99))


@hookimpl
def harness_tasks() -> list[TaskSpec]:
    return [TaskSpec("varlen", "episodes of process-dependent length (a test task)", "text",
                     (SplitSpec("id", "the only split"),), VarLenEnv, default_verify_iter=4)]
