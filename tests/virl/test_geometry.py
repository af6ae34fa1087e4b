from __future__ import annotations

from harness_tasks.virl.geometry import COMPASS, compass_index, compass_name, side_of, signed_diff
from harness_tasks.virl.routes import read_landmark, spatial_relation


def test_compass_is_north_zero_clockwise() -> None:
    assert [compass_name(45 * i) for i in range(8)] == list(COMPASS)
    assert compass_name(177) == "south" and compass_name(359) == "north" and compass_index(22.5) == 1
    assert signed_diff(90, 270) == 180.0 and signed_diff(350, 10) == 20.0


def test_side_of() -> None:
    assert [side_of(r) for r in (0, 45, 90, 135, 180, 225, 270, 315)] == \
        ["front", "right", "right", "right", "back", "left", "left", "left"]


def test_the_papers_spatial_phrases() -> None:
    assert [spatial_relation(0, b) for b in range(0, 360, 45)] == [
        "front", "right front", "right", "right behind", "behind", "left behind", "left", "left front"]
    assert spatial_relation(90, 100) == "front" and spatial_relation(350, 60) == "right"
    assert read_landmark("Joe's Pizza is on your left behind") == ("Joe's Pizza", "left behind")
    assert read_landmark("Cafe is on your behind") == ("Cafe", "behind")
    assert read_landmark("No landmark nearby") is None
