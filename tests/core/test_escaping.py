"""Untrusted strings are escaped where they are shown: terminal, markdown, CSV, HTML and JSON on stdout."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.escaping import csv_field, html_text, json_text, markup, md, printable

HOSTILE = "x[/]y[bold red]SPOOF[/]\x1b[31mred\x1b]0;title\x07\x9b2J\u202egnp.exe<script>alert(1)</script>|`*_"


def test_printable_neutralises_terminal_controls() -> None:
    s = printable(HOSTILE)
    assert "\x1b" not in s and "\x07" not in s and "\x9b" not in s and "\u202e" not in s
    assert "\\x1b" in s and "\\u202e" in s
    assert printable("a\ud800b") == "a\\ud800b"  # a lone surrogate cannot even be encoded for a terminal
    assert printable("line\nnext") == "line\nnext" and printable("line\nnext", newlines=False) == "line\\x0anext"


def test_markup_survives_rich() -> None:
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, force_terminal=False, width=400).print(markup(HOSTILE))
    assert "x[/]y[bold red]SPOOF[/]" in buf.getvalue()


def test_markdown_csv_html_json() -> None:
    m = md(HOSTILE)
    assert "<script>" not in m and "&lt;script&gt;" in m and "\\|" in m and "\x1b" not in m and "\\[" in m
    assert csv_field("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert csv_field("-1+2") == "'-1+2" and csv_field("plain") == "plain"
    h = html_text(HOSTILE)
    assert "<script>" not in h and "\x1b" not in h
    j = json_text(json.dumps({"k": "\x9b\u202e"}, ensure_ascii=False))
    assert json.loads(j) == {"k": "\x9b\u202e"} and "\x9b" not in j


@pytest.fixture
def hostile_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model alias named with markup, escape sequences and HTML, evaluated through the real CLI."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[models.{json.dumps(HOSTILE)}]\nbackend = "oracle"\n')
    monkeypatch.setenv("HARNESS_CONFIG", str(cfg))
    monkeypatch.setenv("HARNESS_DISABLE_ENTRYPOINTS", "1")
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "leaderboards").mkdir()
    (tmp_path / "leaderboards" / "h.toml").write_text(
        '[[columns]]\ntask = "toy-add"\nsplit = "id"\n[[rows]]\nlabel = "{model}"\nexpand = "model"\n')
    return tmp_path


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        main(["--plugin", "harness_toy.plugin", "--plugin", "harness_plugins.baselines", "--plugin",
              "harness_plugins.index_observer", *argv])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _clean(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text and "\u202e" not in text


def test_hostile_model_name_through_eval_runs_and_boards(capsys, hostile_root: Path) -> None:
    code, out, err = _cli(capsys, "eval", "-m", HOSTILE, "-t", "toy-add", "-n", "3", "-o", "runs")
    assert code == 0, err
    _clean(out + err)
    assert "x[/]y[bold" in out and "SPOOF[/]" in out
    for argv in (["runs", "list", "-o", "runs"], ["leaderboard", "show", "h", "--runs", "runs"]):
        code, out, err = _cli(capsys, *argv)
        assert code == 0, err
        _clean(out + err)
        assert "SPOOF" in out
    for fmt in ("md", "csv", "html", "json"):
        code, out, err = _cli(capsys, "leaderboard", "show", "h", "--runs", "runs", "-f", fmt)
        assert code == 0, err
        _clean(out)
        assert fmt in ("csv", "json") or "<script>alert" not in out  # in CSV and JSON it is data, not markup
    code, out, _ = _cli(capsys, "leaderboard", "show", "h", "--runs", "runs", "-f", "csv")
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["row"].startswith("x[/]y")


def test_run_id_with_markup_is_an_error_not_a_crash(capsys, hostile_root: Path) -> None:
    assert _cli(capsys, "eval", "-m", "oracle", "-t", "toy-add", "-n", "2", "-o", "runs")[0] == 0
    code, _, err = _cli(capsys, "runs", "show", "[/]", "-o", "runs")
    assert code == 2 and "no run '[/]'" in err
    code, _, err = _cli(capsys, "runs", "show", "\x1b[2J", "-o", "runs")
    assert code == 2
    _clean(err)


def test_failure_reasons_from_a_server_are_escaped(capsys, tmp_path: Path) -> None:
    from harness.cli import _print_result

    record = {"task": "t", "split": "s", "model": {"name": "m[/]"}, "metrics": {}, "episodes_ok": 0, "episodes": 1,
              "episodes_failed": 1, "failure_reasons": {"backend: HTTP 400: [/]\x1b[31mboom": 1}, "wall_time_s": 0.1}
    _print_result((), record, str(tmp_path))
    out = capsys.readouterr().out
    _clean(out)
    assert "[/]" in out and "boom" in out


def test_hostile_column_groups_and_labels_in_fitted_tables_html_and_compare() -> None:
    from rich.console import Console

    from harness import leaderboard as lb
    from harness.leaderboard.aggregate import Cell

    cols = [lb.Column("t", f"s{i}", label=HOSTILE, group=HOSTILE if i < 2 else "") for i in range(4)]
    cell = Cell(0.5, 0.25, 0.75, 10, run_id=HOSTILE)
    table = lb.BoardTable("b", HOSTILE, cols, [lb.Row(HOSTILE, HOSTILE, {c.key: cell for c in cols})])
    for width in (40, 400):
        buf = io.StringIO()
        Console(file=buf, force_terminal=False, width=width).print(lb.to_rich(table, width=width))
        _clean(buf.getvalue())
        assert "SPOOF" in buf.getvalue()
    page = lb.to_html(table)
    _clean(page)
    assert "<script>alert" not in page and 'class="g" colspan="2"' in page
    cmp = lb.compare(table, table, a_name=HOSTILE, b_name="b")
    buf = io.StringIO()
    Console(file=buf, force_terminal=False, width=120).print(lb.comparison_to_rich(cmp))
    _clean(buf.getvalue())
    assert "<script>alert" not in lb.comparison_to_markdown(cmp)
