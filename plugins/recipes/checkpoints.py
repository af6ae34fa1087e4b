"""When to checkpoint (compute milestones), and saving + evaluating a checkpoint through ``job.evaluate``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.compute import FlopsMeter
from harness.runner import read_training_info
from harness.training import write_training_info
from harness.types import TrainJob


@dataclass
class Schedule:
    """Stop condition and checkpoint milestones for one run.

    Training stops at ``steps`` or once ``budget`` FLOPs are spent (whichever is given; both: the first).
    Checkpoints: explicit FLOPs ``milestones``, else ``n`` milestones spread evenly over the budget
    (FLOPs) or over the steps. The end of training is always a checkpoint when ``n`` > 0.
    """

    steps: int | None
    budget: float | None
    n: int = 4
    milestones: Sequence[float] | None = None
    _flops_marks: list[float] = field(default_factory=list)
    _step_marks: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.steps is None and self.budget is None:
            raise ValueError("give steps or a FLOPs budget")
        if self.milestones:
            self._flops_marks = sorted(float(m) for m in self.milestones)
        elif self.n > 0 and self.budget is not None:
            self._flops_marks = [self.budget * k / self.n for k in range(1, self.n + 1)]
        elif self.n > 0 and self.steps is not None:
            self._step_marks = sorted({max(1, round(self.steps * k / self.n)) for k in range(1, self.n + 1)})

    def done(self, step: int, flops: float) -> bool:
        return (self.steps is not None and step >= self.steps) or (self.budget is not None and flops >= self.budget)

    def due(self, step: int, flops: float) -> bool:
        """True when this step crossed a milestone (several crossed at once make one checkpoint), or when
        training ends here and checkpoints are on."""
        hit = False
        while self._flops_marks and flops >= self._flops_marks[0]:
            self._flops_marks.pop(0)
            hit = True
        while self._step_marks and step >= self._step_marks[0]:
            self._step_marks.pop(0)
            hit = True
        return hit or (self.done(step, flops) and (self.n > 0 or bool(self.milestones)))


def training_info(job: TrainJob, policy_path: str, step: int, meter: FlopsMeter, **extra: Any) -> dict[str, Any]:
    """What the run records of a checkpoint carry in ``record['training']`` (boards and plots read it).

    ``flops`` is this run's own compute. When the base model is itself a harness checkpoint (RL after
    SFT), its recipe and FLOPs are kept as ``base_recipe`` / ``base_flops``, and ``root_model`` names the
    model the chain of runs started from (plots group checkpoints into series by it)."""
    root = job.model
    prev = read_training_info(policy_path)  # validated: a damaged file is an error naming it
    if prev is not None:
        root = prev.get("root_model") or prev.get("base_model") or root
        extra = {"base_recipe": prev.get("recipe"), "base_flops": prev.get("flops"), **extra}
    from harness.fingerprint import local_checkpoint_identity

    # the base weights by content (cached per file, so this costs nothing after the first checkpoint)
    base_identity = local_checkpoint_identity({"pretrained": policy_path})
    return {"recipe": job.recipe, "base_model": job.model, "root_model": root, "base_checkpoint": policy_path,
            "base_checkpoint_sha256": (base_identity or {}).get("checkpoint_sha256"),
            "task": job.task.name, "split": job.split, "step": step, "seed": job.seed, **meter.as_dict(),
            "created": time.time(), **extra}


def checkpoint_dir(job: TrainJob, step: int) -> Path:
    return Path(job.out_dir) / f"step-{step:06d}"


def finish_checkpoint(job: TrainJob, ckpt: Path, info: Mapping[str, Any], evaluate: bool
                      ) -> list[Mapping[str, Any]]:
    """Evaluate a saved checkpoint on the task's splits (``job.evaluate`` writes the training info), or
    only write the training info when evaluation is off."""
    if evaluate:
        return job.evaluate(str(ckpt), info)
    write_training_info(ckpt, info)
    return []


def summarize(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Split -> success rate, for the recipe's summary."""
    out = {}
    for r in records:
        m = (r.get("metrics") or {}).get("success_rate")
        if m:
            out[str(r.get("split"))] = m.get("value")
    return out


__all__ = ["Schedule", "checkpoint_dir", "finish_checkpoint", "summarize", "training_info"]
