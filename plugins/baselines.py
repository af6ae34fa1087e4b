"""Baseline backends: ``oracle`` plays the task's expert policy, ``random`` a fixed-seed random policy.

They go through the same backend interface as real models, so they also measure the harness's own
overhead: whatever time an oracle run takes is time the harness spends, not a model.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from harness.hookspecs import hookimpl
from harness.types import BackendSpec, Completion, GenParams, Request


class OracleBackend:
    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        out = []
        for r in requests:
            if r.expert is None:
                raise ValueError("the oracle backend needs a task that provides an expert policy")
            out.append(Completion(r.expert()))
        return out

    def close(self) -> None:
        pass


class RandomBackend:
    """Seeded per (episode, turn), so answers don't depend on batch size or episode order."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        out = []
        for r in requests:
            if r.random_answer is None:
                raise ValueError("the random backend needs a task that provides a random policy")
            rng = random.Random(f"{self.seed}:{r.episode_seed}:{r.turn}")
            out.append(Completion(r.random_answer(rng)))
        return out

    def close(self) -> None:
        pass


def _random(args: Mapping[str, Any]) -> RandomBackend:
    return RandomBackend(seed=int(args.get("seed", 0)))


@hookimpl
def harness_backends() -> list[BackendSpec]:
    return [
        BackendSpec("oracle", "the task's expert policy: always correct (a 100% sanity baseline)",
                    lambda args: OracleBackend(), default_batch_size=256),
        BackendSpec("random", "a fixed-seed random policy over well-formed answers",
                    _random, default_batch_size=256),
    ]
