"""Shared test plumbing for the core: the toy task, and a slow oracle to kill runs mid-flight."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from harness import hookimpl
from harness.types import BackendSpec, Completion, GenParams, Request


class SlowOracle:
    """The oracle, but each batched call takes ``delay`` seconds, like a model would."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        time.sleep(self.delay)
        return [Completion(r.expert() if r.expert else "", prompt_tokens=10, completion_tokens=2)
                for r in requests]

    def close(self) -> None:
        pass


class FlakyOracle(SlowOracle):
    """Fails every request of the episodes whose seed is odd, until ``heal`` is set."""

    heal = False

    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        out = super().generate(requests, params)
        return [c if (self.heal or r.episode_seed % 2 == 0) else Completion("", error="HTTP 503 after 3 attempts")
                for r, c in zip(requests, out, strict=True)]


def _slow(args: Mapping[str, Any]) -> SlowOracle:
    return SlowOracle(float(args.get("delay", 0.002)))


@hookimpl
def harness_backends() -> list[BackendSpec]:
    return [BackendSpec("slow-oracle", "oracle with a delay per batch (tests)", _slow, default_batch_size=4)]
