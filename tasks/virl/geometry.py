"""Compass headings and relative turns.

Headings are degrees clockwise from north. The agent only ever faces the 8 compass directions
(north=0, northeast=45, ...), but routes loaded from the paper's files carry raw degrees (``177``), so
the functions below accept any float and snap where a compass name is needed.
"""

from __future__ import annotations

import math

COMPASS: tuple[str, ...] = ("north", "northeast", "east", "southeast", "south", "southwest", "west",
                            "northwest")
RELATIVE: tuple[str, ...] = ("left", "right", "slightly left", "slightly right")


def wrap(deg: float) -> float:
    """Into [0, 360)."""
    return deg % 360.0


def signed_diff(start: float, end: float) -> float:
    """The turn from ``start`` to ``end`` in (-180, 180]: positive is clockwise (to the right)."""
    d = (end - start) % 360.0
    return d - 360.0 if d > 180.0 else d


def compass_index(deg: float) -> int:
    """Nearest of the 8 compass directions (ties round clockwise, e.g. 22.5 -> northeast)."""
    return math.floor(wrap(deg) / 45.0 + 0.5) % 8


def compass_name(deg: float) -> str:
    return COMPASS[compass_index(deg)]


def compass_degrees(name: str) -> float:
    return 45.0 * COMPASS.index(name)


def relative_turn(start: float, end: float) -> str:
    """The relative action that turns from heading ``start`` to heading ``end``.

    More than 45 degrees either way is ``left``/``right``; 45 or less is ``slightly left/right``.
    Two cases have no natural answer, so they follow the paper's released code:
    * exactly 180 degrees (a U-turn) is ``right``: the difference is taken in (-180, 180], so it is +180.
      Our generator never asks for a U-turn (the opening heading is never opposite the first leg and
      routes never double back); only a loaded route file can contain one.
    * exactly 0 degrees (no turn needed) is ``slightly left``, the paper's tie-break. The generator never
      produces it either.
    """
    d = signed_diff(start, end)
    if d > 45.0:
        return "right"
    if d < -45.0:
        return "left"
    if d > 0.0:
        return "slightly right"
    return "slightly left"


def side_of(relative_bearing: float) -> str:
    """Where something at ``relative_bearing`` (degrees clockwise from the agent's heading) lies:
    ``front``, ``right``, ``back`` or ``left``. Only exactly 0 / 180 count as front / back."""
    r = wrap(relative_bearing)
    if r == 0.0:
        return "front"
    if r == 180.0:
        return "back"
    return "right" if r < 180.0 else "left"


def vector_heading(dx: float, dy: float) -> float:
    """Heading of a displacement with x to the east and y to the north."""
    return wrap(math.degrees(math.atan2(dx, dy)))
