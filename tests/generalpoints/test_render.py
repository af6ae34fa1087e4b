"""The gp-vl image follows the paper's geometry, and a directory of the paper's card images is used as given."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from harness.types import TaskSpec
from harness_tasks.generalpoints.cards import RANK_LETTERS, SUIT_LETTERS
from harness_tasks.generalpoints.render import TABLE, CardImageError, layout

HAND = ["SA", "HT", "DK", "C7"]


def test_paper_geometry() -> None:
    cw, ch, spots = layout(1200, 1200)
    assert (cw, ch) == (270, 378)
    assert spots == [(5, 411), (302, 411), (599, 411), (896, 411)]
    assert layout(800, 600) == (180, 252, [(5, 174), (203, 174), (401, 174), (599, 174)])


def test_drawn_cards_sit_where_the_paper_pastes_them(tasks: dict[str, TaskSpec]) -> None:
    env = tasks["gp-vl"].make_env("id")
    img = env.reset(seed=0)[0].images[0]
    assert img.size == (1200, 1200) and img.mode == "RGB"
    assert img.getpixel((2, 2)) == TABLE == (0x35, 0x65, 0x4D)
    for x, y in layout(1200, 1200)[2]:
        assert img.getpixel((x + 135, y + 189)) != TABLE  # the card's middle
        assert img.getpixel((x + 135, y - 3)) == TABLE  # just above it
    assert img.getpixel((1170, 600)) == TABLE  # the paper's layout leaves the right edge empty


def _card_dir(tmp: Path, skip: str | None = None) -> Path:
    d = tmp / "img"
    d.mkdir()
    for i, s in enumerate(SUIT_LETTERS.values()):
        for j, r in enumerate(RANK_LETTERS.values()):
            if s + r == skip:
                continue
            Image.new("RGB", (50, 70), (10 + 50 * i, 10 + 18 * j, 200)).save(d / f"{s}{r}.png")
    return d


def test_card_images_directory_renders_the_given_pictures(tasks: dict[str, TaskSpec], tmp_path: Path) -> None:
    d = _card_dir(tmp_path)
    env = tasks["gp-vl"].make_env("id", card_images=str(d))
    img = env.reset(seed=0, options={"cards": HAND})[0].images[0]
    for name, (x, y) in zip(HAND, layout(1200, 1200)[2], strict=True):
        expected = Image.open(d / f"{name}.png").resize((270, 378))
        assert img.crop((x, y, x + 270, y + 378)).tobytes() == expected.tobytes()
    # gp-l accepts the argument and draws nothing
    assert not tasks["gp-l"].make_env("id", card_images=str(d)).reset(seed=0)[0].images


def test_card_images_are_validated(tasks: dict[str, TaskSpec], tmp_path: Path) -> None:
    with pytest.raises(CardImageError, match=r"lacks 1 of the 52 card images: HQ\.png"):
        tasks["gp-vl"].make_env("id", card_images=str(_card_dir(tmp_path, skip="HQ")))
    d = tmp_path / "broken"
    d.mkdir()
    for s in SUIT_LETTERS.values():
        for r in RANK_LETTERS.values():
            (d / f"{s}{r}.png").write_bytes(b"not a png")
    with pytest.raises(CardImageError, match=r"broken/.*\.png is not a readable image"):
        tasks["gp-vl"].make_env("id", card_images=str(d))
    with pytest.raises(CardImageError, match="not a directory"):
        tasks["gp-vl"].make_env("id", card_images=str(tmp_path / "nowhere"))
