"""Routes and the rail the agent moves on.

A route is a chain of stops: the start (a mid-block address), the intersections where it turns, and the
destination (a mid-block place). Leg ``j`` runs from stop ``j`` to stop ``j+1`` along one block, heading
``headings[j]``. The rail expands a route into the points the agent visits, with the one right action at
each (the paper's layout, 2 points between stops):

    start --turn--> p --forward--> p --forward--> I1 --turn--> p --> p --> I2 ... --> destination (stop)

So a route with ``k`` turns at intersections has ``k + 1`` legs and ``3 (k + 1) + 1`` rail steps.
Routes from the generator and from the paper's files end up as the same :class:`Route`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tasks.virl.city import City
from tasks.virl.geometry import compass_name, relative_turn, side_of, wrap

INTERMEDIATE_POINTS = 2


@dataclass(frozen=True)
class Sighting:
    """A landmark the agent can see from a stop, at an absolute bearing (degrees from north)."""

    name: str
    kind: str
    bearing: float


@dataclass(frozen=True)
class Stop:
    """A point where the route starts, turns or ends. ``streets`` are the absolute headings of the streets
    leaving it (what the street views show); ``sightings`` the landmarks seen from it."""

    is_intersection: bool
    sightings: tuple[Sighting, ...]
    streets: tuple[float, ...]


@dataclass(frozen=True)
class Route:
    route_id: str
    city: str  # the style whose streets and signs are drawn
    source: str  # "generated" or the file it came from
    init_heading: float
    headings: tuple[float, ...]  # one per leg, degrees
    directions: tuple[str, ...]  # compass name of each leg
    stops: tuple[Stop, ...]  # len(headings) + 1: start, intersections, destination
    cues: tuple[Sighting | None, ...]  # per leg: the landmark its instruction names at the leg's end
    street_names: tuple[str, ...] = ()

    @property
    def turns(self) -> int:
        """Turns at intersections (the opening turn at the start is not counted)."""
        return len(self.headings) - 1


@dataclass(frozen=True)
class RailStep:
    """One point of the rail: what the agent sees there and the one right action."""

    index: int
    heading: float
    stop: Stop  # for intermediate points, a plain street with nothing to see
    absolute_action: str
    relative_action: str
    instruction: int  # index of the instruction sentence in force
    view_key: int  # picks facade variants, so neighbouring points don't look identical

    @property
    def is_intersection(self) -> bool:
        return self.stop.is_intersection

    def visible(self) -> list[tuple[str, str]]:
        """(landmark name, side) in a stable order: right side first, then left, front, back."""
        order = {"right": 0, "left": 1, "front": 2, "back": 3}
        seen = [(s.name, side_of(s.bearing - self.heading), wrap(s.bearing - self.heading))
                for s in self.stop.sightings]
        seen.sort(key=lambda t: (order[t[1]], t[2]))
        return [(n, side) for n, side, _ in seen]


def build_rail(route: Route) -> list[RailStep]:
    """The rail of a route; see the module docstring. Instruction ``2j`` is leg ``j``'s turn, ``2j+1`` its
    'move forward' sentence; at the destination the last sentence stays in force while the agent stops."""
    steps: list[RailStep] = []
    heading = route.init_heading
    for j, h in enumerate(route.headings):
        turn = f"turn_direction({route.directions[j]})"
        rel = f"turn_direction({relative_turn(heading, h)})"
        steps.append(RailStep(len(steps), heading, route.stops[j], turn, rel, 2 * j, 7 * j))
        street = Stop(False, (), (h, wrap(h + 180)))
        for p in range(INTERMEDIATE_POINTS):
            steps.append(RailStep(len(steps), h, street, "forward()", "forward()", 2 * j + 1, 7 * j + p + 1))
        heading = h
    last = len(route.headings)
    steps.append(RailStep(len(steps), heading, route.stops[last], "stop()", "stop()", 2 * last - 1, 7 * last))
    return steps


# ------------------------------------------------------------------------------------------ generator


class RouteError(RuntimeError):
    pass


def generate_route(city: City, seed: int, min_turns: int = 2, max_turns: int = 6) -> Route:
    """A route of ``min_turns..max_turns`` turns at intersections, drawn from ``seed`` alone.

    Every leg is one block, so "the next intersection" in the instruction is unambiguous; each intersection
    on the route has at least 3 streets; the route turns at each (never straight on, never a U-turn),
    never revisits a node, and ends beside a mid-block landmark on its left or right.
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
        # path = [I1..Ik, w]; the last leg stops half-way along (Ik, w), beside a landmark.
        last_h = heads[-1]
        dest = [(lm, b) for lm, b in city.edge_landmarks(path[-2], path[-1])
                if side_of(b - last_h) in ("left", "right")]
        if not dest:
            continue
        return _assemble(city, rng, seed, u0, path, heads, dest)
    raise RouteError(f"no route found in city {city.style.name!r} for seed {seed}")


def _assemble(city: City, rng: random.Random, seed: int, u0: int, path: list[int], heads: list[int],
              dest: list) -> Route:
    legs = len(heads)
    # Start mid-block on (u0, I1): what is beside that block is visible there.
    start_seen = tuple(Sighting(lm.name, lm.kind, b) for lm, b in city.edge_landmarks(u0, path[0]))
    stops = [Stop(False, start_seen, (float(heads[0]), wrap(heads[0] + 180)))]
    cues: list[Sighting | None] = []
    for j in range(legs - 1):
        node = path[j]
        seen = tuple(Sighting(lm.name, lm.kind, b) for lm, b in city.corners.get(node, ()))
        stops.append(Stop(True, seen, tuple(float(h) for h in sorted(city.adj[node]))))
        usable = [s for s in seen if side_of(s.bearing - heads[j]) in ("left", "right")]
        cues.append(rng.choice(usable) if usable else None)
    lm, b = rng.choice(dest)
    goal = Sighting(lm.name, lm.kind, b)
    stops.append(Stop(False, (goal,), (float(heads[-1]), wrap(heads[-1] + 180))))
    cues.append(goal)
    # The opening heading is never the first leg's (no turn needed) nor its opposite (a U-turn).
    init = rng.choice([h for h in range(0, 360, 45) if h not in (heads[0], wrap(heads[0] + 180))])
    chain = [u0, *path]
    streets = tuple(city.street(chain[i], chain[i + 1]) for i in range(len(chain) - 1))
    return Route(route_id=f"{city.style.name}/c{city.seed}/{seed:x}", city=city.style.name, source="generated",
                 init_heading=float(init), headings=tuple(float(h) for h in heads),
                 directions=tuple(compass_name(h) for h in heads), stops=tuple(stops), cues=tuple(cues),
                 street_names=streets)
