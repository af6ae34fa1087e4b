"""Small builders shared by the V-IRL tests: a route file in the paper's format, and answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def milestone_text(blocks: list[dict[str, str]]) -> str:
    """The paper's milestone text: one JSON-like block per leg, trailing commas included."""
    out = []
    for b in blocks:
        body = "".join(f'"{k}": "{v}",\n' for k, v in b.items())
        out.append("{\n" + body + "}")
    return "[" + ",\n".join(out) + "]"


def paper_route(init_heading: float = 90, turns: int = 2) -> dict[str, Any]:
    heads = ["177 (south)", "92 (east)", "3 (north)", "268 (west)", "181 (south)"][: turns + 1]
    marks = ["Blue Door Cafe is on your left", "No landmark nearby", "Old Mill Bank is on your right",
             "Corner Books is on your left", "Harbor Pharmacy is on your right"][: turns]
    marks.append("Rosa Bakery is on your right")
    blocks = [{"intersection_idx": str(i + 1), "landmarks": m, "distance": "120 meters", "human_heading": "0",
               "to_next_intersection_heading": h} for i, (h, m) in enumerate(zip(heads, marks, strict=True))]
    return {
        "start_place": {"name": "Start Hotel", "relocated_geocode": [40.7411, -73.9897]},
        "init_heading": init_heading,
        "dest_place": {"name": "Rosa Bakery", "geocode": [40.7422, -73.9850]},
        "route_results": {
            "landmark_list": [{"name": m.split(" is ")[0]} for m in marks if " is " in m],
            "geocode_list": [[40.741 + 0.001 * i, -73.989 + 0.001 * i] for i in range(len(blocks))],
        },
        "milestone_info": milestone_text(blocks),
    }


def write_routes(path: Path, routes: list[dict[str, Any]], count: int | None = None) -> Path:
    path.write_text(json.dumps([routes, len(routes) if count is None else count]))
    return path


def answer(obs: str, instr: str, action: str) -> str:
    return json.dumps({"current observation": obs, "current instruction": instr, "action": action})
