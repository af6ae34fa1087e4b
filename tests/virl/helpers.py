"""Small builders shared by the V-IRL tests: routes and data folders in the paper's exact layout, and answers."""

from __future__ import annotations

import itertools
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

HEADINGS = ["177 (south)", "92 (east)", "3 (north)", "268 (west)", "181 (south)"]
MARKS = ["Blue Door Cafe is on your left", "No landmark nearby", "Old Mill Bank is on your right front",
         "Corner Books is on your behind", "Harbor Pharmacy is on your left behind"]


def milestone_text(blocks: list[dict[str, str]]) -> str:
    """The paper's milestone text: one block per leg, one '"key": "value",' a line (its template's layout)."""
    return "\n".join("{\n" + "".join(f'"{k}": "{v}",\n' for k, v in b.items()) + "}" for b in blocks)


def leg_ends(start: tuple[float, float], turns: int, step: float = 0.0012) -> list[list[float]]:
    """Leg ends about 100-130 m apart, walking south, east, north, west, south from ``start``."""
    moves = [(-step, 0.0), (0.0, step * 1.3), (step, 0.0), (0.0, -step * 1.3), (-step, 0.0)]
    out, (lat, lng) = [], start
    for dlat, dlng in moves[: turns + 1]:
        lat, lng = lat + dlat, lng + dlng
        out.append([lat, lng])
    return out


def paper_route(init_heading: float | None = 90, turns: int = 2, start=(40.7411, -73.9897)) -> dict[str, Any]:
    marks = [*MARKS[:turns], "Rosa Bakery is on your right"]
    blocks = [{"intersection_idx": str(i + 1), "landmarks": m, "distance": "120 meters", "human_heading": "0",
               "to_next_intersection_heading": h} for i, (h, m) in enumerate(zip(HEADINGS, marks, strict=False))]
    route: dict[str, Any] = {
        "start_place": {"name": "Start Hotel", "relocated_geocode": list(start)},
        "dest_place": {"name": "Rosa Bakery", "geocode": leg_ends(start, turns)[-1]},
        "route_results": {"landmark_list": [], "geocode_list": leg_ends(start, turns)},
        "milestone_info": milestone_text(blocks),
    }
    if init_heading is not None:
        route["init_heading"] = init_heading
    return route


def write_routes(path: Path, routes: list[dict[str, Any]], count: int | None = None) -> Path:
    path.write_text(json.dumps([routes, len(routes) if count is None else count]))
    return path


def write_data_folder(root: Path, routes: list[dict[str, Any]], pano_size: tuple[int, int] = (128, 64),
                      spacing_deg: float = 0.00004) -> Path:
    """A folder in the paper's layout: route_infos.json, a panorama every ~4 m along each route's straight legs
    (and at its stops) in gps_pano_mapping.pkl, and street_views/ with a small synthetic panorama per id."""
    root.mkdir(parents=True, exist_ok=True)
    write_routes(root / "route_infos.json", routes)
    mapping: dict[tuple[float, float], str] = {}
    for r in routes:
        pts = [tuple(r["start_place"]["relocated_geocode"]), *map(tuple, r["route_results"]["geocode_list"])]
        for a, b in itertools.pairwise(pts):
            n = max(1, int(max(abs(b[0] - a[0]), abs(b[1] - a[1])) / spacing_deg))
            for i in range(n + 1):
                p = (a[0] + (b[0] - a[0]) * i / n + 1e-6, a[1] + (b[1] - a[1]) * i / n)
                mapping.setdefault(p, f"p{len(mapping)}")
    (root / "gps_pano_mapping.pkl").write_bytes(pickle.dumps(mapping))
    views = root / "street_views"
    views.mkdir(exist_ok=True)
    w, h = pano_size
    for (_lat, lng), pid in mapping.items():
        # columns coloured by compass sector, so a view's heading can be read off its pixels
        cols = np.linspace(0, 255, w, dtype=np.uint8)
        arr = np.stack([np.tile(cols, (h, 1)), np.full((h, w), int(abs(lng * 1e4)) % 256, np.uint8),
                        np.full((h, w), 128, np.uint8)], axis=-1)
        Image.fromarray(arr).save(views / f"{pid}.jpg", quality=95)
        (views / f"{pid}.metadata.json").write_text(json.dumps({"rotation": 0.0}))
    return root


def answer(obs: str, instr: str, action: str) -> str:
    return json.dumps({"current observation": obs, "current instruction": instr, "action": action})


def paper_answer(obs: str, instr: str, action: str) -> str:
    """The layout of the paper's SFT data: not JSON (a trailing comma)."""
    return f'{{\n  "current observation": "{obs}",\n  "current instruction": "{instr}",\n  "action": "{action}",\n}}'
