from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from harness import leaderboard as lb
from tests.leaderboard.helpers import make_run, pattern

BOARD = """
name = "mini"
title = "Mini board"
select = "latest"

[[columns]]
task = "gp-l"
split = "id"
label = "GP-L ID"

[[columns]]
task = "gp-l"
split = "ood-rule"
label = "GP-L OOD"

[[columns]]
task = "gp-vl"
split = "id"
metric = "recognition_accuracy"
label = "Recog"

[[rows]]
label = "Oracle"
group = "baselines"
model = "oracle"

[[rows]]
label = "Base"
group = "init"
model = "llama*"
recipe = "none"

[[rows]]
label = "RL {flops:.0e}"
group = "RL"
recipe = "rl"
expand = "flops"
series = "RL"
"""


def _board(tmp_path: Path) -> lb.Board:
    p = tmp_path / "mini.toml"
    p.write_text(BOARD)
    return lb.load_board(p)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_run(root, model="oracle", successes=[True] * 20, finished=100)
    make_run(root, split="ood-rule", model="oracle", successes=[True] * 20, finished=100)
    # two base runs on one cell: the latest complete one wins; a later failed one is ignored
    make_run(root, model="llama-3.2-vision", successes=pattern(20, 4), finished=100, run_id="old")
    make_run(root, model="llama-3.2-vision", successes=pattern(20, 8), finished=200, run_id="new")
    make_run(root, model="llama-3.2-vision", successes=pattern(20, 20), finished=300, run_id="partial",
             status="failed")
    make_run(root, task="gp-vl", model="llama-3.2-vision", successes=pattern(4, 2), finished=100,
             recognition=[(4, 4), (3, 4), (2, 4), (4, 4)])
    for flops, k_id, k_ood in ((1e15, 10, 6), (2e15, 14, 9)):
        make_run(root, model="ckpt", recipe="rl", flops=flops, successes=pattern(20, k_id), finished=100)
        make_run(root, split="ood-rule", model="ckpt", recipe="rl", flops=flops, successes=pattern(20, k_ood),
                 finished=100)
    return root


def test_bundled_boards_parse() -> None:
    board = lb.load_board(lb.find_board("sft-vs-rl"))
    keys = [c.key for c in board.columns]
    for key in ("gp-l/id/success_rate", "gp-l/ood-rule/success_rate", "gp-vl/ood-visual/success_rate",
                "virl-vl/world/success_rate", "gp-vl/id/recognition_accuracy", "virl-vl/id/step_accuracy"):
        assert key in keys
    assert {r.label for r in board.rows} >= {"Random", "Oracle (expert policy)"}
    assert lb.load_board(lb.find_board("baselines")).rows


def test_board_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(lb.BoardError, match="unknown key"):
        lb.parse_board({"columns": [{"task": "a", "split": "id", "metrc": "x"}]})
    with pytest.raises(lb.BoardError, match="at least one"):
        lb.parse_board({"rows": [{"label": "x"}]})
    with pytest.raises(lb.BoardError, match="known boards"):
        lb.find_board("no-such-board", cwd=tmp_path)


def test_bundled_boards_are_found_from_any_directory(tmp_path: Path) -> None:
    found = lb.find_board("sft-vs-rl", cwd=tmp_path)  # no ./leaderboards here: the bundled one
    assert found.name == "sft-vs-rl.toml" and found.parent.name == "leaderboards"


def test_aggregate_selects_latest_complete_run_and_expands_compute(tmp_path: Path, runs: Path) -> None:
    table = lb.aggregate(_board(tmp_path), runs)
    labels = [r.label for r in table.rows]
    assert labels == ["Oracle", "Base", "RL 1e+15", "RL 2e+15"]
    rows = {r.label: r for r in table.rows}
    base = rows["Base"].cells["gp-l/id/success_rate"]
    assert base.run_id == "new" and base.value == pytest.approx(0.4) and base.candidates == 2
    assert rows["Base"].cells["gp-l/ood-rule/success_rate"] is None
    assert rows["Base"].cells["gp-vl/id/recognition_accuracy"].value == pytest.approx(13 / 16)
    assert rows["RL 2e+15"].cells["gp-l/ood-rule/success_rate"].value == pytest.approx(0.45)
    assert rows["RL 2e+15"].cells["gp-l/id/success_rate"].flops == 2e15
    assert rows["Oracle"].cells["gp-l/id/success_rate"].value == 1.0
    board = lb.parse_board({**_toml(), "select": "best"})
    best = lb.aggregate(board, runs)
    assert best.rows[1].cells["gp-l/id/success_rate"].run_id == "new"  # 40% beats 20%


def _toml() -> dict:
    import tomllib

    return tomllib.loads(BOARD)


def test_render_formats(tmp_path: Path, runs: Path) -> None:
    table = lb.aggregate(_board(tmp_path), runs)
    md = lb.render(table, "md")
    assert "| Group | Model | GP-L ID | GP-L OOD | Recog |" in md
    assert "| baselines | Oracle | 100.0 [83.9, 100.0] |" in md
    rows = list(csv.DictReader(io.StringIO(lb.render(table, "csv"))))
    assert len(rows) == 4 * 3
    cell = next(r for r in rows if r["row"] == "Base" and r["column"] == "GP-L ID")
    assert float(cell["value"]) == pytest.approx(0.4) and cell["run_id"] == "new" and cell["n"] == "20"
    data = orjson.loads(lb.render(table, "json"))
    assert data["rows"][1]["cells"]["gp-l/id/success_rate"]["ci_low"] < 0.4
    back = lb.BoardTable.from_dict(data)
    assert back.rows[1].cells["gp-l/id/success_rate"] == table.rows[1].cells["gp-l/id/success_rate"]
    page = lb.render(table, "html")
    assert page.startswith("<!DOCTYPE html>") and "<script>" in page and "aria-sort" in page
    assert "src=" not in page and "href=" not in page and "http" not in page.replace("http-equiv", "")
    console = Console(record=True, width=200)
    console.print(lb.to_rich(table))
    text = console.export_text()
    assert "Mini board" in text and "40.0 [21.9, 61.3]" in text
    with pytest.raises(lb.BoardError, match="unknown format"):
        lb.render(table, "xlsx")


def test_publish_writes_markdown_that_reads_back(tmp_path: Path, runs: Path) -> None:
    board = _board(tmp_path)
    path = lb.publish(board, runs)
    assert path == tmp_path / "mini.md"
    text = path.read_text()
    assert text.startswith("# Mini board") and "| init | Base | 40.0" in text
    back = lb.read_table(path)
    assert [r.label for r in back.rows] == ["Oracle", "Base", "RL 1e+15", "RL 2e+15"]
    assert math.isclose(back.rows[1].cells["gp-l/id/success_rate"].value, 0.4)


def test_expanded_model_names_match_exactly_never_as_globs(tmp_path: Path) -> None:
    names = {"gpt-4o": 9, "gpt*": 2, "[abc]": 4, "a": 6, "g?t-4o": 1}
    for name, k in names.items():
        make_run(tmp_path, model=name, successes=pattern(10, k))
    board = lb.parse_board({"columns": [{"task": "gp-l", "split": "id"}],
                            "rows": [{"label": "{model}", "expand": "model"}]})
    table = lb.aggregate(board, tmp_path)
    got = {r.label: r.cells["gp-l/id/success_rate"] for r in table.rows}
    assert set(got) == set(names)
    for name, k in names.items():
        cell = got[name]
        assert cell is not None and cell.value == k / 10 and cell.candidates == 1, name


def test_a_literal_model_name_with_glob_characters_matches_itself(tmp_path: Path) -> None:
    make_run(tmp_path, model="m[v2]", successes=pattern(10, 3))
    board = lb.parse_board({"columns": [{"task": "gp-l", "split": "id"}], "rows": [{"label": "M", "model": "m[v2]"}]})
    assert lb.aggregate(board, tmp_path).rows[0].cells["gp-l/id/success_rate"].value == 0.3


def test_expand_on_a_field_holding_objects_skips_them(tmp_path: Path) -> None:
    make_run(tmp_path, model="a", extra={"gen": {"nested": {"x": 1}}})
    make_run(tmp_path, model="b", extra={"gen": {"nested": [1, 2]}})
    board = lb.parse_board({"columns": [{"task": "gp-l", "split": "id"}],
                            "rows": [{"label": "{nested}", "expand": "gen.nested"}]})
    assert lb.aggregate(board, tmp_path).rows == []
