"""Street views drawn with Pillow for generated cities: a 2x2 grid of front, right, back and left views, each
``image_size`` pixels square with the paper's 5-pixel black gaps (the paper's own panoramas are cut by
:mod:`harness_tasks.virl.panorama`).

Each view is either a *street* (a road receding to the horizon between two facades: there is a street that
way) or a *wall* (a facade seen head-on). Intersections add crosswalks. Landmarks are storefronts with a
named sign, drawn in the view on their side: anything on the agent's right appears in the right view, placed
left of centre when it is ahead-right and right of centre when behind-right (as a camera pointing right
would see it); exactly ahead / behind appear centred in the front / back view.

Speed: backgrounds, signs and labels are drawn once per (style, size, ...) and cached; a frame is 4 pastes
plus one per sign.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from harness_tasks.virl.city import KIND_NAMES, STYLES, Style
from harness_tasks.virl.geometry import signed_diff, wrap

FONT_DIR = Path(__file__).parent / "fonts"
LABEL_FONT = "DejaVuSans-Bold.ttf"
VIEW_LABELS = ("front", "right", "back", "left")  # grid order: top-left, top-right, bottom-left, bottom-right
VARIANTS = 3


@functools.lru_cache(maxsize=128)
def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / name), size)


GAP = 5  # black line between views, as in the paper's grid


def layout(view_size: int) -> tuple[int, int]:
    """(view side, gap): the grid is ``2 * view_size + 5`` pixels square, like the paper's."""
    if view_size < 32:
        raise ValueError(f"image_size must be at least 32, got {view_size}")
    return view_size, GAP


def _shade(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(v * f))) for v in c)  # type: ignore[return-value]


def _draw_receding_wall(d: ImageDraw.ImageDraw, v: int, style: Style, colour: tuple[int, int, int],
                        mirror: bool, horizon: float) -> None:
    far = 0.40 * v
    top0 = max(0.0, 0.30 * v - style.storeys * 0.05 * v)
    top1, bot0, bot1 = horizon - 0.07 * v, 0.90 * v, horizon + 0.03 * v

    def pt(x: float, f: float) -> tuple[float, float]:
        t = x / far
        y = (top0 + (top1 - top0) * t) * (1 - f) + (bot0 + (bot1 - bot0) * t) * f
        return (v - x if mirror else x, y)

    d.polygon([pt(0, 0), pt(far, 0), pt(far, 1), pt(0, 1)], fill=colour)
    # Window columns get narrower with distance (a cheap perspective).
    xs, x, w = [], 0.02 * v, 0.09 * v
    while x + w < far:
        xs.append((x, x + w * 0.6))
        x += w
        w *= 0.78
    rows = style.storeys
    win = style.window
    for xa, xb in xs:
        for r in range(rows):
            f0 = 0.08 + r * (0.62 / rows)
            f1 = f0 + 0.55 * (0.62 / rows)
            d.polygon([pt(xa, f0), pt(xb, f0), pt(xb, f1), pt(xa, f1)], fill=win)
    # Ground floor shop band.
    d.polygon([pt(0, 0.78), pt(far, 0.78), pt(far, 1), pt(0, 1)], fill=_shade(colour, 0.7))


@functools.lru_cache(maxsize=512)
def background(style_name: str, v: int, kind: str, variant: int, crosswalk: bool) -> Image.Image:
    style = STYLES[style_name]
    img = Image.new("RGB", (v, v), style.sky)
    d = ImageDraw.Draw(img)
    fac = style.facades
    if kind == "street":
        horizon = 0.46 * v
        d.rectangle([0, horizon, v, v], fill=style.sidewalk)
        d.polygon([(0.16 * v, v), (0.84 * v, v), (0.515 * v, horizon), (0.485 * v, horizon)], fill=style.road)
        # Dashed centre line.
        for i in range(6):
            t0, t1 = 0.1 + i * 0.15, 0.1 + i * 0.15 + 0.07
            y0, y1 = horizon + (v - horizon) * t0 ** 1.6, horizon + (v - horizon) * t1 ** 1.6
            w0, w1 = 0.002 * v + 0.008 * v * t0, 0.002 * v + 0.008 * v * t1
            d.polygon([(v / 2 - w0, y0), (v / 2 + w0, y0), (v / 2 + w1, y1), (v / 2 - w1, y1)],
                      fill=(235, 220, 120))
        if crosswalk:
            y0, y1 = 0.80 * v, 0.90 * v
            for k in range(12):
                xa = 0.22 * v + k * 0.05 * v
                d.rectangle([xa, y0, xa + 0.025 * v, y1], fill=(236, 236, 236))
        _draw_receding_wall(d, v, style, fac[variant % len(fac)], False, horizon)
        _draw_receding_wall(d, v, style, fac[(variant + 2) % len(fac)], True, horizon)
    else:
        top = max(0.02 * v, 0.30 * v - style.storeys * 0.05 * v)
        half = v // 2
        for b, colour in enumerate((fac[variant % len(fac)], fac[(variant + 1) % len(fac)])):
            x0 = b * half
            d.rectangle([x0, top + b * 0.04 * v, x0 + half, 0.86 * v], fill=colour)
            rows = style.storeys
            for r in range(rows):
                y0 = top + 0.06 * v + r * (0.46 * v / rows)
                for c in range(3):
                    xa = x0 + 0.06 * v + c * 0.14 * v
                    d.rectangle([xa, y0, xa + 0.08 * v, y0 + 0.3 * v / rows], fill=style.window)
            d.rectangle([x0 + 0.19 * v, 0.70 * v, x0 + 0.29 * v, 0.86 * v], fill=_shade(colour, 0.55))
        d.rectangle([0, 0.86 * v, v, 0.93 * v], fill=style.sidewalk)
        d.rectangle([0, 0.93 * v, v, v], fill=style.road)
    return img


@functools.lru_cache(maxsize=64)
def label(text: str, v: int) -> Image.Image:
    size = max(9, v // 20)
    f = font(LABEL_FONT, size)
    w = int(f.getlength(text)) + size
    img = Image.new("RGB", (w, int(size * 1.5)), (20, 20, 20))
    ImageDraw.Draw(img).text((size // 2, size // 5), text, font=f, fill=(255, 255, 255))
    return img


def _split_lines(name: str) -> list[str]:
    words = name.split()
    if len(words) < 2 or len(name) <= 11:
        return [name]
    best = min(range(1, len(words)), key=lambda i: abs(len(" ".join(words[:i])) - len(" ".join(words[i:]))))
    return [" ".join(words[:best]), " ".join(words[best:])]


SIGN_WIDTH = 0.46  # of a view; narrower when more than two signs share a view


@functools.lru_cache(maxsize=4096)
def sign(style_name: str, v: int, name: str, kind: str, width: float = SIGN_WIDTH) -> Image.Image:
    """A storefront: a name board over a shop window. Same inputs, same pixels."""
    style = STYLES[style_name]
    sw, board_h, shop_h = int(width * v), int(0.15 * v), int(0.18 * v)
    colour = style.signs[KIND_NAMES.index(kind) % len(style.signs)] if kind in KIND_NAMES else style.signs[0]
    ink = (20, 20, 20) if sum(colour) > 420 else (255, 255, 255)
    img = Image.new("RGB", (sw, board_h + shop_h), _shade(colour, 0.6))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, sw - 1, board_h - 1], fill=colour, outline=_shade(colour, 1.6), width=max(1, v // 120))
    lines = _split_lines(name)
    size = int(board_h * (0.62 if len(lines) == 1 else 0.40))
    while size > 7:
        f = font(style.font, size)
        if max(f.getlength(s) for s in lines) <= sw * 0.92:
            break
        size -= 1
    f = font(style.font, size)
    line_h = board_h / len(lines)
    for i, s in enumerate(lines):
        d.text((sw / 2, line_h * (i + 0.5)), s, font=f, fill=ink, anchor="mm")
    # Shop window and door under the sign.
    pad = max(2, v // 60)
    d.rectangle([pad, board_h + pad, sw * 0.62, board_h + shop_h - pad], fill=(70, 96, 118))
    d.rectangle([sw * 0.70, board_h + pad, sw - pad, board_h + shop_h], fill=(60, 44, 36))
    return img


def view_kinds(step: Any) -> list[str]:
    out = []
    for i in range(4):
        centre = step.heading + 90 * i
        street = any(abs(signed_diff(centre, s)) <= 45.0 for s in step.stop.streets)
        out.append("street" if street else "wall")
    return out


def sign_view(relative_bearing: float) -> tuple[int, float]:
    """(view index, offset in degrees from that view's centre) of a landmark at this relative bearing."""
    r = wrap(relative_bearing)
    view = 0 if r == 0.0 else 2 if r == 180.0 else 1 if r < 180.0 else 3
    return view, signed_diff(90.0 * view, r)


def sign_slots(relative_bearings: list[float]) -> list[tuple[int, float, float]]:
    """(view, horizontal centre in [0, 1], width) for each landmark, so that signs sharing a view never
    overlap: one sign sits left or right of centre by its offset, two sit at a quarter and three quarters
    in bearing order, more share the width evenly."""
    by_view: dict[int, list[tuple[float, int]]] = {}
    for i, b in enumerate(relative_bearings):
        view, off = sign_view(b)
        by_view.setdefault(view, []).append((off, i))
    out: list[tuple[int, float, float]] = [(0, 0.5, SIGN_WIDTH)] * len(relative_bearings)
    for view, items in by_view.items():
        items.sort()
        n = len(items)
        for k, (off, i) in enumerate(items):
            if n == 1:
                out[i] = (view, 0.5 + max(-1.0, min(1.0, off / 45.0)) * 0.25, SIGN_WIDTH)
            elif n == 2:
                out[i] = (view, 0.25 + 0.5 * k, SIGN_WIDTH)
            else:
                out[i] = (view, (k + 0.5) / n, round(0.92 / n, 3))
    return out


class StreetViewRenderer:
    """Draws the 2x2 grid for one rail step. One per env; the caches behind it are shared."""

    def __init__(self, style_name: str, view_size: int = 512) -> None:
        if style_name not in STYLES:
            raise KeyError(f"unknown city style {style_name!r}")
        self.style = style_name
        self.v, self.gap = layout(int(view_size))
        self.size = 2 * self.v + self.gap

    def origin(self, view: int) -> tuple[int, int]:
        return (view % 2) * (self.v + self.gap), (view // 2) * (self.v + self.gap)

    def sign_box(self, view: int, pos: float, width: float = SIGN_WIDTH) -> tuple[int, int, int, int]:
        """Pixel box (left, top, right, bottom) of a sign drawn at ``pos`` in ``view``."""
        v = self.v
        sw, sh = int(width * v), int(0.15 * v) + int(0.18 * v)
        ox, oy = self.origin(view)
        left = ox + int(pos * v - sw / 2)
        top = oy + int(0.50 * v)
        return left, top, left + sw, top + sh

    def render(self, step: Any, *, with_signs: bool = True) -> Image.Image:
        """``step`` has ``heading``, ``stop`` (a :class:`harness_tasks.virl.routes.Scene`), ``is_intersection`` and
        ``view_key``."""
        v = self.v
        canvas = Image.new("RGB", (self.size, self.size), (0, 0, 0))
        cross = step.is_intersection
        for i, kind in enumerate(view_kinds(step)):
            variant = (step.view_key + i) % VARIANTS
            canvas.paste(background(self.style, v, kind, variant, cross and kind == "street"), self.origin(i))
        if with_signs:
            seen = step.stop.sightings
            for s, (view, pos, width) in zip(seen, sign_slots([s.bearing - step.heading for s in seen]),
                                             strict=True):
                left, top, _, _ = self.sign_box(view, pos, width)
                canvas.paste(sign(self.style, v, s.name, s.kind, width), (left, top))
        for i, text in enumerate(VIEW_LABELS):
            ox, oy = self.origin(i)
            canvas.paste(label(text, v), (ox + 2, oy + 2))
        return canvas
