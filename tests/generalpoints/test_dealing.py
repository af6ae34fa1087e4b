"""Hands are dealt from the paper's distribution: checked against the exact distribution of its procedure.

The paper draws four independent uniform ranks (for the OOD rule: three uniform ranks and one face rank,
shuffled), independent uniform suits from the split's colours, and redraws the whole hand until its solver
finds a solution. Enumerating that procedure gives the exact probability of every rank multiset; the env's
hands must match it (total variation and a chi-square test), and suits must be uniform and independent.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from fractions import Fraction

import pytest

from harness.types import TaskSpec
from harness_tasks.generalpoints import solver
from harness_tasks.generalpoints.cards import BLACK_SUITS, hand_values

N = 6000


def exact_multiset_distribution(face_card: bool, rule: str) -> dict[tuple[int, ...], float]:
    weights: Counter[tuple[int, ...]] = Counter()
    if face_card:  # 3 uniform ranks + 1 uniform face rank, shuffled: the shuffle leaves the multiset alone
        draws = ((*a, f) for a in itertools.product(range(1, 14), repeat=3) for f in (11, 12, 13))
    else:
        draws = itertools.product(range(1, 14), repeat=4)
    for ranks in draws:
        if solver.is_solvable(hand_values(ranks, rule)):
            weights[tuple(sorted(ranks))] += 1
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


@pytest.mark.parametrize(("task", "split", "face_card", "rule"), [
    ("gp-l", "id", False, "train"), ("gp-l", "ood-rule", True, "ood"), ("gp-vl", "ood-rule", True, "ood"),
])
def test_rank_multisets_follow_the_papers_procedure(tasks: dict[str, TaskSpec], task: str, split: str,
                                                    face_card: bool, rule: str) -> None:
    exact = exact_multiset_distribution(face_card, rule)
    env = tasks[task].make_env(split, image_size=64) if task == "gp-vl" else tasks[task].make_env(split)
    seen: Counter[tuple[int, ...]] = Counter()
    positions: Counter[int] = Counter()
    for seed in range(N):
        env.reset(seed=seed)
        ranks = [r for r, _ in list(env.problem.cards)]
        seen[tuple(sorted(ranks))] += 1
        if face_card and sum(r >= 11 for r in ranks) == 1:
            positions[next(i for i, r in enumerate(ranks) if r >= 11)] += 1
    assert set(seen) <= set(exact)  # never an unsolvable hand
    tv = 0.5 * sum(abs(seen[k] / N - p) for k, p in exact.items())
    # sampling noise alone gives about 0.2 here (hundreds of cells, 6,000 hands); a wrong procedure (e.g. one
    # deck without repeats, or the face card always last) is far off in the pooled test below
    assert tv < 0.3, tv
    # chi-square over cells pooled by expected count, so every cell expects at least 20 hands
    cells: list[tuple[float, int]] = []
    acc_p, acc_n = 0.0, 0
    for k, p in sorted(exact.items(), key=lambda kv: kv[1]):
        acc_p, acc_n = acc_p + p, acc_n + seen[k]
        if acc_p * N >= 20:
            cells.append((acc_p, acc_n))
            acc_p, acc_n = 0.0, 0
    if acc_p:
        cells[-1] = (cells[-1][0] + acc_p, cells[-1][1] + acc_n)
    chi2 = sum((n - p * N) ** 2 / (p * N) for p, n in cells)
    dof = len(cells) - 1
    assert chi2 < dof + 5 * math.sqrt(2 * dof), (chi2, dof)  # about 5 sigma above the mean
    if face_card:  # the face card is shuffled in: every position equally likely
        total = sum(positions.values())
        assert all(abs(positions[i] / total - 0.25) < 0.03 for i in range(4)), positions


@pytest.mark.parametrize(("task", "split"), [("gp-l", "id"), ("gp-vl", "id")])
def test_repeated_ranks_as_often_as_independent_draws_give(tasks: dict[str, TaskSpec], task: str, split: str
                                                           ) -> None:
    """The sharpest single check against dealing from a deck: how often a hand repeats a rank."""
    exact = exact_multiset_distribution(False, "train")
    expected = sum(p for k, p in exact.items() if len(set(k)) < 4)
    env = tasks[task].make_env(split, image_size=64) if task == "gp-vl" else tasks[task].make_env(split)
    hits = 0
    for seed in range(N):
        env.reset(seed=seed)
        hits += len({r for r, _ in list(env.problem.cards)}) < 4
    se = math.sqrt(expected * (1 - expected) / N)
    assert abs(hits / N - expected) < 4 * se, (hits / N, expected)


def test_repeats_and_duplicates_occur_as_in_independent_draws(tasks: dict[str, TaskSpec]) -> None:
    """Independent ranks and suits allow the same card twice (the paper deals from no deck)."""
    env = tasks["gp-vl"].make_env("id", image_size=64)
    dup_cards = 0
    suits: Counter[str] = Counter()
    for seed in range(3000):
        env.reset(seed=seed)
        dup_cards += len(set(list(env.problem.cards))) < 4
        suits.update(s for _, s in list(env.problem.cards))
    assert dup_cards > 100  # with two suits, a repeated (rank, suit) is common
    assert set(suits) == set(BLACK_SUITS)
    share = suits["spades"] / sum(suits.values())
    assert abs(share - 0.5) < 0.02


def test_exact_distribution_helper_sums_to_one() -> None:
    dist = exact_multiset_distribution(False, "train")
    assert abs(sum(dist.values()) - 1) < 1e-9
    # (1, 1, 1, 1) can't make 24; (4, 6, 1, 1) can: 4*6*1*1
    assert (1, 1, 1, 1) not in dist and (1, 1, 4, 6) in dist
    assert Fraction(dist[(1, 1, 4, 6)]).limit_denominator(10**9) > 0
