"""Aggregate per-episode records into metrics with 95% confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.types import MetricSpec, MetricValue

Z95 = 1.959963984540054


def wilson(hits: float, n: int, z: float = Z95) -> MetricValue:
    """Wilson score interval: well behaved at 0% and 100%, unlike the normal approximation. The bounds
    always hold the value (rounding alone could put them a hair on the wrong side at 0 and 1)."""
    if n <= 0:
        return MetricValue(float("nan"), float("nan"), float("nan"), 0)
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return MetricValue(p, min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)), n)


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
    MetricSpec("success_rate", "episodes solved within the answer budget (failed episodes count as unsolved)",
               "rate"),
    MetricSpec("mean_reward", "sum of verifier rewards per episode", "mean"),
    MetricSpec("mean_turns", "answers the model gave per episode", "mean"),
)


def _value(sample: Mapping[str, Any], name: str) -> Any:
    return (sample.get("metrics") or {}).get(name)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _fits(v: Any, kind: str) -> bool:
    """Whether an episode's value is of the metric's kind (a value of another kind is skipped)."""
    if kind == "rate":
        return isinstance(v, bool) or (_is_num(v) and v in (0, 1))
    if kind == "ratio":
        return (isinstance(v, list | tuple) and len(v) == 2 and all(_is_num(x) and 0 <= x < 2**53 for x in v)
                and int(v[0]) <= int(v[1]))
    return isinstance(v, bool) or _is_num(v)


def aggregate(samples: Iterable[Mapping[str, Any]], task_metrics: Sequence[MetricSpec] = (), *, failed: int = 0
              ) -> dict[str, MetricValue]:
    """Metrics over completed episodes; ``failed`` episodes (which ended in an error) count as unsolved in
    ``success_rate``, so its ``n`` is every episode played. A task metric an episode does not report, or
    reports with a value of the wrong kind, is skipped for that episode."""
    samples = list(samples)
    # the core fields are checked when a record is read (harness.store.sample_problem)
    out: dict[str, MetricValue] = {
        "success_rate": wilson(sum(1 for s in samples if s["success"]), len(samples) + max(0, failed)),
        "mean_reward": mean_ci([float(s["reward"]) for s in samples]),
        "mean_turns": mean_ci([float(len(s["turns"])) for s in samples]),
    }
    for spec in task_metrics:
        if spec.name in out:
            continue
        vals = [v for v in (_value(s, spec.name) for s in samples) if v is not None and _fits(v, spec.kind)]
        if spec.kind == "rate":
            out[spec.name] = wilson(sum(1 for v in vals if v), len(vals))
        elif spec.kind == "ratio":
            out[spec.name] = wilson(sum(int(v[0]) for v in vals), sum(int(v[1]) for v in vals))
        else:
            out[spec.name] = mean_ci([float(v) for v in vals])
    return out
