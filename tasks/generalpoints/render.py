"""The gp-vl observation: four cards side by side on a green table, in the paper's layout.

Geometry, as the paper's env computes it for a ``W x H`` canvas (1200 x 1200 by default): table colour
``#35654d``; card width ``int(W / 4 * 0.9)``, height ``int(width * 7 / 5)``; card ``i`` pasted at
``x = 5 + int(i * width * 1.1)``, ``y = int((H - height) / 2)``.

The card faces are harness's own drawings (bundled DejaVu Sans Bold, so pixels do not depend on the machine).
``card_images=DIR`` takes a directory of card pictures named as the paper names them - suit letter
(``S``, ``H``, ``D``, ``C``) then rank letter (``A``, ``2``..``9``, ``T``, ``J``, ``Q``, ``K``), e.g. ``HT.png`` - and
pastes those instead, resized as the paper resizes them, so a user holding the paper's card images renders its
exact observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from harness_tasks.generalpoints.cards import RANK_LETTERS, RED_SUITS, SUIT_GLYPHS, SUIT_LETTERS, Card, card_name

FONT_PATH = Path(__file__).resolve().parent / "fonts" / "DejaVuSans-Bold.ttf"
DEFAULT_SIZE = (1200, 1200)
MIN_SIDE, MAX_SIDE = 64, 4096
TABLE = (0x35, 0x65, 0x4D)  # '#35654d'
CARD_FACE = (250, 250, 247)
CARD_BORDER = (60, 60, 60)
INK = {"black": (20, 20, 20), "red": (196, 22, 28)}
MAX_CARD_IMAGE_BYTES = 20_000_000
MAX_CARD_IMAGE_PIXELS = 25_000_000


class CardImageError(ValueError):
    """A card image directory that cannot be used; the message names what is missing or broken."""


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
    elif isinstance(size, Sequence) and len(size) == 2 and all(isinstance(x, int) for x in size):
        w, h = int(size[0]), int(size[1])
    else:
        raise ValueError(f"bad image_size {size!r}: use N or WxH")
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise ValueError(f"image_size {w}x{h} out of range: each side must be {MIN_SIDE}..{MAX_SIDE}")
    return w, h


def layout(w: int, h: int, n: int = 4) -> tuple[int, int, list[tuple[int, int]]]:
    """The paper's card width, height and paste positions for ``n`` cards on a ``w x h`` canvas."""
    cw = int(w / n * 0.9)
    ch = int(cw * 7 / 5)
    return cw, ch, [(5 + int(i * cw * 1.1), int((h - ch) / 2)) for i in range(n)]


def file_name(card: Card) -> str:
    """The paper's card image name, e.g. ``SA``, ``HT``, ``CK``."""
    rank, suit = card
    return SUIT_LETTERS[suit] + RANK_LETTERS[rank]


@lru_cache(maxsize=64)
def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), max(px, 6))


@lru_cache(maxsize=512)
def card_sprite(rank: int, suit: str, cw: int, ch: int) -> Image.Image:
    """Harness's own card face, drawn at its final size on the table colour (pasted without a mask)."""
    img = Image.new("RGB", (cw, ch), TABLE)
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, cw - 1, ch - 1), radius=max(2, cw // 12), fill=CARD_FACE, outline=CARD_BORDER,
                        width=max(1, cw // 80))
    ink = INK["red" if suit in RED_SUITS else "black"]
    name, glyph = card_name(rank), SUIT_GLYPHS[suit]
    corner = Image.new("RGB", (max(1, int(cw * 0.3)), max(1, int(ch * 0.3))), CARD_FACE)
    cd = ImageDraw.Draw(corner)
    cx = corner.width // 2
    cd.text((cx, int(ch * 0.08)), name, font=_font(int(cw * (0.17 if len(name) == 1 else 0.14))), fill=ink,
            anchor="mm")
    cd.text((cx, int(ch * 0.2)), glyph, font=_font(int(cw * 0.15)), fill=ink, anchor="mm")
    m = max(2, cw // 30)
    img.paste(corner, (m, m))
    img.paste(corner.rotate(180), (cw - corner.width - m, ch - corner.height - m))
    d.text((cw // 2, int(ch * 0.40)), name, font=_font(int(cw * (0.36 if len(name) == 1 else 0.3))), fill=ink,
           anchor="mm")
    d.text((cw // 2, int(ch * 0.66)), glyph, font=_font(int(cw * 0.32)), fill=ink, anchor="mm")
    return img


@lru_cache(maxsize=64)
def _table(w: int, h: int) -> Image.Image:
    return Image.new("RGB", (w, h), TABLE)


class CardImages:
    """A validated directory of the paper's card images; each file is decoded once and each resize cached."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory).expanduser()
        if not self.dir.is_dir():
            raise CardImageError(f"card_images: {self.dir} is not a directory")
        self.paths: dict[str, Path] = {}
        missing = []
        for s in SUIT_LETTERS.values():
            for r in RANK_LETTERS.values():
                p = self.dir / f"{s}{r}.png"
                if p.is_file():
                    self.paths[s + r] = p
                else:
                    missing.append(p.name)
        if missing:
            raise CardImageError(f"card_images: {self.dir} lacks {len(missing)} of the 52 card images: "
                                 f"{', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''} (files are named "
                                 "suit letter S/H/D/C + rank letter A,2-9,T,J,Q,K, e.g. HT.png)")
        self._decoded: dict[str, Image.Image] = {}
        for name in self.paths:  # fail now, naming the file, rather than in the middle of a run
            self._open(name)
        self._sized: dict[tuple[str, int, int], Image.Image] = {}

    def _open(self, name: str) -> Image.Image:
        img = self._decoded.get(name)
        if img is None:
            p = self.paths[name]
            try:
                if p.stat().st_size > MAX_CARD_IMAGE_BYTES:
                    raise CardImageError(f"card_images: {p} is larger than {MAX_CARD_IMAGE_BYTES} bytes")
                with Image.open(p) as im:
                    if im.width * im.height > MAX_CARD_IMAGE_PIXELS:
                        raise CardImageError(f"card_images: {p} is {im.width}x{im.height}, too large a picture")
                    im.load()
                    img = im.copy()
            except CardImageError:
                raise
            except Exception as exc:
                raise CardImageError(f"card_images: {p} is not a readable image: {exc}") from None
            self._decoded[name] = img
        return img

    def get(self, name: str, cw: int, ch: int) -> Image.Image:
        key = (name, cw, ch)
        img = self._sized.get(key)
        if img is None:
            img = self._sized[key] = self._open(name).resize((cw, ch))  # the paper's resize, default filter
        return img


@lru_cache(maxsize=8)
def card_images(directory: str) -> CardImages:
    return CardImages(directory)


def render_hand(cards: Sequence[Card], size: tuple[int, int] = DEFAULT_SIZE, images: CardImages | None = None
                ) -> Image.Image:
    """The hand's image, cards left to right in dealt order."""
    w, h = size
    cw, ch, spots = layout(w, h, len(cards) or 4)
    img = _table(w, h).copy()
    for card, xy in zip(cards, spots, strict=False):
        sprite = images.get(file_name(card), cw, ch) if images is not None else card_sprite(card[0], card[1], cw, ch)
        img.paste(sprite, xy)
    return img
