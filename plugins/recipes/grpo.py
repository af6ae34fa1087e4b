"""GRPO's advantage estimator: no value head; each episode is compared with the other episodes that
started from the same state (same hand / route), and every turn of it shares that advantage."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence


def group_advantages(returns: Sequence[float], groups: Sequence[int], eps: float = 1e-6) -> list[float]:
    """(R - mean of its group) / (std of its group + eps). A group whose returns are all equal gives 0:
    it carries no signal about which answer was better."""
    by_group: dict[int, list[float]] = defaultdict(list)
    for r, g in zip(returns, groups, strict=True):
        by_group[g].append(float(r))
    stats = {}
    for g, rs in by_group.items():
        mean = sum(rs) / len(rs)
        std = math.sqrt(sum((r - mean) ** 2 for r in rs) / max(1, len(rs) - 1)) if len(rs) > 1 else 0.0
        stats[g] = (mean, std)
    return [(float(r) - stats[g][0]) / (stats[g][1] + eps) for r, g in zip(returns, groups, strict=True)]


def episode_return(rewards: Sequence[float], gamma: float = 1.0) -> float:
    total = 0.0
    for r in reversed(rewards):
        total = r + gamma * total
    return total


__all__ = ["episode_return", "group_advantages"]
