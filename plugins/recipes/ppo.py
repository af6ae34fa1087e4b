"""PPO pieces (RL4VLM lineage, as the paper uses): GAE over the turns of an episode, the clipped
surrogate on the weighted sequence log-prob, and the value loss. No KL term."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def gae(rewards: Sequence[float], values: Sequence[float], gamma: float, lam: float) -> tuple[list[float], list[float]]:
    """Advantages and returns for one finished episode (turn t's next value is 0 after the last turn)."""
    n = len(rewards)
    adv = [0.0] * n
    running = 0.0
    for t in reversed(range(n)):
        next_v = values[t + 1] if t + 1 < n else 0.0
        delta = rewards[t] + gamma * next_v - values[t]
        running = delta + gamma * lam * running
        adv[t] = running
    return adv, [a + v for a, v in zip(adv, values, strict=True)]


def weighted_logprob(token_logp: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """lambda * sum log p(thought tokens) + sum log p(action tokens): ``weights`` holds lambda or 1 per
    token and 0 on padding."""
    return (token_logp * weights).sum(dim=-1)


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, clip: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped surrogate (to minimise) and the fraction of samples whose ratio was clipped."""
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * adv
    loss = -torch.minimum(unclipped, clipped).mean()
    frac = ((ratio - 1.0).abs() > clip).float().mean()
    return loss, frac


def value_loss(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    return 0.5 * (values - returns).pow(2).mean()


def normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    if x.numel() < 2:
        return x
    return (x - x.mean()) / (x.std() + eps)


__all__ = ["gae", "normalize", "policy_loss", "value_loss", "weighted_logprob"]
