"""Recipe arguments (``--recipe-args k=v,...``) as typed dataclasses with a clear error for unknown keys."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, TypeVar, get_type_hints

T = TypeVar("T")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(value: Any, hint: Any, key: str) -> Any:
    text = str(hint)
    if value is None:
        return None
    if "bool" in text and "int" not in text:
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in _TRUE | _FALSE:
            return s in _TRUE
        raise ValueError(f"recipe arg {key}: expected true/false, got {value!r}")
    if "list" in text:
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else [v for v in value.split(":") if v]
        return [float(v) for v in (value if isinstance(value, list | tuple) else [value])]
    try:
        if "float" in text:
            return float(value)
        if "int" in text:
            return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"recipe arg {key}: expected a number, got {value!r}") from None
    return str(value)


def parse_args(cls: type[T], args: Mapping[str, Any], recipe: str) -> T:
    """Build ``cls`` from user args; unknown names fail listing the valid ones with their defaults."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(args) - set(fields))
    if unknown:
        valid = ", ".join(f"{f.name}={_default(f)}" for f in fields.values())
        raise ValueError(f"unknown recipe args for {recipe!r}: {', '.join(unknown)}; valid: {valid}")
    hints = get_type_hints(cls)
    return cls(**{k: _coerce(v, hints[k], k) for k, v in args.items()})


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "?"


@dataclasses.dataclass
class CommonArgs:
    """Arguments both recipes take."""

    lora: bool = False  # LoRA adapters (peft) instead of a full fine-tune; checkpoints are saved merged
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: str = "all-linear"  # peft target_modules; a comma-free name list may be given with ':'
    lr: float | None = None  # default depends on the recipe and on lora
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    micro_batch: int = 8  # samples per forward/backward; larger batches accumulate gradients
    checkpoints: int = 4  # spread evenly over --steps or --budget; 0 = none
    milestones: list[float] | None = None  # explicit FLOPs milestones (JSON list or a:b:c); overrides checkpoints
    evaluate: bool = True  # evaluate each checkpoint on the task's splits (False: save only)
    log_every: int = 10
    gradient_checkpointing: bool = False  # recompute activations in the backward pass (less memory, ~1/3 more time)
    # auto: the accelerate config's mixed precision, else bf16 autocast over fp32 master weights on a bf16 GPU,
    # else fp32. bf16-mixed / fp16-mixed / fp32 force one; bf16 = pure bf16 weights (warns when the lr is too
    # small for bf16 to represent Adam's steps).
    precision: str = "auto"
    adam_eps: float = 1e-8
    lr_schedule: str = "constant"  # constant or cosine (annealed to min_lr over lr_decay_steps optimiser steps)
    lr_decay_steps: int = 0  # cosine period in steps of the schedule; 0: the run's --steps
    min_lr: float = 0.0
    preset: str = ""  # "paper": the paper's settings for this recipe and task (explicit args still win)

    def lr_or(self, full: float, lora: float) -> float:
        return self.lr if self.lr is not None else (lora if self.lora else full)


@dataclasses.dataclass
class SFTArgs(CommonArgs):
    batch_size: int = 8  # conversations-turns per optimiser step (all processes together)
    data: str = ""  # LLaVA-style SFT records (JSON/JSONL file or folder, the paper's format); empty: the oracle
    image_folder: str = ""  # where relative image paths of ``data`` records are found (default: beside the data)
    revision_frac: float = 0.0  # share of oracle episodes that start with a wrong answer, feedback, then the fix
    max_wrong: int = 1  # wrong answers before the correct one in such episodes (<= verify_iter - 1)
    dataset_size: int = 0  # 0: a fresh expert episode every time; N: cycle over N fixed episodes (epochs)


@dataclasses.dataclass
class RLArgs(CommonArgs):
    advantage: str = "gae"  # gae (PPO with a value head, as in the paper) or grpo (group-relative)
    gamma: float = 0.9
    gae_lambda: float = 0.95
    clip: float = 0.1
    epochs: int = 4
    thought_coef: float = 0.5  # lambda in  lambda * log p(thought) + log p(action)
    action_field: str = "auto"  # JSON field holding the action (auto: the task's TaskSpec.action_field)
    value_coef: float = 0.5
    value_lr: float | None = None  # value head learning rate (default: 1e-4, a fresh head learns fast)
    value_widths: str = "256"  # hidden widths of the value head's MLP, ':'-separated (paper: 1024:512)
    value_clip: float = 0.0  # clip V around its rollout value by this much in the value loss (0: off)
    ratio_guard: float = 0.0  # a sample whose ratio exceeds this takes the clipped surrogate only (0: off)
    n_envs: int = 8  # parallel episodes (env streams) per process
    turns_per_update: int = 0  # >0: each step collects exactly this many turns per process from env streams
    #                            that carry on across steps (the paper's rollout); 0: n_envs whole episodes
    updates: int = 0  # steps to run when neither --steps nor --budget is given
    group_size: int = 4  # grpo: episodes per initial state
    minibatch: int = 8  # turns per optimiser step per process (gradient accumulation over micro_batch)
    norm_adv: bool = True
    action_span: str = "value"  # value: the action field's value; key-to-end: from the field's key to the end
    temperature: float = 1.0
    max_new_tokens: int = 256
    rollout_engine: str = "hf"  # hf, or vllm (GPU, Qwen2-VL-class models)
    vllm_gpu_memory: float = 0.3
    vllm_sleep: int = 1  # 1: vLLM offloads weights and drops its KV cache during updates (0: keeps them)


__all__ = ["CommonArgs", "RLArgs", "SFTArgs", "parse_args"]
