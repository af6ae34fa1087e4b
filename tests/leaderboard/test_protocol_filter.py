"""The shipped boards never mix runs of the paper's protocol with runs made under harness's earlier one."""

from __future__ import annotations

from pathlib import Path

from harness import leaderboard as lb
from tests.leaderboard.helpers import make_run


def test_shipped_boards_take_only_paper_protocol_runs(tmp_path: Path) -> None:
    old = make_run(tmp_path, model="oracle", successes=[False] * 4, task_version="", finished=2e9)
    new = make_run(tmp_path, model="oracle", successes=[True] * 4, run_id="new", finished=1e9)
    for name in ("baselines", "sft-vs-rl"):
        board = lb.load_board(lb.find_board(name))
        assert all(c.where.get("task_version") == "paper-1" for c in board.columns)
        table = lb.aggregate(board, tmp_path)
        cell = table.rows[0].cells["gp-l/id/success_rate"]
        assert cell is not None and cell.run_id == new.name != old.name and cell.value == 1.0
