"""What SFT and RL share: accelerate set-up, precision, the optimiser, FLOPs bookkeeping, checkpoints.

Multi-GPU goes through ``accelerate launch`` (DDP, FSDP or DeepSpeed from the accelerate config): the
recipe code sees one process. Rules every process keeps, so that no collective call is left unmatched:

- the same number of forward, backward and collective calls per step on every process (the recipes pad
  their work to the largest process's; :meth:`Trainer.micro_steps` runs a fixed number of micro-batches
  per optimiser step through ``accelerate.accumulate``);
- token counts and FLOPs are summed over processes once per step, so every process stops at the same step
  and checkpoints at the same milestones;
- checkpoints are gathered with ``get_state_dict`` by every process and written by the main one; with
  several processes their evaluation waits until training is over and the other processes have left, so
  no process ever waits at a barrier while another evaluates.

Precision: trained weights are float32 (master weights) and, on a bf16 GPU, forward passes run under bf16
autocast (accelerate's ``mixed_precision``); DeepSpeed and FSDP keep their fp32 copies the same way. A
pure-bf16 mode exists for memory, and warns when the learning rate is below what bf16 weights can take.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from harness.compute import FlopsMeter
from harness.types import TrainJob
from harness_plugins.recipes.checkpoints import Schedule, checkpoint_dir, finish_checkpoint, summarize, training_info
from harness_plugins.recipes.config import CommonArgs
from harness_plugins.recipes.policy import Policy

log = logging.getLogger("harness.recipes")

PRECISIONS = ("auto", "fp32", "bf16-mixed", "bf16")


def _ensure_log_output() -> None:
    """Progress lines go to stderr unless the application configured logging itself."""
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def resolve_precision(precision: str, *, cuda: bool, bf16_ok: bool) -> tuple[bool, str]:
    """(bf16 autocast wanted, dtype of the trained weights) for a ``precision`` recipe arg. An accelerate
    config's ``mixed_precision`` (``accelerate launch``) is applied by accelerate itself on top."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        return cuda and bf16_ok, "float32"
    return {"fp32": (False, "float32"), "bf16-mixed": (True, "float32"), "bf16": (False, "bfloat16")}[precision]


def bf16_lost_fraction(params: Sequence[torch.Tensor], lr: float) -> float:
    """Share of weights for which a step of size ``lr`` (Adam's typical step) is under half a bf16 ulp of
    the weight, so it rounds away: bf16 keeps 8 significant bits, an ulp is |w| * 2^-7 at worst."""
    lost = total = 0
    for p in params:
        w = p.detach().float().abs()
        lost += int((lr < w * 2.0 ** -9).sum())
        total += w.numel()
    return lost / max(1, total)


class Trainer:
    def __init__(self, job: TrainJob, args: CommonArgs, *, lr: float, value_head: bool = False,
                 value_lr: float | None = None, micro_batches: int = 1, micro_batch_size: int | None = None,
                 steps: int | None = None, value_widths: Sequence[int] = (256,),
                 disable_dropout: bool = False) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        _ensure_log_output()
        self.job, self.args = job, args
        cuda = torch.cuda.is_available()
        want_bf16, weights_dtype = resolve_precision(args.precision, cuda=cuda,
                                                     bf16_ok=cuda and torch.cuda.is_bf16_supported())
        self.micro_batches = max(1, int(micro_batches))
        # cpu=True would turn an accelerate config's DeepSpeed into plain multi-CPU data parallelism;
        # DeepSpeed picks its own (CPU) accelerator
        deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true"
        handlers = []
        if deepspeed and not cuda:  # DeepSpeed's CPU accelerator: accelerate needs the backend named
            from accelerate.utils import InitProcessGroupKwargs

            handlers.append(InitProcessGroupKwargs(backend="gloo"))
        self.acc = Accelerator(cpu=not cuda and not deepspeed, gradient_accumulation_steps=self.micro_batches,
                               kwargs_handlers=handlers)
        if self.acc.gradient_accumulation_steps != self.micro_batches:  # an accelerate config's value wins there
            log.warning("accelerate config's gradient_accumulation_steps=%d replaced by the recipe's %d",
                        self.acc.gradient_accumulation_steps, self.micro_batches)
            self.acc.gradient_accumulation_steps = self.micro_batches
        set_seed(job.seed + self.acc.process_index)
        self._warn_if_fsdp_dropped()
        configured = str(self.acc.mixed_precision)  # from an accelerate config; it wraps the forward itself
        # otherwise bf16 autocast is ours (the same torch.autocast accelerate would use, around every forward)
        self._own_autocast = want_bf16 and configured == "no"
        mixed = "bf16" if self._own_autocast else configured
        self.precision = {"mixed_precision": mixed, "weights": weights_dtype}
        self.policy = Policy(job.model_args, lora=args.lora, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                             lora_dropout=args.lora_dropout, lora_targets=args.lora_targets, value_head=value_head,
                             value_widths=value_widths, device=str(self.acc.device),
                             gradient_checkpointing=args.gradient_checkpointing, dtype=weights_dtype,
                             disable_dropout=disable_dropout)
        module = self.policy.module
        trained = [p for p in module.lm.parameters() if p.requires_grad]
        if weights_dtype == "bfloat16":
            lost = bf16_lost_fraction(trained, lr)
            if lost > 0.5:
                log.warning("precision=bf16 at lr %g: for %.0f%% of the weights a step that size is under half a "
                            "bf16 ulp and rounds away; use precision=bf16-mixed (fp32 master weights)", lr,
                            100 * lost)
        groups = [{"params": trained, "lr": lr}]
        if module.value_head is not None:
            groups.append({"params": list(module.value_head.parameters()), "lr": value_lr or lr})
        self.steps = steps if steps is not None else job.steps
        self._configure_deepspeed(micro_batch_size or getattr(args, "micro_batch", 1))
        opt = self._optimizer(groups, lr)
        self.model, self.opt = self.acc.prepare(module, opt)
        self.sched = self._schedule(lr)
        self.meter = FlopsMeter(self.policy.n_params)
        self.schedule = Schedule(self.steps, job.budget_flops, args.checkpoints, args.milestones)
        self.step = 0
        self.optimizer_steps = 0
        self._engine: dict[str, Any] = {}
        self.checkpoints: list[dict[str, Any]] = []
        self._pending_eval: list[tuple[dict[str, Any], Path, dict[str, Any]]] = []
        self._pending = [0.0] * 6  # trained, rollout, forward tokens and their FLOPs since the last sync
        self._step_started = (time.perf_counter(), 0)  # (time, tokens) when the current step began
        self.lr_used = self.current_lr()

    # ------------------------------------------------------------------------------------ set-up
    def _warn_if_fsdp_dropped(self) -> None:
        """accelerate (1.x) turns an FSDP config on only for GPU-like devices; on CPU it runs plain data
        parallel without a word, so a user's "FSDP" run would be one that never sharded anything."""
        from accelerate.utils import DistributedType

        asked = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
        if asked and self.acc.distributed_type != DistributedType.FSDP and self.acc.is_main_process:
            log.warning("the accelerate config asks for FSDP, but accelerate runs this as %s (it enables FSDP "
                        "only on GPUs and other accelerators): the model is not sharded",
                        str(self.acc.distributed_type).split(".")[-1])

    @property
    def deepspeed(self) -> Any:
        """The DeepSpeed plugin when training under DeepSpeed, else None."""
        from accelerate.utils import DistributedType

        if self.acc.distributed_type != DistributedType.DEEPSPEED:
            return None
        return getattr(self.acc.state, "deepspeed_plugin", None)

    def _configure_deepspeed(self, micro_batch_size: int) -> None:
        """Fill the DeepSpeed config from the recipe before ``prepare``: the micro-batch size (accelerate
        cannot infer it without a dataloader), accumulation, clipping (DeepSpeed clips inside its own step,
        so ``clip_grad_norm_`` is a no-op there) and, for ZeRO-3, gathered 16-bit weights at save time."""
        plugin = self.deepspeed
        if plugin is None:
            return
        cfg = plugin.deepspeed_config
        want = {"train_micro_batch_size_per_gpu": int(micro_batch_size),
                "gradient_accumulation_steps": self.micro_batches,
                "gradient_clipping": float(self.args.grad_clip)}
        for key, value in want.items():
            have = cfg.get(key, "auto")
            if have != "auto" and have != value:
                log.warning("DeepSpeed config %s=%s replaced by the recipe's %s", key, have, value)
            cfg[key] = value
        cfg["train_batch_size"] = int(micro_batch_size) * self.micro_batches * self.acc.num_processes
        zero = cfg.setdefault("zero_optimization", {})
        if int(zero.get("stage", 0) or 0) == 3:
            zero["stage3_gather_16bit_weights_on_model_save"] = True
        for key in ("bf16", "fp16"):  # mixed precision comes from the recipe's precision
            if isinstance(cfg.get(key), dict) and cfg[key].get("enabled") == "auto":
                cfg[key]["enabled"] = self.precision["mixed_precision"] == key

    def _optimizer(self, groups: list[dict[str, Any]], lr: float) -> Any:
        plugin = self.deepspeed
        if plugin is not None and "optimizer" in plugin.deepspeed_config:
            from accelerate.utils import DummyOptim  # the DeepSpeed config names the optimiser: it builds it

            return DummyOptim(groups, lr=lr, weight_decay=self.args.weight_decay)
        return torch.optim.AdamW(groups, lr=lr, eps=self.args.adam_eps, weight_decay=self.args.weight_decay)

    def _schedule(self, lr: float) -> Any:
        a = self.args
        if a.lr_schedule == "constant":
            return None
        if a.lr_schedule != "cosine":
            raise ValueError(f"lr_schedule must be constant or cosine; got {a.lr_schedule!r}")
        period = a.lr_decay_steps or self.steps
        if not period:
            raise ValueError("lr_schedule=cosine needs lr_decay_steps or --steps")
        opt = self.opt.optimizer if hasattr(self.opt, "optimizer") else self.opt
        bases = [g["lr"] for g in opt.param_groups]

        def factor(step: int, base: float) -> float:  # CosineAnnealingLR's closed form, per group
            t = min(step, period)
            return (a.min_lr + (base - a.min_lr) * (1 + math.cos(math.pi * t / period)) / 2) / base

        return torch.optim.lr_scheduler.LambdaLR(opt, [lambda s, b=b: factor(s, b) for b in bases])

    # ----------------------------------------------------------------------------- bookkeeping
    @property
    def main(self) -> bool:
        return self.acc.is_main_process

    @property
    def world(self) -> int:
        return self.acc.num_processes

    @property
    def sharded(self) -> bool:
        """Parameters are partitioned over processes (FSDP, ZeRO-3): forwards run collectives."""
        from accelerate.utils import DistributedType

        if self.acc.distributed_type == DistributedType.FSDP:
            return True
        plugin = self.deepspeed
        return plugin is not None and int(plugin.zero_stage or 0) == 3

    def unwrapped(self) -> Any:
        return self.acc.unwrap_model(self.model)

    @contextlib.contextmanager
    def full_params(self) -> Iterator[None]:
        """Full weights on every process for ``generate`` under DeepSpeed ZeRO-3 (its partitions gathered);
        a no-op otherwise: FSDP gathers in its own forward hooks, and transformers' ``generate`` then keeps
        every process stepping together (``synced_gpus``)."""
        plugin = self.deepspeed
        if plugin is not None and int(plugin.zero_stage or 0) == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(self.model.parameters()), modifier_rank=None):
                yield
        else:
            yield

    def autocast(self) -> Any:
        """The autocast every forward pass runs under (training, old log-probs, generation)."""
        if self._own_autocast:
            return torch.autocast(device_type=self.acc.device.type, dtype=torch.bfloat16)
        return self.acc.autocast()

    def count(self, trained: int = 0, rollout: int = 0, forward: int = 0, *, trained_flops: float = 0.0,
              rollout_flops: float = 0.0, forward_flops: float = 0.0) -> None:
        for i, v in enumerate((trained, rollout, forward, trained_flops, rollout_flops, forward_flops)):
            self._pending[i] += v

    def sync_counts(self) -> None:
        counts = self.sum(self._pending)
        t, r, f = (int(x) for x in counts[:3])
        self.meter.add_trained(t, counts[3] or None)
        self.meter.add_rollout(r, counts[4] or None)
        self.meter.add_forward(f, counts[5] or None)
        self._pending = [0.0] * 6

    def sum(self, values: Sequence[float]) -> list[float]:
        """Values summed over processes (one collective)."""
        if self.world == 1:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.acc.device)
        return [float(x) for x in self.acc.reduce(t, reduction="sum").tolist()]

    def max(self, value: int) -> int:
        """The largest value over processes (one collective)."""
        if self.world == 1:
            return int(value)
        t = torch.tensor([int(value)], dtype=torch.long, device=self.acc.device)
        return int(self.acc.gather(t).max().item())

    def mean(self, value: float) -> float:
        """A metric averaged over processes."""
        return self.sum([value])[0] / self.world

    def means(self, values: Mapping[str, float]) -> dict[str, float]:
        """Metrics averaged over processes in one collective; every process must pass the same keys."""
        keys = sorted(values)
        summed = self.sum([values[k] for k in keys])
        return {k: v / self.world for k, v in zip(keys, summed, strict=True)}

    # -------------------------------------------------------------------------------- updates
    def micro_steps(self, n_micro: int, run: Callable[[int], torch.Tensor]) -> float | None:
        """One optimiser step over ``n_micro`` micro-batches (every process the same count): ``run(i)``
        returns micro-batch i's loss, already scaled so that the losses add up to the step's mean loss.
        Accumulation goes through ``accelerate.accumulate`` (gradients synced once, DeepSpeed's engine
        stepped once); returns the gradient norm before clipping, where the backend reports one."""
        if n_micro != self.micro_batches:
            raise RuntimeError(f"an optimiser step must have {self.micro_batches} micro-batches, got {n_micro}")
        norm = None
        for i in range(n_micro):
            with self.acc.accumulate(self.model):
                loss = run(i)
                # accelerate divides by the accumulation count (DeepSpeed's engine does the same): undo it
                self.acc.backward(loss * self.micro_batches)
                if self.acc.sync_gradients:
                    norm = self._clip()
                    self.optimizer_steps += 1
                self.opt.step()
                self.opt.zero_grad(set_to_none=True)
        return norm

    def _clip(self) -> float | None:
        if self.args.grad_clip <= 0:
            return None
        norm = self.acc.clip_grad_norm_(self.model.parameters(), self.args.grad_clip)
        return float(norm) if norm is not None else None

    def end_update(self) -> None:
        """After all optimiser steps of a recipe step: advance the learning-rate schedule (the rate this
        step used is what the step reports)."""
        self.lr_used = self.current_lr()
        if self.sched is not None:
            self.sched.step()

    # ------------------------------------------------------------------------------ checkpoints
    def current_lr(self) -> float:
        opt = getattr(self.opt, "optimizer", self.opt)
        return float(opt.param_groups[0]["lr"]) if opt is not None else 0.0

    def _tokens(self) -> int:
        m = self.meter
        return m.trained_tokens + m.rollout_tokens + m.forward_tokens

    def end_step(self, scalars: Mapping[str, float] | None = None, **extra: Any) -> bool:
        """Close a step: sync token counts, report the step's ``scalars`` (with FLOPs, learning rate and
        throughput) through ``job.on_step``, checkpoint if a milestone was crossed (``extra`` goes into the
        checkpoint's training information). True when training is over."""
        self.step += 1
        self.sync_counts()
        if self.main and self.job.on_step is not None:
            now, tokens = time.perf_counter(), self._tokens()
            took = max(now - self._step_started[0], 1e-9)  # since the last step ended (its checkpoint included)
            self.job.on_step({"step": self.step, "flops": self.meter.flops, "lr": self.lr_used,
                              "tokens_per_s": (tokens - self._step_started[1]) / took, "step_s": took,
                              **(scalars or {})})
        if self.schedule.due(self.step, self.meter.flops):
            self.checkpoint(**extra)
        self._step_started = (time.perf_counter(), self._tokens())
        return self.schedule.done(self.step, self.meter.flops)

    def checkpoint(self, **extra: Any) -> None:
        state = self.acc.get_state_dict(self.model)  # every process: shards are gathered here
        ckpt = checkpoint_dir(self.job, self.step)
        if self.main:
            self.policy.save(ckpt, state_dict=state)
            info = training_info(self.job, self.policy.pretrained, self.step, self.meter, lora=self.args.lora,
                                 processes=self.world, precision=self.precision["mixed_precision"], **extra)
            entry = {"dir": str(ckpt), "step": self.step, "flops": self.meter.flops, "success": {}}
            self.checkpoints.append(entry)
            if self.world == 1:
                self._evaluate(entry, ckpt, info)
            else:  # evaluated in finish(), once the other processes are gone
                from harness.training import write_training_info

                write_training_info(ckpt, info)
                self._pending_eval.append((entry, ckpt, info))
        del state
        self.acc.wait_for_everyone()

    def _evaluate(self, entry: dict[str, Any], ckpt: Path, info: Mapping[str, Any]) -> None:
        records = finish_checkpoint(self.job, ckpt, info, self.args.evaluate)
        entry["success"] = summarize(records)
        log.info("checkpoint %s: step %d, %.3g FLOPs, %s", ckpt, entry["step"], entry["flops"], entry["success"])

    def finish(self) -> None:
        """End of training: free the model, leave the process group, and (main process) evaluate the
        checkpoints whose evaluation waited for the end of a multi-process run."""
        self._engine = self._engine_info()
        plugin = self.deepspeed
        self.acc.wait_for_everyone()
        self.model = self.opt = None
        self.policy.module = None  # type: ignore[assignment]
        self.acc.free_memory()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if plugin is not None:  # else transformers would load the checkpoints to evaluate as ZeRO-3 partitions
            from transformers.integrations import unset_hf_deepspeed_config

            unset_hf_deepspeed_config()
            plugin.dschf = None
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for entry, ckpt, info in self._pending_eval:  # main process only: others queue nothing
            self._evaluate(entry, ckpt, info)
        self._pending_eval = []

    def _engine_info(self) -> dict[str, Any]:
        """What the distributed backend ran with (DeepSpeed: its config values and its own step count)."""
        info: dict[str, Any] = {"backend": str(self.acc.distributed_type).split(".")[-1].lower(),
                                "processes": self.world, "optimizer_steps": self.optimizer_steps,
                                "micro_batches_per_step": self.micro_batches}
        plugin = self.deepspeed
        if plugin is not None:
            cfg = plugin.deepspeed_config
            info.update(zero_stage=int(plugin.zero_stage or 0), **{k: cfg.get(k) for k in (
                "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping")})
            engine = getattr(self.acc, "deepspeed_engine_wrapped", None)
            if engine is not None:
                info["engine_steps"] = int(engine.engine.global_steps)
        return info

    def summary(self, **extra: Any) -> dict[str, Any]:
        return {"recipe": self.job.recipe, "task": self.job.task.name, "split": self.job.split,
                "out_dir": str(Path(self.job.out_dir)), "steps": self.step, **self.meter.as_dict(),
                "precision": self.precision, "distributed": self._engine,
                "checkpoints": self.checkpoints, **extra}


def metrics_line(step: int, values: Mapping[str, float]) -> str:
    return f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items())


__all__ = ["PRECISIONS", "Trainer", "bf16_lost_fraction", "log", "metrics_line", "resolve_precision"]
