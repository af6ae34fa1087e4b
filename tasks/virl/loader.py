"""The paper's released route files (``--data PATH``).

A file is one JSON document ``[routes, count]``. Each route has::

    start_place      {"relocated_geocode": [lat, lng] or {"lat": .., "lng": ..}, ...}
    init_heading     degrees; 0 means "pick one at random"
    dest_place       {"name": ..., ...}
    route_results    {"landmark_list": [...], "geocode_list": [[lat, lng], ...]}  (the rail's stops)
    milestone_info   text: one {...} block per leg with "landmarks" ("X is on your left", or
                     "No landmark nearby") and "to_next_intersection_heading" ("177 (south)")

Milestone ``j`` describes leg ``j``: the heading to walk, and the landmarks seen where the leg ends (the next
intersection, or the destination for the last one). ``geocode_list`` holds those leg ends, so it has one
point per milestone. Street views came from an online API in the paper; here :mod:`tasks.virl.render` draws
them from these landmarks and headings in a chosen city style, and virl-l runs the routes as text.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tasks.virl.city import KINDS
from tasks.virl.geometry import COMPASS, wrap
from tasks.virl.routes import Route, Sighting, Stop


class RouteFileError(ValueError):
    """A route file that can't be used; the message lists every problem found (route index and field)."""


@dataclass(frozen=True)
class PaperRoute:
    index: int
    source: str
    init_heading: float | None  # None: random per episode (the file said 0)
    headings: tuple[float, ...]
    directions: tuple[str, ...]
    seen: tuple[tuple[tuple[str, str], ...], ...]  # per leg end: (name, side)
    destination: str


_BLOCK = re.compile(r"\{[^{}]*\}", re.DOTALL)
_KV = re.compile(r'"([A-Za-z_ ]+)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_HEADING = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*\(\s*([a-z]+)\s*\)\s*$", re.IGNORECASE)
_PHRASE = re.compile(r"\s*(?:[;,]\s*|\band\s+)?(?P<name>[^;]+?)\s+is\s+(?:on\s+your\s+(?P<side>left|right)"
                     r"|(?P<front>in\s+front\s+of\s+you)|(?P<back>behind\s+you))", re.IGNORECASE)
_NONE = re.compile(r"^\s*no\s+landmarks?\s+nearby\.?\s*$", re.IGNORECASE)


def parse_milestones(info: Any) -> list[dict[str, str]]:
    """Milestone blocks as dicts. Accepts a list of dicts or the paper's text (JSON-like blocks, which may
    carry trailing commas, so each ``"key": "value"`` pair is read on its own)."""
    if isinstance(info, list):
        return [{str(k): str(v) for k, v in m.items()} if isinstance(m, dict) else {} for m in info]
    if not isinstance(info, str):
        raise TypeError(f"expected text or a list, got {type(info).__name__}")
    return [{k.strip(): v for k, v in _KV.findall(block)} for block in _BLOCK.findall(info)]


def parse_heading(text: str) -> tuple[float, str]:
    m = _HEADING.match(text)
    if not m or m.group(2).lower() not in COMPASS:
        raise ValueError(f"{text!r} is not like '177 (south)'")
    return float(m.group(1)), m.group(2).lower()


def parse_landmarks(value: Any) -> tuple[tuple[str, str], ...]:
    """'X is on your left, Y is on your right' -> (("X", "left"), ("Y", "right")); 'No landmark nearby' -> ()."""
    if value is None:
        return ()
    if isinstance(value, list):
        out: list[tuple[str, str]] = []
        for v in value:
            if isinstance(v, dict) and "name" in v:
                out.append((str(v["name"]), str(v.get("side", "right"))))
            else:
                out.extend(parse_landmarks(v))
        return tuple(out)
    text = str(value).strip()
    if not text or _NONE.match(text):
        return ()
    found = []
    for m in _PHRASE.finditer(text):
        side = m.group("side") or ("front" if m.group("front") else "back")
        found.append((m.group("name").strip(" .,;"), side.lower()))
    return tuple(found)


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            raise KeyError(path)
        obj = obj[part]
    return obj


def validate_routes(doc: Any, source: str = "<data>") -> list[PaperRoute]:
    """Check a parsed document and turn it into :class:`PaperRoute` s, or raise :class:`RouteFileError`
    naming every problem (which route index, which field)."""
    if not isinstance(doc, list) or len(doc) != 2:
        raise RouteFileError(f"{source}: expected a JSON array [routes, count], got "
                             f"{type(doc).__name__}{' of length ' + str(len(doc)) if isinstance(doc, list) else ''}")
    routes, count = doc
    problems: list[str] = []
    if not isinstance(routes, list):
        raise RouteFileError(f"{source}: the first element must be the list of routes")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        problems.append(f"the second element (route count) must be a non-negative integer, got {count!r}")
    if not routes:
        problems.append("the file holds no routes")
    out: list[PaperRoute] = []
    for i, r in enumerate(routes):
        where = f"route {i}"
        if not isinstance(r, dict):
            problems.append(f"{where}: not an object")
            continue
        before = len(problems)
        for path in ("start_place.relocated_geocode", "init_heading", "dest_place", "route_results.landmark_list",
                     "route_results.geocode_list", "milestone_info"):
            try:
                _get(r, path)
            except KeyError:
                problems.append(f"{where}: missing field '{path}'")
        if len(problems) > before:
            continue
        geo = r["start_place"]["relocated_geocode"]
        if not (isinstance(geo, dict) and {"lat", "lng"} <= set(geo)) and not (isinstance(geo, list) and len(geo) == 2):
            problems.append(f"{where}: 'start_place.relocated_geocode' must be [lat, lng] or {{lat, lng}}")
        init = r["init_heading"]
        if not isinstance(init, int | float) or isinstance(init, bool):
            problems.append(f"{where}: 'init_heading' must be a number of degrees, got {init!r}")
            init = 0
        if not isinstance(r["route_results"]["landmark_list"], list):
            problems.append(f"{where}: 'route_results.landmark_list' must be a list")
        points = r["route_results"]["geocode_list"]
        if not isinstance(points, list):
            problems.append(f"{where}: 'route_results.geocode_list' must be a list of [lat, lng] points")
            points = []
        try:
            milestones = parse_milestones(r["milestone_info"])
        except TypeError as exc:
            problems.append(f"{where}: 'milestone_info' {exc}")
            continue
        if not milestones:
            problems.append(f"{where}: 'milestone_info' has no milestone blocks")
            continue
        if len(points) != len(milestones):
            problems.append(f"{where}: 'route_results.geocode_list' has {len(points)} points but "
                            f"'milestone_info' has {len(milestones)} milestones (need one point per milestone)")
        heads, names, seen = [], [], []
        for j, m in enumerate(milestones):
            if "to_next_intersection_heading" not in m:
                problems.append(f"{where}, milestone {j}: missing field 'to_next_intersection_heading'")
                continue
            try:
                deg, name = parse_heading(m["to_next_intersection_heading"])
            except ValueError as exc:
                problems.append(f"{where}, milestone {j}: 'to_next_intersection_heading' {exc}")
                continue
            heads.append(wrap(deg))
            names.append(name)
            seen.append(parse_landmarks(m.get("landmarks")))
        if len(problems) > before:
            continue
        dest = r["dest_place"]
        dest_name = str(dest.get("name", "")) if isinstance(dest, dict) else str(dest)
        out.append(PaperRoute(index=i, source=source, init_heading=None if init == 0 else wrap(float(init)),
                              headings=tuple(heads), directions=tuple(names), seen=tuple(seen),
                              destination=dest_name))
    if problems:
        shown = problems[:25]
        more = f"\n  ... and {len(problems) - 25} more" if len(problems) > 25 else ""
        raise RouteFileError(f"{source}: {len(problems)} problem(s) in the route file:\n  " + "\n  ".join(shown)
                             + more)
    return out


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> tuple[PaperRoute, ...]:
    try:
        doc = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise RouteFileError(f"{path}: not valid JSON: {exc}") from None
    return tuple(validate_routes(doc, source=Path(path).name))


def load_routes(path: str | Path) -> tuple[PaperRoute, ...]:
    """Read and validate a route file once per process (cached by path and modification time)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise RouteFileError(f"route file not found: {p}")
    return _load_cached(str(p.resolve()), p.stat().st_mtime)


def _kind_of(name: str) -> str:
    low = name.lower()
    for kind, words in KINDS.items():
        if any(w.lower() in low for w in words):
            return kind
    return "shop"


_SIDE_BEARING = {"right": 90.0, "left": 270.0, "front": 0.0, "back": 180.0}


def route_from_paper(pr: PaperRoute, style: str, seed: int) -> Route:
    """A :class:`Route` for one episode. A start heading of 0 in the file means random: it is drawn from the
    episode seed (whole degrees, as in the paper's code)."""
    rng = random.Random(f"virl-paper:{pr.source}:{pr.index}:{seed}")
    init = pr.init_heading if pr.init_heading is not None else float(rng.randint(0, 359))
    legs = len(pr.headings)
    stops = [Stop(False, (), (pr.headings[0], wrap(pr.headings[0] + 180)))]
    cues: list[Sighting | None] = []
    for j, h in enumerate(pr.headings):
        seen = tuple(Sighting(n, _kind_of(n), wrap(h + _SIDE_BEARING.get(side, 90.0))) for n, side in pr.seen[j])
        last = j == legs - 1
        if last:
            streets: tuple[float, ...] = (h, wrap(h + 180))
        else:
            nxt = pr.headings[j + 1]
            streets = tuple(sorted({h, wrap(h + 180), nxt, wrap(nxt + 180)}))
        stops.append(Stop(not last, seen, streets))
        cues.append(next((s for s, (_, side) in zip(seen, pr.seen[j], strict=True) if side in ("left", "right")),
                         None))
    return Route(route_id=f"{pr.source}#{pr.index}", city=style, source=pr.source, init_heading=init,
                 headings=pr.headings, directions=pr.directions, stops=tuple(stops), cues=tuple(cues))
