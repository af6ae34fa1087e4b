from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from harness import leaderboard as lb
from tests.leaderboard.helpers import make_run, pattern

BOARD = {
    "name": "cmp", "title": "cmp",
    "columns": [{"task": "gp-l", "split": "id", "label": "ID"},
                {"task": "gp-l", "split": "id", "metric": "mean_reward", "label": "reward"},
                {"task": "gp-l", "split": "ood-rule", "label": "OOD"}],
    "rows": [{"label": "M", "model": "m"}, {"label": "Only A", "model": "a-only"}],
}


def test_mcnemar_exact_values() -> None:
    assert lb.mcnemar_exact([False] * 12, [True] * 12) == (pytest.approx(2 / 4096), 12, 0)
    a = [True] * 10 + [False] * 3 + [True] * 5
    b = [False] * 10 + [True] * 3 + [True] * 5
    p, n01, n10 = lb.mcnemar_exact(a, b)
    assert (n01, n10) == (3, 10) and p == pytest.approx(2 * (1 + 13 + 78 + 286) / 2**13)
    assert lb.mcnemar_exact([True, False], [True, False])[0] == 1.0  # ties carry no information


def _roots(tmp_path: Path, seed_b: int) -> tuple[lb.BoardTable, lb.BoardTable]:
    a, b = tmp_path / "a", tmp_path / "b"
    make_run(a, model="m", successes=pattern(40, 10))
    make_run(a, split="ood-rule", model="m", successes=pattern(40, 20))
    make_run(a, model="a-only", successes=pattern(40, 5))
    make_run(b, model="m", successes=pattern(40, 22), seed=seed_b)
    make_run(b, split="ood-rule", model="m", successes=pattern(40, 21), seed=seed_b)
    board = lb.parse_board(BOARD)
    return lb.aggregate(board, a), lb.aggregate(board, b)


def test_compare_same_episodes_uses_mcnemar(tmp_path: Path) -> None:
    cmp = lb.compare(*_roots(tmp_path, seed_b=0))
    d = cmp.deltas[("M", "gp-l/id/success_rate")]
    assert d.delta == pytest.approx(0.30)
    assert d.test == "mcnemar-exact" and d.p_value == pytest.approx(2 / 4096) and d.significant
    assert "40 paired episodes" in d.detail
    near = cmp.deltas[("M", "gp-l/ood-rule/success_rate")]
    assert near.test == "mcnemar-exact" and near.p_value == 1.0 and near.significant is False
    reward = cmp.deltas[("M", "gp-l/id/mean_reward")]
    assert reward.test == "paired-bootstrap" and reward.significant and reward.delta == pytest.approx(1.8)
    missing = cmp.deltas[("Only A", "gp-l/id/success_rate")]
    assert missing.b is None and missing.delta is None and missing.test == "none"
    md = lb.comparison_to_markdown(cmp)
    assert "25.0 → 55.0 (+30.0 paired, n=40, p=0.00049 *)" in md and "McNemar" in md
    assert "50.0 → 52.5 (+2.5 paired, n=40, p=1 (ns))" in md
    data = orjson.loads(lb.comparison_to_json(cmp))
    assert {c["test"] for c in data["cells"]} == {"mcnemar-exact", "paired-bootstrap", "none"}


def test_paired_delta_is_over_the_episodes_both_runs_played(tmp_path: Path) -> None:
    """A has 20 episodes (the first 5 solved), B has 40 (the first 10 and 20..29 solved): the cells say 25%
    and 50%, but on the 20 episodes both played B solved 10 to A's 5; the test and the delta shown are those."""
    make_run(tmp_path / "a", model="m", successes=pattern(20, 5))
    make_run(tmp_path / "b", model="m", successes=[i < 10 or 20 <= i < 30 for i in range(40)])
    board = lb.parse_board({**BOARD, "columns": BOARD["columns"][:1]})
    cmp = lb.compare(lb.aggregate(board, tmp_path / "a"), lb.aggregate(board, tmp_path / "b"),
                     a_name="runs a/ (board cmp)", b_name="runs b/ (board cmp)")
    d = cmp.deltas[("M", "gp-l/id/success_rate")]
    assert d.cell_delta == pytest.approx(0.25) and d.delta == pytest.approx(0.25) and d.paired_n == 20
    assert "(A has 20, B 40)" in d.detail
    legend = lb.comparison_legend(cmp)
    assert "A = runs a/ (board cmp)" in legend and "B = runs b/ (board cmp)" in legend
    make_run(tmp_path / "c", model="m", successes=[i < 5 or 20 <= i < 40 for i in range(40)])
    d2 = lb.compare(lb.aggregate(board, tmp_path / "a"), lb.aggregate(board, tmp_path / "c")).deltas[
        ("M", "gp-l/id/success_rate")]
    assert d2.cell_delta == pytest.approx(0.375) and d2.delta == 0.0  # same 5 of the 20 shared: no difference
    assert "(+0.0 paired, n=20, p=1 (ns))" in lb.fmt_delta(d2, board.columns[0])


def test_compare_different_seeds_falls_back_to_interval_overlap(tmp_path: Path) -> None:
    cmp = lb.compare(*_roots(tmp_path, seed_b=1))
    d = cmp.deltas[("M", "gp-l/id/success_rate")]
    # 25% [14.2, 40.2] vs 55% [39.8, 69.2]: the intervals overlap, so unpaired it is not significant
    assert d.test == "ci-overlap" and d.significant is False and d.p_value is None


def test_compare_published_tables(tmp_path: Path) -> None:
    ta, tb = _roots(tmp_path, seed_b=0)
    (tmp_path / "a.md").write_text(lb.to_markdown(ta))
    (tmp_path / "b.json").write_text(lb.to_json(tb))
    cmp = lb.compare(lb.read_table(tmp_path / "a.md"), lb.read_table(tmp_path / "b.json"))
    # a published markdown table carries no episode paths: intervals only
    assert cmp.deltas[("M", "gp-l/id/success_rate")].test == "ci-overlap"
    with pytest.raises(lb.BoardError, match="share no column"):
        lb.compare(ta, lb.BoardTable("x", "x", [lb.Column("virl-l", "id")], []))
