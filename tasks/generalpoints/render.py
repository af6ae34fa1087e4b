"""Card images with Pillow: four cards side by side on a green table.

Text is drawn with the bundled DejaVu Sans Bold (suit glyphs included), so the pixels do not depend on
the fonts a machine happens to have. Each card sprite is drawn once per (rank, suit, size) and already
composited on the table colour, and the empty table is drawn once per image size; a hand is then one
copy of the table plus four plain pastes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from tasks.generalpoints.cards import RED_SUITS, SUIT_GLYPHS, Card, card_name

FONT_PATH = Path(__file__).resolve().parent / "fonts" / "DejaVuSans-Bold.ttf"
DEFAULT_SIZE = (1200, 1200)
MIN_SIDE, MAX_SIDE = 64, 4096

TABLE = (21, 101, 52)
TABLE_EDGE = (14, 74, 38)
CARD_FACE = (250, 250, 247)
CARD_BORDER = (60, 60, 60)
INK = {"black": (20, 20, 20), "red": (196, 22, 28)}
ASPECT = 1.4  # card height / width, close to a real poker card


def parse_size(size: object) -> tuple[int, int]:
    """An image size from a task argument: ``1200``, ``"1200"``, ``"800x600"`` or ``(800, 600)``."""
    if isinstance(size, bool):
        raise ValueError(f"bad image_size {size!r}")
    if isinstance(size, int):
        w = h = size
    elif isinstance(size, str):
        parts = size.lower().replace(",", "x").split("x")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"bad image_size {size!r}: use N or WxH, e.g. 1200 or 800x600") from None
        if len(nums) == 1:
            w = h = nums[0]
        elif len(nums) == 2:
            w, h = nums
        else:
            raise ValueError(f"bad image_size {size!r}: use N or WxH")
    elif isinstance(size, Sequence) and len(size) == 2:
        w, h = int(size[0]), int(size[1])
    else:
        raise ValueError(f"bad image_size {size!r}: use N or WxH")
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise ValueError(f"image_size {w}x{h} out of range: each side must be {MIN_SIDE}..{MAX_SIDE}")
    return w, h


@lru_cache(maxsize=64)
def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), max(px, 6))


def _layout(w: int, h: int) -> tuple[int, int, int, list[int]]:
    """Card width, height, top edge, and left edges of the four cards."""
    cw = int(w * 0.2)
    ch = int(cw * ASPECT)
    if ch > h * 0.85:
        ch = int(h * 0.85)
        cw = int(ch / ASPECT)
    gap = (w - 4 * cw) / 5
    xs = [round(gap + i * (cw + gap)) for i in range(4)]
    return cw, ch, (h - ch) // 2, xs


@lru_cache(maxsize=256)
def _table(w: int, h: int) -> Image.Image:
    img = Image.new("RGB", (w, h), TABLE)
    border = max(2, min(w, h) // 60)
    ImageDraw.Draw(img).rectangle((0, 0, w - 1, h - 1), outline=TABLE_EDGE, width=border)
    return img


@lru_cache(maxsize=512)
def card_sprite(rank: int, suit: str, cw: int, ch: int) -> Image.Image:
    """One card face, drawn on the table colour so it can be pasted without a mask."""
    img = Image.new("RGB", (cw, ch), TABLE)
    d = ImageDraw.Draw(img)
    radius = max(2, cw // 12)
    d.rounded_rectangle((0, 0, cw - 1, ch - 1), radius=radius, fill=CARD_FACE, outline=CARD_BORDER,
                        width=max(1, cw // 80))
    ink = INK["red" if suit in RED_SUITS else "black"]
    name, glyph = card_name(rank), SUIT_GLYPHS[suit]
    # Corner index (rank over suit), top-left and, turned over, bottom-right, like a real card.
    corner = Image.new("RGB", (int(cw * 0.3), int(ch * 0.3)), CARD_FACE)
    cd = ImageDraw.Draw(corner)
    idx_px = int(cw * (0.17 if len(name) == 1 else 0.14))
    cx = corner.width // 2
    cd.text((cx, int(ch * 0.08)), name, font=_font(idx_px), fill=ink, anchor="mm")
    cd.text((cx, int(ch * 0.2)), glyph, font=_font(int(cw * 0.15)), fill=ink, anchor="mm")
    m = max(2, cw // 30)
    img.paste(corner, (m, m))
    img.paste(corner.rotate(180), (cw - corner.width - m, ch - corner.height - m))
    # Big centre: the rank and a large suit glyph, so both read at small image sizes too.
    d.text((cw // 2, int(ch * 0.40)), name, font=_font(int(cw * (0.36 if len(name) == 1 else 0.3))),
           fill=ink, anchor="mm")
    d.text((cw // 2, int(ch * 0.66)), glyph, font=_font(int(cw * 0.32)), fill=ink, anchor="mm")
    return img


def render_hand(cards: Sequence[Card], size: tuple[int, int] = DEFAULT_SIZE) -> Image.Image:
    """The hand's image: up to four cards left to right in hand order."""
    w, h = size
    cw, ch, top, xs = _layout(w, h)
    img = _table(w, h).copy()
    for (rank, suit), x in zip(cards, xs, strict=False):
        img.paste(card_sprite(rank, suit, cw, ch), (x, top))
    return img
