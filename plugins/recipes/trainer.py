"""What SFT and RL share: accelerate set-up, the optimiser, FLOPs bookkeeping, checkpoints.

Multi-GPU goes through ``accelerate launch`` (FSDP or DeepSpeed from the accelerate config): the recipe
code sees one process. ``Accelerator.prepare`` wraps model and optimiser, token counts are summed over
processes once per step so every process holds the same FLOPs (and stops at the same step), checkpoints
are gathered with ``get_state_dict`` (all processes take part) and written and evaluated by the main
process only, the others waiting at a barrier.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from harness.compute import FlopsMeter
from harness.types import TrainJob
from plugins.recipes.checkpoints import Schedule, checkpoint_dir, finish_checkpoint, summarize, training_info
from plugins.recipes.config import CommonArgs
from plugins.recipes.policy import Policy

log = logging.getLogger("harness.recipes")


def _ensure_log_output() -> None:
    """Progress lines go to stderr unless the application configured logging itself."""
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


class Trainer:
    def __init__(self, job: TrainJob, args: CommonArgs, *, lr: float, value_head: bool = False,
                 value_lr: float | None = None) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        _ensure_log_output()
        self.job, self.args = job, args
        self.acc = Accelerator(cpu=not torch.cuda.is_available())
        set_seed(job.seed + self.acc.process_index)
        self.policy = Policy(job.model_args, lora=args.lora, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                             lora_dropout=args.lora_dropout, lora_targets=args.lora_targets, value_head=value_head,
                             device=str(self.acc.device), gradient_checkpointing=args.gradient_checkpointing)
        module = self.policy.module
        groups = [{"params": [p for p in module.lm.parameters() if p.requires_grad], "lr": lr}]
        if module.value_head is not None:
            groups.append({"params": list(module.value_head.parameters()), "lr": value_lr or lr})
        opt = torch.optim.AdamW(groups, lr=lr, weight_decay=args.weight_decay)
        self.model, self.opt = self.acc.prepare(module, opt)
        self.meter = FlopsMeter(self.policy.n_params)
        self.schedule = Schedule(job.steps, job.budget_flops, args.checkpoints, args.milestones)
        self.step = 0
        self.checkpoints: list[dict[str, Any]] = []
        self._pending = [0, 0, 0]  # trained, rollout, forward tokens of this process since the last sync

    # ----------------------------------------------------------------------------- bookkeeping
    @property
    def main(self) -> bool:
        return self.acc.is_main_process

    @property
    def world(self) -> int:
        return self.acc.num_processes

    def unwrapped(self) -> Any:
        return self.acc.unwrap_model(self.model)

    @contextlib.contextmanager
    def full_params(self) -> Iterator[None]:
        """Full weights on every process for ``generate`` when training is sharded (FSDP1 flat shards,
        DeepSpeed ZeRO-3 partitions); a no-op otherwise. FSDP2 gathers in its own forward hooks."""
        from accelerate.utils import DistributedType

        kind = self.acc.distributed_type
        if kind == DistributedType.FSDP and hasattr(self.model, "summon_full_params"):
            with self.model.summon_full_params(self.model, writeback=False, recurse=True):
                yield
        elif kind == DistributedType.DEEPSPEED and getattr(self.acc.state, "deepspeed_plugin", None) is not None \
                and self.acc.state.deepspeed_plugin.zero_stage == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(self.model.parameters()), modifier_rank=None):
                yield
        else:
            yield

    def count(self, trained: int = 0, rollout: int = 0, forward: int = 0) -> None:
        self._pending[0] += trained
        self._pending[1] += rollout
        self._pending[2] += forward

    def sync_counts(self) -> None:
        counts = torch.tensor(self._pending, dtype=torch.long, device=self.acc.device)
        if self.world > 1:
            counts = self.acc.reduce(counts, reduction="sum")
        t, r, f = (int(x) for x in counts.tolist())
        self.meter.add_trained(t)
        self.meter.add_rollout(r)
        self.meter.add_forward(f)
        self._pending = [0, 0, 0]

    def mean(self, value: float) -> float:
        """A metric averaged over processes."""
        if self.world == 1:
            return float(value)
        t = torch.tensor([float(value)], device=self.acc.device)
        return float(self.acc.reduce(t, reduction="mean").item())

    def optimizer_step(self) -> float:
        """Clip, step, zero; returns the gradient norm."""
        norm = self.acc.clip_grad_norm_(self.model.parameters(), self.args.grad_clip) if self.args.grad_clip > 0 \
            else torch.tensor(0.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return float(norm)

    # ------------------------------------------------------------------------------ checkpoints
    def end_step(self, **extra: Any) -> bool:
        """Close a step: sync token counts, checkpoint if a milestone was crossed. True when training is over."""
        self.step += 1
        self.sync_counts()
        if self.main and self.job.on_step is not None:
            self.job.on_step({"step": self.step, "flops": self.meter.flops, **extra})
        if self.schedule.due(self.step, self.meter.flops):
            self.checkpoint(**extra)
        return self.schedule.done(self.step, self.meter.flops)

    def checkpoint(self, **extra: Any) -> None:
        state = self.acc.get_state_dict(self.model)  # every process: shards are gathered here
        ckpt = checkpoint_dir(self.job, self.step)
        if self.main:
            self.policy.save(ckpt, state_dict=state)
            info = training_info(self.job, self.policy.pretrained, self.step, self.meter,
                                 lora=self.args.lora, processes=self.world, **extra)
            records = finish_checkpoint(self.job, ckpt, info, self.args.evaluate)
            self.checkpoints.append({"dir": str(ckpt), "step": self.step, "flops": self.meter.flops,
                                     "success": summarize(records)})
            log.info("checkpoint %s: step %d, %.3g FLOPs, %s", ckpt, self.step, self.meter.flops,
                     summarize(records))
        self.acc.wait_for_everyone()

    def summary(self, **extra: Any) -> dict[str, Any]:
        return {"recipe": self.job.recipe, "task": self.job.task.name, "split": self.job.split,
                "out_dir": str(Path(self.job.out_dir)), "steps": self.step, **self.meter.as_dict(),
                "checkpoints": self.checkpoints, **extra}


def metrics_line(step: int, values: Mapping[str, float]) -> str:
    return f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items())


__all__ = ["Trainer", "log", "metrics_line"]
