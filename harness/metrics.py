"""Aggregate per-episode records into metrics with 95% confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.types import MetricSpec, MetricValue

Z95 = 1.959963984540054


def wilson(hits: float, n: int, z: float = Z95) -> MetricValue:
    """Wilson score interval: well behaved at 0% and 100%, unlike the normal approximation."""
    if n <= 0:
        return MetricValue(float("nan"), float("nan"), float("nan"), 0)
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return MetricValue(p, max(0.0, centre - half), min(1.0, centre + half), n)


def mean_ci(values: Sequence[float], z: float = Z95) -> MetricValue:
    n = len(values)
    if n == 0:
        return MetricValue(float("nan"), float("nan"), float("nan"), 0)
    m = math.fsum(values) / n
    if n == 1:
        return MetricValue(m, m, m, 1)
    var = math.fsum((v - m) ** 2 for v in values) / (n - 1)
    half = z * math.sqrt(var / n)
    return MetricValue(m, m - half, m + half, n)


CORE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("success_rate", "episodes solved within the answer budget", "rate"),
    MetricSpec("mean_reward", "sum of verifier rewards per episode", "mean"),
    MetricSpec("mean_turns", "answers the model gave per episode", "mean"),
)


def _value(sample: Mapping[str, Any], name: str) -> Any:
    if name == "success_rate":
        return bool(sample["success"])
    if name == "mean_reward":
        return float(sample["reward"])
    if name == "mean_turns":
        return len(sample["turns"])
    return (sample.get("metrics") or {}).get(name)


def aggregate(samples: Iterable[Mapping[str, Any]], task_metrics: Sequence[MetricSpec] = ()
              ) -> dict[str, MetricValue]:
    """Metrics over completed episodes. A task metric an episode does not report is skipped for it."""
    samples = list(samples)
    out: dict[str, MetricValue] = {}
    for spec in (*CORE_METRICS, *task_metrics):
        vals = [v for v in (_value(s, spec.name) for s in samples) if v is not None]
        if spec.kind == "rate":
            out[spec.name] = wilson(sum(1 for v in vals if v), len(vals))
        elif spec.kind == "ratio":
            hits = sum(int(v[0]) for v in vals)
            total = sum(int(v[1]) for v in vals)
            out[spec.name] = wilson(hits, total)
        else:
            out[spec.name] = mean_ci([float(v) for v in vals])
    return out
