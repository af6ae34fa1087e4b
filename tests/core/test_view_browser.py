"""The ``harness view`` page in a real headless Chromium: the filters hide exactly the episodes they should
(the DOM after the page's script ran is read back) and the images are drawn. Skipped without chromium."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest

from harness.runner import EvalConfig, Runner
from harness.view import build, load_run, task_resolver
from tests.core.test_transcript import TASKS, Recording
from tests.core.test_view import _Registry
from tests.leaderboard.test_html_browser import CHROMIUM, _chromium

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH")


class Episodes(HTMLParser):
    """Every episode item of the page (its data attributes, and whether it is hidden), and the body's."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict[str, str | None]] = []
        self.body: dict[str, str | None] = {}
        self.count = ""
        self._in_count = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "li" and a.get("class") == "episode":
            self.items.append(a)
        elif tag == "body":
            self.body = a
        self._in_count = a.get("id") == "count"

    def handle_data(self, data: str) -> None:
        if self._in_count:
            self.count += data


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("view")
    runs = []
    for split, save in (("id", True), ("ood-visual", False)):  # saved images, and images drawn from the seed
        cfg = EvalConfig(task="gp-vl", split=split, model="m", backend="b", episodes=8, batch_size=4,
                         save_images=save)
        Runner(TASKS["gp-vl"], Recording(0.85), cfg, root / split).run()
        runs.append(load_run(root / split))
    path = root / "view.html"
    path.write_text(build(runs, task_resolver(_Registry()), limit=100))
    return path


def _dom(tmp_path: Path, page: Path, fragment: str = "") -> Episodes:
    res = _chromium(tmp_path, "--dump-dom", page.resolve().as_uri() + fragment)
    parsed = Episodes()
    parsed.feed(res.stdout)
    assert parsed.items, res.stderr[-2000:]
    return parsed


@pytest.fixture(scope="module")
def every(page: Path, tmp_path_factory: pytest.TempPathFactory) -> Episodes:
    return _dom(tmp_path_factory.mktemp("chromium"), page)


def _shown(dom: Episodes) -> list[str | None]:
    return [e["id"] for e in dom.items if "hidden" not in e]


def test_filters_hide_exactly_what_they_should(tmp_path: Path, page: Path, every: Episodes) -> None:
    assert len(_shown(every)) == 16 and every.count == "showing 16 of 16 episodes"
    outcomes = {e["data-outcome"] for e in every.items}
    assert outcomes == {"solved", "unsolved"}  # the backend answers wrong often enough for both
    for fragment, keep in (
        ("#success=solved", lambda e: e["data-outcome"] == "solved"),
        ("#success=unsolved&split=" + quote("gp-vl/ood-visual", safe=""),
         lambda e: e["data-outcome"] == "unsolved" and e["data-split"] == "gp-vl/ood-visual"),
        ("#rmin=0&rmax=4.5", lambda e: 0 <= float(e["data-reward"]) <= 4.5),
        ("#split=nonsense", lambda e: True),  # an unknown value leaves the filter at "all"
    ):
        dom = _dom(tmp_path, page, fragment)
        want = [e["id"] for e in every.items if keep(e)]
        assert _shown(dom) == want, fragment
        assert dom.count == f"showing {len(want)} of 16 episodes"


def test_images_are_drawn(tmp_path: Path, page: Path, every: Episodes) -> None:
    assert every.body.get("data-images") == "16/16"  # every image decoded (none replaced by the fallback)
    shot = tmp_path / "shot.png"
    first = every.items[0]["id"]
    res = _chromium(tmp_path, f"--screenshot={shot}", page.resolve().as_uri() + f"#open={first}")
    assert shot.is_file(), res.stderr[-2000:]
    import numpy as np
    from PIL import Image

    with Image.open(shot) as im:
        px = np.asarray(im.convert("RGB")).astype(int)
    green = (np.abs(px - np.array([0x35, 0x65, 0x4D])).sum(axis=2) < 24).mean()
    assert green > 0.05  # the card table's green fills part of the screen: the image is drawn
