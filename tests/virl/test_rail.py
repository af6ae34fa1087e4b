"""The rail follows the paper's procedure: straight-line points per leg, dropped at the drop rate, the 8 m rule,
snapping to panoramas, and the sentence in force at every point."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from harness_tasks.virl.data import PanoramaMapping
from harness_tasks.virl.geodesy import Earth, Plane, geodesic_m, haversine_m
from harness_tasks.virl.instructions import Milestone, build_instructions
from harness_tasks.virl.rail import build_rail

NORTH = Milestone("Cafe is on your left", 0, "north")
EAST = Milestone("Bank is on your right", 90, "east")


def rail(ends, milestones, drop_rate=0.0, seed=0, snap=None, start=(0.0, 0.0), distance=Plane.distance):
    ins = build_instructions(milestones, 180)
    return build_rail(start, ends, ins, distance, snap, random.Random(seed), drop_rate), ins


def between(steps, leg):
    return [s for s in steps if s.stop is None and s.leg == leg]


def test_long_leg_gets_four_points_the_end_point_never_survives() -> None:
    steps, ins = rail([(0.0, 100.0)], [NORTH])
    assert [s.point for s in between(steps, 1)] == [(0.0, 20.0), (0.0, 40.0), (0.0, 60.0), (0.0, 80.0)]
    assert [s.stop for s in steps] == [0, None, None, None, None, 1]
    assert [s.absolute_action for s in steps] == ["turn_direction(north)"] + ["forward()"] * 4 + ["stop()"]
    assert [s.heading for s in steps] == [180, 0, 0, 0, 0, 0]
    assert all(s.landmarks == "No landmarks nearby" and not s.at_intersection for s in between(steps, 1))
    # the destination keeps the last "Move forward" sentence while the agent stops
    assert [s.instruction_number for s in steps] == [1, 2, 2, 2, 2, 2]
    assert steps[-1].instruction == ins.sentences[1]
    assert steps[-1].observation(True) == "Cafe is on your left; "  # no intersection remark where one stops


def test_points_within_8_m_of_either_end_are_removed() -> None:
    steps, _ = rail([(0.0, 30.0)], [NORTH])
    assert [s.point for s in between(steps, 1)] == [(0.0, 12.0), (0.0, 18.0)]  # 6 and 24 m are too close
    steps, _ = rail([(0.0, 40.0)], [NORTH])
    assert [s.point[1] for s in between(steps, 1)] == [16.0, 24.0]  # 8.0 m is not more than 8 m


def test_short_legs_get_no_points_and_the_sentence_index_lags_as_in_the_paper() -> None:
    steps, ins = rail([(0.0, 4.0), (100.0, 4.0)], [NORTH, EAST])
    assert not between(steps, 1) and len(between(steps, 2)) == 4
    stops = [s for s in steps if s.stop is not None]
    assert [s.instruction for s in stops] == [ins.sentences[0], ins.sentences[1], ins.sentences[2]]
    assert stops[1].at_intersection
    assert stops[1].observation(True) == "Cafe is on your left; You observe an intersection"


def test_drop_rate_gives_the_papers_per_leg_distribution() -> None:
    counts: Counter[int] = Counter()
    for seed in range(4000):
        steps, _ = rail([(0.0, 100.0)], [NORTH], drop_rate=0.5, seed=seed)
        counts[len(between(steps, 1))] += 1
    expected = {0: 1 / 16, 1: 4 / 16, 2: 6 / 16, 3: 4 / 16, 4: 1 / 16}  # Binomial(4, 1/2)
    assert set(counts) == set(expected)
    for k, p in expected.items():
        assert abs(counts[k] / 4000 - p) < 0.03, counts
    assert not between(rail([(0.0, 100.0)], [NORTH], drop_rate=1.0)[0], 1)


def test_geodesic_distances() -> None:
    a, b = (40.7411, -73.9897), (40.7423, -73.9897)
    assert abs(geodesic_m(a, b) - 133.25) < 0.05  # one thousandth of a degree of latitude at NYC is ~111 m
    assert abs(geodesic_m(a, b) - haversine_m(*a, *b)) < 0.5
    assert geodesic_m(a, a) == 0.0


def test_snapping_to_panoramas() -> None:
    start = (40.7411, -73.9897)
    end = (40.7421, -73.9897)  # ~111 m north
    # panoramas every ~11 m, 3 m east of the straight line, with a gap of 55 m after the first 22 m
    pts = [(start[0] + 0.0001 * i, start[1] + 0.00004) for i in range(11) if not 3 <= i <= 6]
    mapping = PanoramaMapping({p: f"p{i}" for i, p in enumerate(pts)}, "m.pkl")
    assert mapping.snap(pts[2]) == pts[2]  # an exact key
    assert mapping.snap((40.74135, -73.9897)) in pts
    assert mapping.snap((40.7416, -73.9897)) is None  # nothing within 20 m
    steps, _ = rail([end], [NORTH], snap=mapping.snap, start=mapping.snap(start), distance=Earth.distance)
    mids = between(steps, 1)
    assert all(m.point in pts for m in mids)  # every kept point is a panorama's position
    # the candidates at 22, 44, 67 and 89 m: the one at 44 m has no panorama within 20 m and is skipped
    assert [m.point for m in mids] == [pts[2], pts[3], pts[4]]
    assert steps[-1].point == mapping.snap(end)


@pytest.mark.parametrize("absolute", [True, False])
def test_actions_follow_the_action_space(absolute: bool) -> None:
    steps, _ = rail([(0.0, 100.0), (100.0, 100.0)], [NORTH, EAST])
    acts = [s.action(absolute) for s in steps if s.stop is not None]
    assert acts == (["turn_direction(north)", "turn_direction(east)", "stop()"] if absolute
                    else ["turn_direction(left)", "turn_direction(right)", "stop()"])  # 0 - 180 = -180: left
