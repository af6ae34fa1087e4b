from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.leaderboard.helpers import make_run, pattern, run_cli

BOARD = """
name = "clib"
title = "CLI board"
[[columns]]
task = "gp-l"
split = "id"
[[columns]]
task = "gp-l"
split = "ood-rule"
[[rows]]
label = "M"
model = "m"
[[rows]]
label = "RL {flops:.0e}"
recipe = "rl"
expand = "flops"
"""


_cli = run_cli


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_DISABLE_ENTRYPOINTS", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "leaderboards").mkdir()
    (tmp_path / "leaderboards" / "clib.toml").write_text(BOARD)
    make_run(tmp_path / "runs", model="m", successes=pattern(20, 5), run_id="run-m-id")
    make_run(tmp_path / "runs", split="ood-rule", model="m", successes=pattern(20, 2), run_id="run-m-ood")
    for flops in (1e15, 2e15):
        make_run(tmp_path / "runs", model="c", recipe="rl", flops=flops, successes=pattern(20, 9))
        make_run(tmp_path / "runs", split="ood-rule", model="c", recipe="rl", flops=flops, successes=pattern(20, 7))
    make_run(tmp_path / "other", model="m", successes=pattern(20, 15))
    return tmp_path


def test_runs_commands(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "runs", "list", "--task", "gp-l", "--json")
    assert code == 0, err
    assert len(json.loads(out)) == 6
    code, out, _ = _cli(capsys, "runs", "list", "--output", "runs")
    assert code == 0 and "run-m-i" in out and "6 run(s)" in out  # the start of the id: enough for `runs show`
    code, out, err = _cli(capsys, "runs", "show", "run-m-o")
    assert code == 0 and json.loads(out)["split"] == "ood-rule"
    code, _, err = _cli(capsys, "runs", "show", "run-m")
    assert code == 2 and "matches 2 runs" in err
    (env / "runs" / "bad").mkdir()
    (env / "runs" / "bad" / "run.json").write_text("{")
    code, out, err = _cli(capsys, "runs", "reindex")
    assert code == 0 and "indexed 6 run(s)" in out and "skipped 1" in out and "bad" in err


def test_leaderboard_commands(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "leaderboard", "show", "clib")
    assert code == 0, err
    assert "CLI board" in out and "25.0 [11.2, 46.9]" in out
    for fmt, marker in (("md", "| M | 25.0"), ("csv", "group,row,column"), ("json", '"rows"'),
                        ("html", "<!DOCTYPE html>")):
        code, out, err = _cli(capsys, "leaderboard", "show", "clib", "--format", fmt)
        assert code == 0 and marker in out, (fmt, err)
    code, _, err = _cli(capsys, "leaderboard", "show", "clib", "-f", "html", "--out", "site/board.html")
    assert code == 0 and (env / "site" / "board.html").read_text().startswith("<!DOCTYPE html>")
    code, out, _ = _cli(capsys, "leaderboard", "publish", "clib")
    assert code == 0 and (env / "leaderboards" / "clib.md").read_text().startswith("# CLI board")
    code, out, err = _cli(capsys, "leaderboard", "compare", "runs", "other", "--board", "clib", "-f", "md")
    assert code == 0, err
    assert "25.0 → 75.0 (+50.0 paired, n=20, p=0.002 *)" in out
    code, out, _ = _cli(capsys, "leaderboard", "compare", "leaderboards/clib.md", "clib", "-f", "json")
    assert code == 0 and json.loads(out)["cells"][0]["delta"] == 0.0
    code, _, err = _cli(capsys, "leaderboard", "show", "missing-board")
    assert code == 2 and "known boards:" in err and "clib" in err


def test_plot_commands(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "plot", "compute", "--out", "plots/fig")
    assert code == 0, err
    assert (env / "plots" / "fig.png").is_file() and (env / "plots" / "fig.svg").is_file()
    code, _, err = _cli(capsys, "plot", "compute", "--board", "clib", "--out", "plots/b.svg")
    assert code == 0 and (env / "plots" / "b.svg").is_file(), err
    code, _, err = _cli(capsys, "plot", "column", "clib", "gp-l/id", "--out", "plots/bars.png")
    assert code == 0 and (env / "plots" / "bars.png").is_file(), err


def test_runs_list_fits_100_columns_and_tells_configurations_apart(tmp_path: Path) -> None:
    from rich.console import Console

    from harness import index
    from harness.cli_boards import runs_table

    root = tmp_path / "runs"
    long_model = "/very/long/path/to/some/models/directory/ckpt/sft_gp-l_tiny_s0_0123456789/step-000200"
    for i, temp in enumerate((0.0, 0.7)):
        make_run(root, model=long_model, seed=1234, successes=pattern(20, 5), recipe="sft", flops=3.06e13,
                 status="interrupted", run_id=f"virl-vl_ood-rule_step-000200_{i:010d}", split="ood-rule",
                 task="virl-vl", extra={"identity": {"task": "virl-vl", "seed": 1234, "gen": {"temperature": temp}}})
    runs = index.query(root)
    console = Console(width=100, record=True, color_system=None)
    console.print(runs_table(runs, root, width=100))
    lines = console.export_text().splitlines()
    assert max(map(len, lines)) <= 100
    rows = [ln for ln in lines if "virl-vl/ood-rule" in ln]
    assert len(rows) == 2, "one line per run, nothing wrapped"
    assert all("1234" in r and "step-000200" in r and "interrupted" in r and "sft 3.1e13" in r for r in rows)
    digests = {r.args_digest for r in runs}
    assert len(digests) == 2 and all(any(d in row for row in rows) for d in digests)


def test_publish_refuses_the_shipped_table_unless_forced(env: Path, capsys, monkeypatch) -> None:
    from harness.leaderboard import schema

    shipped = Path(schema.__file__).resolve().parents[2] / "leaderboards" / "sft-vs-rl.md"
    before = shipped.read_bytes()
    (env / "leaderboards" / "clib.toml").unlink()
    code, _, err = _cli(capsys, "leaderboard", "publish", "sft-vs-rl")  # as the README once showed it
    assert code == 2 and "shipped with harness" in err and "--force" in err and "rows" in err
    assert shipped.read_bytes() == before
    # --force on a copy standing in for the shipped folder: it says what it replaced
    fake = env / "ship"
    fake.mkdir()
    (fake / "sft-vs-rl.toml").write_bytes(shipped.with_suffix(".toml").read_bytes())
    (fake / "sft-vs-rl.md").write_bytes(before)
    monkeypatch.setattr(schema, "shipped_dirs", lambda: [fake])
    code, _, err = _cli(capsys, "leaderboard", "publish", str(fake / "sft-vs-rl.toml"))
    assert code == 2 and (fake / "sft-vs-rl.md").read_bytes() == before
    code, out, err = _cli(capsys, "leaderboard", "publish", str(fake / "sft-vs-rl.toml"), "--force")
    assert code == 0, err
    assert "replaced" in out and "it held" in out and "cells filled" in out
    assert (fake / "sft-vs-rl.md").read_bytes() != before


def test_columns_selection_and_narrow_terminals(env: Path, capsys) -> None:
    import io

    from rich.console import Console

    from harness import leaderboard as lb

    code, out, err = _cli(capsys, "leaderboard", "show", "clib", "-f", "md", "--columns", "gp-l/ood-rule")
    assert code == 0, err
    assert "gp-l ood-rule" in out and "| gp-l id |" not in out
    code, _, err = _cli(capsys, "leaderboard", "show", "clib", "--columns", "nope")
    assert code == 2 and "no column 'nope'" in err and "gp-l/id/success_rate" in err
    table = lb.aggregate(lb.load_board(lb.find_board("clib")), env / "runs")
    cols = [lb.Column("gp-l", f"s{i}", label=f"ID copy {i}", group=f"g{i // 3}") for i in range(9)]
    wide = lb.BoardTable(table.name, table.title, cols, [lb.Row("M", "", {c.key: (
        table.rows[0].cells["gp-l/id/success_rate"] if i == 4 else None) for i, c in enumerate(cols)})])
    for width in (40, 80, 120):
        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(lb.to_rich(wide, width=width))
        text = console.export_text()
        assert max(map(len, text.splitlines())) <= width
        assert text.count("[11.2, 46.9]") == 1 and "…" not in text  # the one filled cell, nothing cut
        assert "ID copy" in text and "g0" in text  # headers and their TOML groups


def test_plot_without_matplotlib_names_the_extra(env: Path, capsys, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = _cli(capsys, "plot", "compute", "--out", "plots/fig")
    assert code == 2 and "pip install 'harness[plots]'" in err and "Traceback" not in err
