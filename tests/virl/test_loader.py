from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.virl.env import VirlEnv
from tasks.virl.instructions import instruction_sentences
from tasks.virl.loader import RouteFileError, load_routes, parse_landmarks, parse_milestones, route_from_paper
from tasks.virl.routes import build_rail
from tests.virl.helpers import paper_route, write_routes


def test_valid_file_maps_onto_routes(tmp_path: Path) -> None:
    path = write_routes(tmp_path / "routes.json", [paper_route(90, turns=2), paper_route(0, turns=4)])
    routes = load_routes(path)
    assert len(routes) == 2
    r0 = routes[0]
    assert r0.headings == (177.0, 92.0, 3.0) and r0.directions == ("south", "east", "north")
    assert r0.seen[0] == (("Blue Door Cafe", "left"),) and r0.seen[1] == () and r0.destination == "Rosa Bakery"
    route = route_from_paper(r0, "nyc", seed=1)
    assert instruction_sentences(route) == [
        "First, turn right to face south.",  # 90 -> 177
        "Move forward until you reach next intersection where Blue Door Cafe is on your left.",
        "Turn left to face east.",  # 177 -> 92
        "Move forward until you reach next intersection.",
        "Turn left to face north.",  # 92 -> 3
        "Move forward until you reach destination where Rosa Bakery is on your right.",
    ]
    rail = build_rail(route)
    assert len(rail) == 10 and rail[3].is_intersection and ("Blue Door Cafe", "left") in rail[3].visible()
    # init_heading 0 means random, drawn from the episode seed
    a, b = route_from_paper(routes[1], "nyc", 1), route_from_paper(routes[1], "nyc", 2)
    assert a.init_heading == route_from_paper(routes[1], "nyc", 1).init_heading
    assert {route_from_paper(routes[1], "nyc", s).init_heading for s in range(10)} != {a.init_heading}
    assert b.turns == 4


@pytest.mark.parametrize("vision", [False, True])
def test_env_plays_file_routes_with_the_oracle(tmp_path: Path, vision: bool) -> None:
    path = write_routes(tmp_path / "routes.json", [paper_route(90, 2), paper_route(0, 3), paper_route(200, 1)])
    env = VirlEnv(vision=vision, data=str(path), action_space="relative", image_size=256)
    for seed in range(12):
        obs, info = env.reset(seed=seed)
        assert info["route_id"].startswith("routes.json#")
        assert bool(obs.images) == vision
        while True:
            _, r, term, _, info = env.step(env.expert_action())
            assert r == 1
            if term:
                break
        assert info["episode"]["success"] and info["episode"]["details"]["source"] == "routes.json"
    env.reset(seed=0, options={"route_index": 2})
    assert env.route.route_id == "routes.json#2"


def test_milestone_text_and_landmark_phrases() -> None:
    text = '[{\n"intersection_idx": "1",\n"landmarks": "A is on your left",\n' \
           '"to_next_intersection_heading": "177 (south)",\n}]'
    assert parse_milestones(text) == [{"intersection_idx": "1", "landmarks": "A is on your left",
                                      "to_next_intersection_heading": "177 (south)"}]
    assert parse_landmarks("No landmark nearby") == () and parse_landmarks("No landmarks nearby.") == ()
    assert parse_landmarks("Barnes and Noble is on your left, Joe's Pizza is on your right") == \
        (("Barnes and Noble", "left"), ("Joe's Pizza", "right"))
    assert parse_landmarks("Tower is in front of you") == (("Tower", "front"),)


@pytest.mark.parametrize(("field", "message"), [
    ("start_place", "route 1: missing field 'start_place.relocated_geocode'"),
    ("init_heading", "route 1: missing field 'init_heading'"),
    ("dest_place", "route 1: missing field 'dest_place'"),
    ("route_results", "route 1: missing field 'route_results.landmark_list'"),
    ("landmark_list", "route 1: missing field 'route_results.landmark_list'"),
    ("geocode_list", "route 1: missing field 'route_results.geocode_list'"),
    ("milestone_info", "route 1: missing field 'milestone_info'"),
    ("relocated_geocode", "route 1: missing field 'start_place.relocated_geocode'"),
    ("heading", "route 1, milestone 1: missing field 'to_next_intersection_heading'"),
    ("heading_format", "route 1, milestone 0: 'to_next_intersection_heading' '177' is not like '177 (south)'"),
    ("points", "route 1: 'route_results.geocode_list' has 2 points but 'milestone_info' has 3 milestones"),
])
def test_each_missing_field_is_named(tmp_path: Path, field: str, message: str) -> None:
    bad = paper_route()
    if field in ("landmark_list", "geocode_list"):
        del bad["route_results"][field]
    elif field == "relocated_geocode":
        del bad["start_place"]["relocated_geocode"]
    elif field == "heading":
        bad["milestone_info"] = bad["milestone_info"].replace('"to_next_intersection_heading": "92 (east)",', "")
    elif field == "heading_format":
        bad["milestone_info"] = bad["milestone_info"].replace("177 (south)", "177")
    elif field == "points":
        bad["route_results"]["geocode_list"].pop()
    else:
        del bad[field]
    path = write_routes(tmp_path / f"bad_{field}.json", [paper_route(), bad])
    with pytest.raises(RouteFileError) as err:
        load_routes(path)
    assert message in str(err.value) and "route 0" not in str(err.value)
    with pytest.raises(RouteFileError):  # the env refuses the file up front, with the same message
        VirlEnv(vision=False, data=str(path))


def test_file_level_problems(tmp_path: Path) -> None:
    cases = {"notjson.json": "{", "shape.json": json.dumps({"routes": []}), "empty.json": json.dumps([[], 0]),
             "count.json": json.dumps([[paper_route()], "one"])}
    expected = {"notjson.json": "not valid JSON", "shape.json": "expected a JSON array [routes, count]",
                "empty.json": "no routes", "count.json": "route count"}
    for name, body in cases.items():
        (tmp_path / name).write_text(body)
        with pytest.raises(RouteFileError) as err:
            load_routes(tmp_path / name)
        assert expected[name] in str(err.value)
    with pytest.raises(RouteFileError, match="not found"):
        load_routes(tmp_path / "missing.json")
