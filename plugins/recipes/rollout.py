"""Rollouts: multi-turn verification-revision episodes played in lock-step across parallel envs.

Each live episode is the runner's own :class:`harness.runner._Episode`, so the conversation a policy
answers during training is built exactly as in evaluation (feedback turns included). Every round, the
next prompt of every live episode goes into one batched sampling call; each answer becomes a
:class:`Turn` holding the sampled token ids (log-probs are later computed on these very ids) and the
verifier's reward. Generation goes through the policy's hf model, or a vLLM engine on a GPU
(:mod:`plugins.recipes.vllm_engine`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.env import TextEnv
from harness.runner import _Episode
from harness.types import Completion, Message

log = logging.getLogger(__name__)

# (conversations, max_new_tokens, temperature, seed) -> (completion ids, prompt token counts)
Generate = Callable[[Sequence[Sequence[Message]], int, float, int], tuple[list[list[int]], list[int]]]


@dataclass
class Turn:
    messages: tuple[Message, ...]
    ids: list[int]
    text: str
    reward: float
    prompt_tokens: int
    weights: list[float] = field(default_factory=list)  # per-token lambda / 1, filled by the RL recipe
    advantage: float = 0.0
    ret: float = 0.0
    value: float = 0.0
    old_logp: float | None = 0.0  # None: taken from the first update pass (see RLTrainer.estimate)


@dataclass
class EpisodeLog:
    seed: int
    group: int
    turns: list[Turn]
    success: bool = False
    error: str | None = None

    @property
    def reward(self) -> float:
        return sum(t.reward for t in self.turns)


def play(generate: Generate, decode: Callable[[Sequence[int]], str], envs: Sequence[TextEnv],
         seeds: Sequence[int], groups: Sequence[int], *, max_new_tokens: int, temperature: float,
         sample_seed: int) -> list[EpisodeLog]:
    """Play one episode per (env, seed) to the end. ``groups`` tags episodes that share a start state
    (GRPO). An env that raises ends its episode with ``error`` set (its turns are dropped from training)."""
    logs = [EpisodeLog(s, g, []) for s, g in zip(seeds, groups, strict=True)]
    live: list[tuple[int, _Episode]] = []
    for i, (env, s) in enumerate(zip(envs, seeds, strict=True)):
        try:
            live.append((i, _Episode(i, s, env)))
        except Exception as exc:
            logs[i].error = f"reset: {type(exc).__name__}: {exc}"
    rnd = 0
    while live:
        convs = [tuple(ep.messages) for _, ep in live]
        ids, prompt_tokens = generate(convs, max_new_tokens, temperature, sample_seed * 1009 + rnd)
        rnd += 1
        still = []
        for (i, ep), c, n in zip(live, ids, prompt_tokens, strict=True):
            text = decode(c)
            msgs = tuple(ep.messages)
            try:
                over = ep.apply(Completion(text, prompt_tokens=n, completion_tokens=len(c)))
            except Exception as exc:  # a task bug must not end training
                logs[i].error = f"step: {type(exc).__name__}: {exc}"
                log.warning("episode %s dropped: %s", ep.seed, logs[i].error)
                continue
            logs[i].turns.append(Turn(msgs, list(c), text, ep.turns[-1]["reward"], n))
            if over:
                logs[i].success = bool(ep.summary.get("success", False))
            else:
                still.append((i, ep))
        live = still
    return logs


__all__ = ["EpisodeLog", "Generate", "Turn", "play"]
