"""PPO pieces (RL4VLM lineage, as the paper uses): GAE over the turns of an episode, the clipped
surrogate on the weighted sequence log-prob, and the value loss. No KL term. Losses are per sample, so
that the recipe can leave padding samples out and normalise over every process's samples."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def gae(rewards: Sequence[float], values: Sequence[float], gamma: float, lam: float, *, last_value: float = 0.0
        ) -> tuple[list[float], list[float]]:
    """Advantages and returns for the turns of one episode (or of a piece of one). After the last turn
    the next value is ``last_value``: 0 when the episode ended there, V(next prompt) when it goes on."""
    n = len(rewards)
    adv = [0.0] * n
    running = 0.0
    for t in reversed(range(n)):
        next_v = values[t + 1] if t + 1 < n else last_value
        delta = rewards[t] + gamma * next_v - values[t]
        running = delta + gamma * lam * running
        adv[t] = running
    return adv, [a + v for a, v in zip(adv, values, strict=True)]


def weighted_logprob(token_logp: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """lambda * sum log p(thought tokens) + sum log p(action tokens): ``weights`` holds lambda or 1 per
    token and 0 on padding."""
    return (token_logp * weights).sum(dim=-1)


def policy_losses(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, clip: float,
                  ratio_guard: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample clipped surrogate (to minimise) and whether each ratio fell outside the clip range.
    With ``ratio_guard`` > 0 a sample whose ratio exceeds it takes the clipped term alone (the paper's
    guard against exploding ratios; it lets no gradient through such a sample's ratio)."""
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * adv
    loss = -torch.minimum(unclipped, clipped)
    if ratio_guard > 0:
        loss = torch.where(ratio > ratio_guard, -clipped, loss)
    return loss, ((ratio - 1.0).abs() > clip).float()


def value_losses(values: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor | None = None,
                 clip: float = 0.0) -> torch.Tensor:
    """Per-sample 0.5 * (V - R)^2; with ``clip`` > 0, the larger of that and the loss of V clipped to
    ``old_values`` +- clip (PPO's value clipping)."""
    loss = (values - returns).pow(2)
    if clip > 0 and old_values is not None:
        clipped = old_values + (values - old_values).clamp(-clip, clip)
        loss = torch.maximum(loss, (clipped - returns).pow(2))
    return 0.5 * loss


def normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    if x.numel() < 2:
        return x
    return (x - x.mean()) / (x.std() + eps)


__all__ = ["gae", "normalize", "policy_losses", "value_losses", "weighted_logprob"]
