"""Named settings for the recipes: ``--recipe-args preset=paper``.

``paper`` is the PPO of the paper's RL trainer (LeslieTrue/SFTvsRL), read from its repository:
``rl/configs/llama_{gp,virl}_{language,vl}.yaml`` (the values), ``rl/trainer/algo/ppo.py`` (value-loss
clipping with the policy's clip range, the ratio guard), ``rl/trainer/llama_trainer.py`` (one Adam over the
policy and the value head, cosine annealing stepped once per update), ``rl/trainer/model_tz_llama.py`` (the
value head's widths, the action span) and ``rl/launcher.py`` (gradient accumulation). Counts are per
process, as there: the paper ran 8 processes (``scripts/config_zero2_8gpu.yaml``), so an optimiser step
averages 8 x 128 turns. An argument given explicitly next to the preset wins over it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# task family -> turns collected per process per update (the configs' num_steps)
_TURNS_PER_UPDATE = {"gp": 256, "virl": 512}

PAPER_RL: dict[str, Any] = {
    "advantage": "gae",
    "temperature": 0.2,           # generation_config.temperature
    "max_new_tokens": 512,        # generation_config.max_new_tokens
    "thought_coef": 0.5,          # generation_config.thought_prob_coef
    "lr": 1e-6,                   # optimizer_config.init_lr, one optimiser for policy and value head
    "value_lr": 1e-6,
    "adam_eps": 1e-7,             # optimizer_config.eps
    "weight_decay": 0.0,          # optimizer_config.weight_decay
    "lr_schedule": "cosine",      # CosineAnnealingLR(T_max=lr_max_steps, eta_min=end_lr), stepped per update
    "lr_decay_steps": 100,        # optimizer_config.lr_max_steps
    "min_lr": 1e-9,               # optimizer_config.end_lr
    "clip": 0.1,                  # ppo_config.clip_param
    "value_clip": 0.1,            # use_clipped_value_loss=True clips with clip_param
    "ratio_guard": 10.0,          # ppo.py: a ratio above 10 takes the clipped surrogate only
    "epochs": 4,                  # ppo_config.ppo_epoch
    "value_coef": 0.5,            # ppo_config.value_loss_coef
    "grad_clip": 0.01,            # ppo_config.max_grad_norm
    "minibatch": 128,             # mini_batch_size 1 x grad_accum_steps 128
    "gamma": 0.9,                 # compute_return_kwargs
    "gae_lambda": 0.95,
    "norm_adv": True,             # advantages normalised over the update's turns
    "updates": 20,                # num_updates
    "value_widths": "1024:512",   # VLMValue: hidden -> 1024 -> 512 -> 1
    "action_span": "key-to-end",  # the action's log-prob runs from the field's key to the end of the answer
}


def task_family(task: str) -> str:
    return "virl" if task.startswith("virl") else "gp"


def paper_rl(task: str) -> dict[str, Any]:
    return {**PAPER_RL, "turns_per_update": _TURNS_PER_UPDATE[task_family(task)]}


def with_preset(args: Mapping[str, Any], task: str, presets: Mapping[str, Any]) -> dict[str, Any]:
    """The user's recipe args on top of the named preset's values (no preset: the args unchanged)."""
    name = str(args.get("preset") or "").strip()
    if not name:
        return dict(args)
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(sorted(presets))}")
    return {**presets[name](task), **args}


RL_PRESETS = {"paper": paper_rl}

__all__ = ["PAPER_RL", "RL_PRESETS", "paper_rl", "task_family", "with_preset"]
