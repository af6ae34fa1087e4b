"""Metrics with 95% confidence intervals, computed streaming: :class:`MetricsAccumulator` takes one
episode record at a time and keeps only counts and exact sums, so an eval's memory does not grow with its
number of episodes. Sums of values and of their squares are kept exactly (integers over a power of two,
which every float is), so the result does not depend on the order episodes finished in: a resumed run
(records read back in file order) ends with exactly the metrics of an uninterrupted one."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from harness.types import MetricSpec, MetricValue

Z95 = 1.959963984540054
_NAN = float("nan")


def wilson(hits: float, n: int, z: float = Z95) -> MetricValue:
    """Wilson score interval: well behaved at 0% and 100%, unlike the normal approximation. The bounds
    always hold the value and lie in [0, 1] (rounding alone would put them a hair off, as 1.7e-18 at 0%)."""
    if n <= 0:
        return MetricValue(_NAN, _NAN, _NAN, 0)
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if hits <= 0 else min(p, max(0.0, centre - half))
    high = 1.0 if hits >= n else max(p, min(1.0, centre + half))
    return MetricValue(p, low, high, n)


class ExactMoments:
    """Count, sum and sum of squares of floats, kept exactly: each value is ``num / 2**k``, so the sums are
    integers over a common power of two (the finest any value needed so far)."""

    __slots__ = ("n", "s1", "s2", "shift")

    def __init__(self) -> None:
        self.n = 0
        self.s1 = 0  # sum of values * 2**shift
        self.s2 = 0  # sum of squares * 2**(2 * shift)
        self.shift = 0

    def add(self, value: float) -> None:
        num, den = value.as_integer_ratio()
        k = den.bit_length() - 1  # den is a power of two
        if k > self.shift:
            self.s1 <<= k - self.shift
            self.s2 <<= 2 * (k - self.shift)
            self.shift = k
        up = self.shift - k
        self.n += 1
        self.s1 += num << up
        self.s2 += (num * num) << (2 * up)

    def result(self, z: float = Z95) -> MetricValue:
        """The mean with a normal 95% interval (sample standard deviation), each correctly rounded from the
        exact sums; equal values give a zero-width interval exactly."""
        n = self.n
        if n == 0:
            return MetricValue(_NAN, _NAN, _NAN, 0)
        mean = float(Fraction(self.s1, n << self.shift))
        if n == 1:
            return MetricValue(mean, mean, mean, 1)
        # (n * sum x^2 - (sum x)^2) / (n^2 (n - 1)): the variance of the mean, exactly
        var_of_mean = Fraction(n * self.s2 - self.s1 * self.s1, (n * n * (n - 1)) << (2 * self.shift))
        try:
            half = z * math.sqrt(float(var_of_mean))
        except OverflowError:  # values near the float range: the interval is unbounded
            half = math.inf
        return MetricValue(mean, mean - half, mean + half, n)


def mean_ci(values: Iterable[float], z: float = Z95) -> MetricValue:
    acc = ExactMoments()
    for v in values:
        acc.add(float(v))
    return acc.result(z)


CORE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("success_rate", "episodes solved within the answer budget (failed episodes count as unsolved)",
               "rate"),
    MetricSpec("mean_reward", "sum of verifier rewards per episode", "mean"),
    MetricSpec("mean_turns", "answers the model gave per episode", "mean"),
)


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


class MetricsAccumulator:
    """The metrics of a run, fed one finished (``ok``) episode record at a time; O(1) memory per episode.
    A task metric an episode does not report, or reports with a value of the wrong kind, is skipped for
    that episode."""

    def __init__(self, task_metrics: Sequence[MetricSpec] = ()) -> None:
        self.solved = 0
        self.episodes = 0
        self.reward = ExactMoments()
        self.turns = ExactMoments()
        core = {m.name for m in CORE_METRICS}
        self.specs = [m for m in dict((m.name, m) for m in task_metrics).values() if m.name not in core]
        self.hits = dict.fromkeys((m.name for m in self.specs if m.kind != "mean"), 0)
        self.totals = dict.fromkeys(self.hits, 0)
        self.means = {m.name: ExactMoments() for m in self.specs if m.kind == "mean"}

    def add(self, sample: Mapping[str, Any]) -> None:
        # the core fields are checked when a record is read (harness.store.sample_problem)
        self.episodes += 1
        self.solved += bool(sample["success"])
        self.reward.add(float(sample["reward"]))
        self.turns.add(float(len(sample["turns"])))
        values = sample.get("metrics") or {}
        for spec in self.specs:
            v = values.get(spec.name)
            if v is None or not _fits(v, spec.kind):
                continue
            if spec.kind == "rate":
                self.hits[spec.name] += bool(v)
                self.totals[spec.name] += 1
            elif spec.kind == "ratio":
                self.hits[spec.name] += int(v[0])
                self.totals[spec.name] += int(v[1])
            else:
                self.means[spec.name].add(float(v))

    def result(self, failed: int = 0) -> dict[str, MetricValue]:
        """Metrics over the episodes added; ``failed`` episodes (which ended in an error) count as unsolved
        in ``success_rate``, so its ``n`` is every episode played."""
        out = {"success_rate": wilson(self.solved, self.episodes + max(0, failed)),
               "mean_reward": self.reward.result(), "mean_turns": self.turns.result()}
        for spec in self.specs:
            out[spec.name] = (self.means[spec.name].result() if spec.kind == "mean"
                              else wilson(self.hits[spec.name], self.totals[spec.name]))
        return out


def aggregate(samples: Iterable[Mapping[str, Any]], task_metrics: Sequence[MetricSpec] = (), *, failed: int = 0
              ) -> dict[str, MetricValue]:
    """Metrics over completed episodes (see :class:`MetricsAccumulator`), streaming over ``samples``."""
    acc = MetricsAccumulator(task_metrics)
    for s in samples:
        acc.add(s)
    return acc.result(failed)
