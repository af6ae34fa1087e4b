"""Routes in the paper's terms, from the offline city generator or from the paper's released route files.

A :class:`Route` is what the paper's ``route_infos.json`` holds for one route: a start point, a start heading
(0 = "pick one at random each episode"), and one milestone per leg - the heading to walk (``"90 (east)"``) and
the landmarks seen where the leg ends (``"Hudson Coffee is on your right front"``) - with the leg ends' positions
(intersections, then the destination). Everything the agent reads is built from these by
:mod:`harness_tasks.virl.instructions` and :mod:`harness_tasks.virl.rail`, the same way for both sources, so
generated and released routes are indistinguishable to the verifier.

Generated routes also carry :class:`Scene` s: what the drawn street views show at each stop (landmarks at their
bearings, the streets leaving it). Released routes without panoramas get scenes read back from their milestone
texts, so they can be drawn too.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from harness_tasks.virl.city import KINDS, City
from harness_tasks.virl.geodesy import Point
from harness_tasks.virl.geometry import compass_name, side_of, wrap
from harness_tasks.virl.instructions import NO_LANDMARK, Milestone

# The paper's spatial phrases (its DIRECTION_SET), at their bearings relative to the agent's heading.
SPATIAL: tuple[tuple[str, float], ...] = (
    ("front", 0), ("right front", 45), ("right", 90), ("right behind", 135), ("behind", 180),
    ("left behind", 225), ("left", 270), ("left front", 315))
_SPATIAL_ANGLE = dict(SPATIAL)


def spatial_relation(agent_heading: float, bearing: float) -> str:
    """The paper's ``calculate_spatial_relationship_with_headings``: the nearest of its eight phrases."""
    diff = (bearing - agent_heading) % 360
    best, best_d = "front", 361.0
    for name, angle in SPATIAL:
        d = abs(angle - diff)
        d = 360 - d if d > 180 else d
        if d < best_d:
            best, best_d = name, d
    return best


@dataclass(frozen=True)
class Sighting:
    name: str
    kind: str
    bearing: float  # absolute, degrees from north


@dataclass(frozen=True)
class Scene:
    """What a drawn street view shows at a route stop."""

    is_intersection: bool
    sightings: tuple[Sighting, ...]
    streets: tuple[float, ...]  # absolute headings of the streets leaving it


BETWEEN = Scene(False, (), ())  # filled in with the leg's heading when drawn


@dataclass(frozen=True)
class Route:
    route_id: str
    source: str  # "generated" or the file it came from
    city: str  # the style used when views are drawn
    start: Point
    init_heading: float  # 0: random each episode (the paper's rule)
    milestones: tuple[Milestone, ...]
    ends: tuple[Point, ...]  # one per milestone: the leg ends
    planar: bool  # metres on a plane (generated) or (lat, lng) degrees
    scenes: tuple[Scene, ...]  # one per stop: the start, then each leg end
    index: int = 0  # position in its file

    @property
    def turns(self) -> int:
        return len(self.milestones) - 1


def landmark_text(name: str, agent_heading: float, bearing: float) -> str:
    return f"{name} is on your {spatial_relation(agent_heading, bearing)}"


_LANDMARK = re.compile(r"^(?P<name>.{1,200}?) is on your (?P<side>right front|right behind|left behind|left front|"
                       r"front|right|behind|left)\s*\.?\s*$")


def read_landmark(text: str) -> tuple[str, str] | None:
    """``"Starbucks is on your right front"`` -> ``("Starbucks", "right front")``; None for anything else."""
    if len(text) > 300:
        return None
    m = _LANDMARK.match(text.strip())
    return (m.group("name"), m.group("side")) if m else None


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, words in KINDS.items():
        if any(w.lower() in low for w in words):
            return kind
    return "shop"


def scenes_from_milestones(milestones: tuple[Milestone, ...]) -> tuple[Scene, ...]:
    """Scenes for a route known only by its milestones: the named landmark at its side, the streets in and out."""
    out = [Scene(False, (), (float(milestones[0].heading), wrap(milestones[0].heading + 180)))]
    for j, m in enumerate(milestones):
        h = float(m.heading)
        seen = read_landmark(m.landmarks)
        sightings = (Sighting(seen[0], kind_of(seen[0]), wrap(h + _SPATIAL_ANGLE[seen[1]])),) if seen else ()
        last = j == len(milestones) - 1
        streets = {h, wrap(h + 180)} if last else {h, wrap(h + 180), float(milestones[j + 1].heading),
                                                   wrap(milestones[j + 1].heading + 180)}
        out.append(Scene(not last, sightings, tuple(sorted(streets))))
    return tuple(out)


# ------------------------------------------------------------------------------------------ generator


class RouteError(RuntimeError):
    pass


def generate_route(city: City, seed: int, min_turns: int = 2, max_turns: int = 6) -> Route:
    """A route of ``min_turns..max_turns`` turns at intersections, drawn from ``seed`` alone.

    Every leg is one block, so "the next intersection" is unambiguous; each intersection on the route has at
    least 3 streets; the route turns at each (never straight on, never a U-turn), never revisits a node, and ends
    beside a mid-block landmark on its left or right. It starts mid-block and, as routes in the paper's files
    without a start heading, faces a random way at the start of each episode.
    """
    if not 1 <= min_turns <= max_turns:
        raise ValueError(f"need 1 <= min_turns <= max_turns, got {min_turns}, {max_turns}")
    rng = random.Random(f"virl-route:{city.style.name}:{city.seed}:{seed}")
    nodes = sorted(city.nodes)
    for _attempt in range(500):
        k = rng.randint(min_turns, max_turns)
        u0 = rng.choice(nodes)
        h0, v0 = rng.choice(sorted(city.adj[u0].items()))
        path, heads, visited = [v0], [h0], {u0, v0}
        ok = True
        for _j in range(k):
            cur = path[-1]
            if city.degree(cur) < 3:
                ok = False
                break
            prev = heads[-1]
            options = [(h, w) for h, w in sorted(city.adj[cur].items())
                       if w not in visited and h != prev and h != wrap(prev + 180)]
            if not options:
                ok = False
                break
            h, w = rng.choice(options)
            heads.append(h)
            path.append(w)
            visited.add(w)
        if not ok:
            continue
        dest = [(lm, b) for lm, b in city.edge_landmarks(path[-2], path[-1])
                if side_of(b - heads[-1]) in ("left", "right")]
        if not dest:
            continue
        return _assemble(city, rng, seed, u0, path, heads, dest)
    raise RouteError(f"no route found in city {city.style.name!r} for seed {seed}")


def _assemble(city: City, rng: random.Random, seed: int, u0: int, path: list[int], heads: list[int],
              dest: list) -> Route:
    scale = city.style.block_m

    def at(node: int) -> Point:
        x, y = city.nodes[node]
        return (x * scale, y * scale)

    def mid(a: int, b: int) -> Point:
        (xa, ya), (xb, yb) = at(a), at(b)
        return ((xa + xb) / 2, (ya + yb) / 2)

    legs = len(heads)
    milestones: list[Milestone] = []
    scenes = [Scene(False, tuple(Sighting(lm.name, lm.kind, b) for lm, b in city.edge_landmarks(u0, path[0])),
                    (float(heads[0]), wrap(heads[0] + 180)))]
    ends: list[Point] = []
    for j in range(legs - 1):
        node = path[j]
        seen = tuple(Sighting(lm.name, lm.kind, b) for lm, b in city.corners.get(node, ()))
        cue = rng.choice(seen) if seen else None
        text = landmark_text(cue.name, heads[j], cue.bearing) if cue else NO_LANDMARK
        milestones.append(Milestone(text, int(heads[j]), compass_name(heads[j])))
        scenes.append(Scene(True, seen, tuple(float(h) for h in sorted(city.adj[node]))))
        ends.append(at(node))
    lm, b = rng.choice(dest)
    goal = Sighting(lm.name, lm.kind, b)
    milestones.append(Milestone(landmark_text(goal.name, heads[-1], goal.bearing), int(heads[-1]),
                                compass_name(heads[-1])))
    scenes.append(Scene(False, (goal,), (float(heads[-1]), wrap(heads[-1] + 180))))
    ends.append(mid(path[-2], path[-1]))
    return Route(route_id=f"{city.style.name}/c{city.seed}/{seed:x}", source="generated", city=city.style.name,
                 start=mid(u0, path[0]), init_heading=0.0, milestones=tuple(milestones), ends=tuple(ends),
                 planar=True, scenes=tuple(scenes))
