"""Compass headings and relative turns.

Headings are degrees clockwise from north. Generated cities' streets run along the 8 compass directions
(north=0, northeast=45, ...); routes loaded from the paper's files carry raw degrees (``177``), so the
functions below accept any float. The paper's relative turn labels are in :mod:`harness_tasks.virl.instructions`.
"""

from __future__ import annotations

import math

COMPASS: tuple[str, ...] = ("north", "northeast", "east", "southeast", "south", "southwest", "west",
                            "northwest")


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
