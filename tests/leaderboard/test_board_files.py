"""Board files and published tables are untrusted input: a wrong type is an error naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import leaderboard as lb
from tests.leaderboard.helpers import make_run, pattern, run_cli

GOOD = '[[columns]]\ntask = "gp-l"\nsplit = "id"\n[[rows]]\nlabel = "M"\nmodel = "m"\n'


@pytest.mark.parametrize(("toml", "needle"), [
    ("columns = 5", "'columns' must be an array of tables"),
    ('alpha = "high"\n' + GOOD, ".alpha must be a finite number"),
    ("alpha = 2.0\n" + GOOD, "alpha must be between 0 and 1"),
    ('select = 3\n' + GOOD, ".select must be a string"),
    ('status = [1]\n' + GOOD, ".status must be a run status"),
    ('title = ["x"]\n' + GOOD, ".title must be a string"),
    ('format = "percent"\n' + GOOD, ".format must be one of pct, float"),
    ('[[columns]]\ntask = 5\nsplit = "id"\n', "columns[0].task must be a string"),
    ('[[columns]]\ntask = "t"\nsplit = "id"\nseed = "x"\n', "columns[0].seed must be an integer"),
    ('[[columns]]\ntask = "t"\nsplit = "id"\nwhere = 3\n', "columns[0].where must be a table"),
    ('[[columns]]\ntask = "t"\nsplit = "id"\nwhere = {"a.b" = [1]}\n', "where.a.b must be a string, number"),
    ('[[columns]]\ntask = "t"\nsplit = "id"\ndistribution = "sideways"\n', "distribution must be one of id, ood"),
    (GOOD + 'flops = "lots"\n', "rows[0].flops must be a finite number"),
    (GOOD + "flops = [3.0, 1.0]\n", "low 3 is above high 1"),
    (GOOD + 'flops = ["a", 1]\n', "flops.low must be a finite number"),
    (GOOD + "seed = 1.5\n", "rows[0].seed must be an integer"),
    (GOOD + "expand = 7\n", "rows[0].expand must be a field name"),
    ('[[columns]]\ntask = "t"\nsplit = "id"\n[[rows]]\nlabel = "{flops:999999999999}"\nexpand = "flops"\n',
     "width or precision over 100"),
    ('[[columns]]\ntask = "t"\nsplit = "id"\n[[rows]]\nlabel = "{flops:{w}}"\nexpand = "flops"\n', "nested field"),
    ('[[columns]]\ntask = "t"\nsplit = "id"\n[[rows]]\nlabel = "{x.__class__}"\nexpand = "flops"\n',
     "plain field name"),
    ('[[columns]]\ntask = "t"\nsplit = "id"\n[[rows]]\nlabel = "{"\nexpand = "flops"\n', "not a valid template"),
    ('[[columns]]\ntask = "t"\nsplit = "id"\n[[rows]]\nlabel = 5\n', "rows[0].label must be a string"),
    ('[[columns]]\ntask = "t"\nsplit = "id"\n[[rows]]\nlabel = "x"\nselect = "worst"\n', "select must be one of"),
    ("\xff\xfe", "not UTF-8"),
    ("[[columns]\n", "not valid TOML"),
])
def test_wrong_types_are_board_errors(tmp_path: Path, toml: str, needle: str) -> None:
    path = tmp_path / "b.toml"
    path.write_bytes(toml.encode("latin-1") if "\xff" in toml else toml.encode())
    with pytest.raises(lb.BoardError) as info:
        lb.load_board(path)
    assert needle in str(info.value) and ("b.toml" in str(info.value))


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code, out, err = run_cli(capsys, *argv)
    return code, " ".join((out + err).split())


def test_bad_board_through_the_cli_is_exit_2_with_the_field(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_DISABLE_ENTRYPOINTS", "1")
    make_run(tmp_path / "runs", model="m")
    (tmp_path / "b.toml").write_text('alpha = "high"\n' + GOOD)
    code, text = _cli(capsys, "leaderboard", "show", str(tmp_path / "b.toml"), "--runs", str(tmp_path / "runs"))
    assert code == 2 and "alpha must be a finite number" in text


@pytest.mark.parametrize("damage", [
    lambda d: {**d, "columns": 5},
    lambda d: {**d, "rows": [{"label": 1}]},
    lambda d: {**d, "rows": [{**d["rows"][0], "cells": {"gp-l/id/success_rate": {"value": "high", "n": 3}}}]},
    lambda d: {**d, "rows": [{**d["rows"][0], "cells": {"gp-l/id/success_rate": {"value": 0.5, "n": -3}}}]},
    lambda d: {**d, "columns": [{"task": "gp-l"}]},
    lambda d: [d],
])
def test_malformed_published_tables_are_errors_in_compare(capsys, tmp_path: Path, monkeypatch, damage) -> None:
    monkeypatch.setenv("HARNESS_DISABLE_ENTRYPOINTS", "1")
    make_run(tmp_path / "runs", model="m", successes=pattern(10, 4))
    board = lb.parse_board({"columns": [{"task": "gp-l", "split": "id"}], "rows": [{"label": "M", "model": "m"}]})
    good = json.loads(lb.to_json(lb.aggregate(board, tmp_path / "runs")))
    (tmp_path / "a.json").write_text(json.dumps(good))
    (tmp_path / "b.json").write_text(json.dumps(damage(good)))
    (tmp_path / "b.md").write_text(lb.to_markdown(lb.aggregate(board, tmp_path / "runs")).replace(
        '"value":', '"value":"x","v":'))
    for bad in ("b.json", "b.md"):
        code, text = _cli(capsys, "leaderboard", "compare", str(tmp_path / "a.json"), str(tmp_path / bad))
        assert code == 2 and bad in text, text
    code, _ = _cli(capsys, "leaderboard", "compare", str(tmp_path / "a.json"), str(tmp_path / "a.json"))
    assert code == 0


def test_interval_bounds_a_hair_off_read_back_clean(tmp_path: Path) -> None:
    """Old records and published tables hold 0% cells with ci_low 1.7e-18 (rounding): shown and exported as 0."""
    make_run(tmp_path / "runs", model="m", successes=pattern(10, 0))
    board = lb.parse_board({"columns": [{"task": "gp-l", "split": "id"}], "rows": [{"label": "M", "model": "m"}]})
    data = json.loads(lb.to_json(lb.aggregate(board, tmp_path / "runs")))
    cell = data["rows"][0]["cells"]["gp-l/id/success_rate"]
    assert cell["value"] == 0.0 and cell["ci_low"] == 0.0  # fresh metrics are exact
    cell["ci_low"], cell["ci_high"] = 1.734723475976807e-18, 0.3
    (tmp_path / "old.json").write_text(json.dumps(data))
    again = json.loads(lb.to_json(lb.read_table(tmp_path / "old.json")))
    assert again["rows"][0]["cells"]["gp-l/id/success_rate"]["ci_low"] == 0.0
