"""The HTML board in a real headless Chromium: it renders (screenshot), and its script sorts the table
(the DOM after the script ran is read back). Skipped where no chromium is installed."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness import leaderboard as lb
from tests.leaderboard.helpers import make_run, pattern

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome")
                 if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1100,700"]


class Cells(HTMLParser):
    """Collects the text of every th/td of the table with id 'board', row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.attrs: list[list[dict[str, str | None]]] = []
        self.in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
            self.attrs.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self.attrs[-1].append(dict(attrs))
            self.in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self.in_cell = False

    def handle_data(self, data: str) -> None:
        if self.in_cell:
            cell = self.rows[-1][-1]
            self.rows[-1][-1] = (cell + " " + data.strip()).strip() if data.strip() else cell


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=90, check=False)


def test_html_board_in_headless_chromium(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for model, k in (("a", 5), ("b", 15), ("c", 10)):
        make_run(root, model=model, successes=pattern(20, k))
    make_run(root, split="ood-rule", model="b", successes=pattern(20, 3))
    board = lb.parse_board({"name": "web", "title": "Web <board>",
                            "columns": [{"task": "gp-l", "split": "id", "label": "ID"},
                                        {"task": "gp-l", "split": "ood-rule", "label": "OOD"}],
                            "rows": [{"label": m.upper(), "model": m} for m in "abc"]})
    table = lb.aggregate(board, root)
    page = tmp_path / "board.html"
    page.write_text(lb.to_html(table))
    url = page.resolve().as_uri()

    shot = tmp_path / "shot.png"
    res = _chromium(tmp_path, f"--screenshot={shot}", url)
    assert shot.is_file() and shot.read_bytes()[:4] == b"\x89PNG", res.stderr[-2000:]
    assert shot.stat().st_size > 5000  # something was drawn

    def dom(fragment: str) -> Cells:
        res = _chromium(tmp_path, "--dump-dom", url + fragment)
        assert "<table" in res.stdout, res.stderr[-2000:]
        parser = Cells()
        parser.feed(res.stdout)
        return parser

    loaded = dom("")
    header, *body = [r for r in loaded.rows if r]
    assert header == ["Model", "ID", "OOD"]
    assert [r[0] for r in body] == ["A", "B", "C"]
    expected = {r.label: [lb.fmt_cell(r.cells[c.key], c) for c in table.columns] for r in table.rows}
    for row in body:  # every cell as the browser shows it: value, then its interval
        assert row[1:] == expected[row[0]]
    assert body[1][1] == "75.0 [53.1, 88.8]" and body[0][2] == "–"

    desc = dom("#sort=1:desc")  # the same function a header click calls
    header, *body = [r for r in desc.rows if r]
    assert [r[0] for r in body] == ["B", "C", "A"]
    assert desc.attrs[0][1].get("aria-sort") == "descending"
    asc = dom("#sort=2:asc")  # empty cells sort last either way
    assert [r[0] for r in asc.rows[1:] if r] == ["B", "A", "C"]
    assert asc.attrs[0][2].get("aria-sort") == "ascending" and "aria-sort" not in asc.attrs[0][1]


def test_wide_board_with_column_groups_scrolls_and_draws_value_marks(tmp_path: Path) -> None:
    import re

    root = tmp_path / "runs"
    splits = [f"s{i}" for i in range(12)]
    for i, split in enumerate(splits):
        make_run(root, split=split, model="a", successes=pattern(20, 0 if i == 0 else 20 if i == 1 else i))
    board = lb.parse_board({"name": "wide", "title": "Wide",
                            "columns": [{"task": "gp-l", "split": s, "label": f"Split {s} with a long title",
                                         "group": "first half" if i < 6 else "second half"}
                                        for i, s in enumerate(splits)],
                            "rows": [{"label": "A", "model": "a"}]})
    page = tmp_path / "wide.html"
    html = lb.to_html(lb.aggregate(board, root))
    page.write_text(html)
    res = _chromium(tmp_path, "--dump-dom", page.resolve().as_uri())
    dom = res.stdout
    assert '<div class="scroll wide">' in dom, "the board overflows a 1100-pixel window and says so"
    groups = re.findall(r'<th class="g" colspan="(\d+)" scope="colgroup">([^<]*)</th>', dom)
    assert groups == [("6", "first half"), ("6", "second half")]
    # 0% [0, 16.1] and 100% [83.9, 100]: the mark sits at the value, whiskers span the interval
    cells = re.findall(r'<i class="f" style="width:([\d.]+)%"></i><i class="w" style="left:([\d.]+)%;'
                       r'width:([\d.]+)%"></i><i class="m" style="left:([\d.]+)%"></i>', dom)
    assert cells[0] == ("0.00", "0.00", "16.11", "0.00")
    assert cells[1][0] == "100.00" and cells[1][3] == "100.00" and float(cells[1][1]) == pytest.approx(83.89, 0.01)
    shot = tmp_path / "wide.png"
    _chromium(tmp_path, f"--screenshot={shot}", page.resolve().as_uri())
    assert shot.is_file()
