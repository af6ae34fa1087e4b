from __future__ import annotations

import pytest

from tasks.virl.geometry import COMPASS, compass_index, compass_name, relative_turn, side_of, signed_diff


def test_compass_is_north_zero_clockwise() -> None:
    assert [compass_name(45 * i) for i in range(8)] == list(COMPASS)
    assert compass_name(177) == "south" and compass_name(359) == "north" and compass_index(22.5) == 1


# Expected relative turn for every (from, to) pair of compass headings, by the clockwise step count
# (to - from) mod 8: beyond 45 degrees is left/right, 45 is "slightly", 180 is right, 0 is slightly left.
BY_STEPS = {0: "slightly left", 1: "slightly right", 2: "right", 3: "right", 4: "right", 5: "left", 6: "left",
            7: "slightly left"}


@pytest.mark.parametrize("a", range(8))
@pytest.mark.parametrize("b", range(8))
def test_relative_turn_all_pairs(a: int, b: int) -> None:
    assert relative_turn(45 * a, 45 * b) == BY_STEPS[(b - a) % 8]


def test_relative_turn_raw_degrees() -> None:
    assert relative_turn(170, 177) == "slightly right"
    assert relative_turn(350, 10) == "slightly right"  # wraps around north
    assert relative_turn(10, 350) == "slightly left"
    assert relative_turn(0, 46) == "right" and relative_turn(0, 45) == "slightly right"
    assert relative_turn(0, 314) == "left" and relative_turn(0, 315) == "slightly left"
    assert signed_diff(90, 270) == 180.0


def test_side_of() -> None:
    assert [side_of(r) for r in (0, 45, 90, 135, 180, 225, 270, 315)] == \
        ["front", "right", "right", "right", "back", "left", "left", "left"]
