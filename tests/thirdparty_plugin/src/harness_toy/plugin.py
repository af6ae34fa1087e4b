"""``toy-add``: add two numbers. Small enough to read in a minute, complete enough to exercise the runner:
verification-revision, rewards, a task metric, an expert and a random policy."""

from __future__ import annotations

import random
from typing import Any

from harness import hookimpl
from harness.env import TextEnv
from harness.types import MetricSpec, Observation, SplitSpec, TaskSpec


class AddEnv(TextEnv):
    def __init__(self, split: str, verify_iter: int = 2, high: int = 9, **_: Any) -> None:
        self.verify_iter = verify_iter
        self.high = int(high) if split == "id" else int(high) * 10
        self.a = self.b = 0
        self.answers = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        rng = random.Random(seed)
        self.a, self.b = rng.randint(0, self.high), rng.randint(0, self.high)
        self.answers = 0
        return Observation(f"What is {self.a} + {self.b}? Answer with the number only.", new_context=True), {}

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        self.answers += 1
        text = action.strip()[:32]
        ok = text.lstrip("-").isdigit() and int(text) == self.a + self.b
        feedback = "" if ok else f"{text!r} is not the sum; try again."
        done = ok or self.answers >= self.verify_iter
        info: dict[str, Any] = {"feedback": feedback, "turn": {"correct": ok}}
        if done:
            info["episode"] = {"success": ok, "metrics": {"first_try": ok and self.answers == 1},
                               "details": {"a": self.a, "b": self.b}}
        return Observation(feedback), 1.0 if ok else -1.0, done, False, info

    def expert_action(self) -> str:
        return str(self.a + self.b)

    def random_action(self, rng: random.Random) -> str:
        return str(rng.randint(0, 2 * self.high))


@hookimpl
def harness_tasks() -> list[TaskSpec]:
    return [TaskSpec(
        name="toy-add", description="add two numbers (a third-party example task)", modality="text",
        splits=(SplitSpec("id", "numbers up to 9"), SplitSpec("ood", "numbers up to 90", "ood", aliases=("big",))),
        make_env=AddEnv, default_verify_iter=2,
        metrics=(MetricSpec("first_try", "solved with the first answer", "rate"),),
    )]
