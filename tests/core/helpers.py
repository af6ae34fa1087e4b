"""Shared test plumbing for the core: the toy task, and a slow oracle to kill runs mid-flight."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import hookimpl
from harness.types import BackendSpec, Completion, GenParams, Request


class SlowOracle:
    """The oracle, but each batched call takes ``delay`` seconds, like a model would. With ``gate`` (a file
    path), every call after the first waits until that file exists: a test holds a run mid-way for as long
    as it needs, whatever the machine's load."""

    def __init__(self, delay: float, gate: str | None = None) -> None:
        self.delay = delay
        self.gate = Path(gate) if gate else None
        self._calls = 0

    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        self._calls += 1
        while self.gate is not None and self._calls > 1 and not self.gate.exists():
            time.sleep(0.01)
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
    return SlowOracle(float(args.get("delay", 0.002)), args.get("gate"))





class ScriptedBackend(SlowOracle):
    """The oracle, misbehaving on purpose (``mode``): ``fail`` every request fails; ``crash`` generate raises
    after ``after`` episodes' worth of calls; ``interrupt`` raises KeyboardInterrupt likewise; ``surrogate``
    answers with a lone surrogate; ``huge`` answers ``size`` characters of junk first, then correctly."""

    def __init__(self, mode: str, after: int = 0, size: int = 0, delay: float = 0.0) -> None:
        super().__init__(delay)
        self.mode, self.after, self.size = mode, after, size
        self.calls = 0
        self.seen: list[Request] = []

    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        self.calls += 1
        self.seen.extend(requests)
        if self.mode in ("crash", "interrupt") and self.calls > self.after:
            if self.mode == "crash":
                raise RuntimeError("the model server went away")
            raise KeyboardInterrupt
        out = super().generate(requests, params)
        if self.mode == "fail":
            return [Completion("", error="HTTP 500 after 5 attempts") for _ in requests]
        if self.mode == "surrogate":
            return [Completion("x\ud800y" + c.text, prompt_tokens=1, completion_tokens=1) for c in out]
        if self.mode == "huge":
            return [Completion("z" * self.size if r.turn == 0 else c.text) for r, c in zip(requests, out, strict=True)]
        return out


def _scripted(args: Mapping[str, Any]) -> ScriptedBackend:
    return ScriptedBackend(str(args.get("mode", "fail")), int(args.get("after", 0)), int(args.get("size", 0)),
                           float(args.get("delay", 0.0)))


STARTS: list[Mapping[str, Any]] = []  # every start of the counting oracle in this process (its model args)


def _counting(args: Mapping[str, Any]) -> SlowOracle:
    STARTS.append(dict(args))
    return SlowOracle(0.0)


@hookimpl
def harness_backends() -> list[BackendSpec]:
    return [BackendSpec("slow-oracle", "oracle with a delay per batch (tests)", _slow, default_batch_size=4),
            BackendSpec("counting-oracle", "the oracle, counting its starts (tests)", _counting),
            BackendSpec("scripted", "a misbehaving oracle (tests)", _scripted, default_batch_size=4)]
