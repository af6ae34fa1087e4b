"""The rail: the points an episode visits, each with the one right action, built by the paper's procedure.

The rail runs through the route's start, each leg end (intersections, then the destination) and points between
them. For each leg longer than 5 m the paper tries ``straight_line_length`` (5) evenly spaced points along the
straight line, the last of which is the leg's end itself; each is dropped with probability ``drop_rate`` (0.5),
snapped to a panorama, and kept only if it lies more than 8 m from both ends of the leg. So a leg gets 0 to 4
points between its ends (the end point itself never survives the 8 m rule). Points between ends observe "No
landmarks nearby" and must be walked with ``forward()``.

Rail stop ``i`` (the start, then leg end ``i``) holds the instruction sentence in force there. As in the paper,
the sentence index moves on by one for a leg only when the leg is longer than 5 m, and the destination keeps the
last leg's "Move forward" sentence while the agent stops.

Snapping: with the paper's panorama mapping, a point goes to the nearest mapped location within 20 m (haversine),
and a point with none is skipped; leg ends and the start that find none keep their own position (where the paper
would crash or call an online API). Without a mapping (generated cities, or routes given without panoramas),
every point is its own panorama, which leaves the 8 m rule to do what it does in the paper.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness_tasks.virl.geodesy import Point, interpolate
from harness_tasks.virl.instructions import NO_LANDMARKS, Instructions

MIN_LEG_M = 5.0  # legs this short get no points between their ends
MIN_GAP_M = 8.0  # a point between ends must be further than this from both

Snap = Callable[[Point], Point | None]


@dataclass(frozen=True)
class RailStep:
    index: int
    point: Point
    heading: float  # the way the agent faces here: the arriving leg's heading (the start heading at the start)
    absolute_action: str
    relative_action: str
    landmarks: str  # what is observed: a milestone's landmarks text, or NO_LANDMARKS
    at_intersection: bool  # the paper's "You observe an intersection" (every leg end but the start)
    instruction: str  # the sentence in force
    instruction_number: int  # counted from 1
    stop: int | None  # which route stop this is (0 = start, k = leg end k); None between stops
    leg: int  # the leg this point is on (0 for the start)

    def action(self, absolute: bool) -> str:
        return self.absolute_action if absolute else self.relative_action

    def observation(self, absolute: bool) -> str:
        """The paper's oracle observation string: landmarks, '; ', and the intersection remark unless this is
        where the agent stops."""
        inter = "You observe an intersection" if self.at_intersection and self.action(absolute) != "stop()" else ""
        return f"{self.landmarks}; {inter}"


def build_rail(start: Point, ends: Sequence[Point], instr: Instructions, distance: Callable[[Point, Point], float],
               snap: Snap | None, rng: random.Random, drop_rate: float = 0.5, straight_line_length: int = 5
               ) -> list[RailStep]:
    """The rail for one episode (the drops are drawn from ``rng``); see the module docstring."""
    steps: list[RailStep] = []
    sentences = instr.sentences
    prev = start
    k = 0  # the sentence in force
    for idx, raw in enumerate((start, *ends)):
        dist = distance(prev, raw)
        here = raw
        if snap is not None and idx:
            here = snap(raw) or raw
        elif snap is not None:
            here = prev  # the start was snapped already
        if dist > MIN_LEG_M:
            n = straight_line_length
            for i in range(n):
                if rng.random() < drop_rate:
                    continue
                p = interpolate(prev, here, i + 1, n)
                if snap is not None:
                    snapped = snap(p)
                    if snapped is None:
                        continue
                    p = snapped
                if distance(prev, p) > MIN_GAP_M and distance(here, p) > MIN_GAP_M:
                    steps.append(RailStep(len(steps), p, instr.headings[idx], "forward()", "forward()", NO_LANDMARKS,
                                          False, sentences[k], k + 1, None, idx))
            k += 1
        if instr.absolute_actions[idx] == "stop()":
            k -= 1
        steps.append(RailStep(len(steps), here, instr.headings[idx], instr.absolute_actions[idx],
                              instr.relative_actions[idx], instr.observations[idx], idx != 0, sentences[k], k + 1,
                              idx, idx))
        k += 1
        prev = here
    return steps
