"""The paper's released data layout loads, is validated as untrusted input, and gives the paper's street views."""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from harness_tasks.virl.data import DataError, load_data, read_plain_pickle
from harness_tasks.virl.panorama import GAP, grid, perspective, view_headings
from harness_tasks.virl.plugin import VIRL_L, VIRL_VL
from tests.virl.helpers import paper_route, write_data_folder, write_routes


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_data_folder(tmp_path / "nyc_routes", [paper_route(90, 2), paper_route(0, 3, start=(40.75, -73.98))])


def test_folder_layout_loads_and_points_snap_to_panoramas(folder: Path) -> None:
    data = load_data(folder)
    assert len(data.routes) == 2 and data.mapping is not None and data.views is not None
    env = VIRL_L.make_env("id", data=str(folder))
    env.reset(seed=0, options={"route_index": 0})
    assert all(s.point in data.mapping.mapping for s in env.rail)  # every rail point is a panorama's position
    assert env.route.route_id.startswith("route_infos.json#0")


def test_street_views_are_cut_from_the_panoramas(folder: Path) -> None:
    env = VIRL_VL.make_env("id", data=str(folder), image_size=40)
    obs, _ = env.reset(seed=0, options={"route_index": 0})
    img = obs.images[0]
    assert img.size == (2 * 40 + GAP, 2 * 40 + GAP)
    arr = np.asarray(img)
    assert (arr[40:40 + GAP] == 0).all() and (arr[:, 40:40 + GAP] == 0).all()  # the black separator lines
    # the synthetic panorama's red channel grows with the column (compass heading): the four views differ
    reds = [arr[y:y + 40, x:x + 40, 0].mean() for y in (0, 45) for x in (0, 45)]
    assert len({round(r) for r in reds}) == 4


def test_view_headings_are_the_papers_diagonals() -> None:
    assert view_headings(0) == [225, 315, 45, 135]
    assert view_headings(90) == [315, 45, 135, 225]


def test_perspective_follows_heading_and_rotation() -> None:
    w, h = 360, 180
    pano = np.zeros((h, w, 3), np.uint8)
    pano[:, :, 0] = (np.arange(w) * 255 // (w - 1)).astype(np.uint8)[None, :]

    def centre(heading: float, rotation: float) -> float:
        return float(np.asarray(perspective(pano, heading, rotation, size=32))[15:17, 15:17, 0].mean())

    # a view at heading h is centred on panorama column (0.5 + (h - 180 + rotation) / 360) * (width - 1)
    for heading, rotation, column in ((180, 0, 179.5), (270, 0, 269.25), (180, 45, 224.4), (90, 0, 89.75)):
        assert abs(centre(heading, rotation) - column * 255 / 359) < 3, (heading, rotation)
    assert grid([perspective(pano, 0, 0, size=8)] * 4, resolution=16).size == (37, 37)


def test_panoramas_are_read_once_per_rail_point(folder: Path) -> None:
    env = VIRL_VL.make_env("id", data=str(folder), image_size=32)
    env.reset(seed=0, options={"route_index": 0})
    views = env.data.views
    reads = []
    original = views.load.__func__

    def counting(self, pano_id):
        if pano_id not in self._cache:
            reads.append(pano_id)
        return original(self, pano_id)

    views.load = counting.__get__(views)
    for _ in range(3):
        env.render()
    assert len(reads) <= 1


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "gps_pano_mapping.pkl"
    bad.write_bytes(pickle.dumps({(40.7, -73.9): Evil()}))
    with pytest.raises(DataError, match=r"refers to .*system.*only plain dicts"):
        read_plain_pickle(bad)
    assert not marker.exists()
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        bad.write_bytes(pickle.dumps({(40.7, -73.9): "p1", (1.0, 2.0): ["x", 1.5]}, protocol=protocol))
        assert read_plain_pickle(bad)[(40.7, -73.9)] == "p1"
    bad.write_bytes(pickle.dumps({(40.7, -73.9): np.float64(1.0)}))
    with pytest.raises(DataError, match="numpy"):
        read_plain_pickle(bad)


def test_mapping_and_views_are_validated(folder: Path, tmp_path: Path) -> None:
    (folder / "gps_pano_mapping.pkl").write_bytes(pickle.dumps({(40.7, -73.9): "../../etc/passwd"}))
    with pytest.raises(DataError, match="panorama id"):
        load_data(folder)
    (folder / "gps_pano_mapping.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="expected a non-empty dict"):
        load_data(folder)
    (folder / "gps_pano_mapping.pkl").unlink()
    with pytest.raises(DataError, match=r"needs gps_pano_mapping\.pkl"):
        load_data(folder)


HOSTILE = {
    "not [routes, count]": {"routes": []},
    "no routes": [[], 0],
    "address start": [[{**paper_route(), "start_place": {"relocated_geocode": "350 5th Ave, New York"}}], 1],
    "nan heading": '[[{"init_heading": NaN}], 1]',
    "huge heading": [[{**paper_route(), "milestone_info": paper_route()["milestone_info"].replace(
        "177 (south)", "9" * 400 + " (south)")}], 1],
    "100k landmark": [[{**paper_route(), "milestone_info": paper_route()["milestone_info"].replace(
        "Blue Door Cafe", "x" * 100_000)}], 1],
    "wrong types": [[{**paper_route(), "route_results": {"geocode_list": "here"}}], 1],
    "count mismatch": [[{**paper_route(), "route_results": {"geocode_list": [[40.7, -73.9]]}}], 1],
    "no milestones": [[{**paper_route(), "milestone_info": "nothing"}], 1],
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "bad coordinates": [[{**paper_route(), "start_place": {"relocated_geocode": [400, 1e309]}}], 1],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_route_files_get_a_clear_error_fast(tmp_path: Path, name: str) -> None:
    doc = HOSTILE[name]
    path = tmp_path / "route_infos.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    t0 = time.process_time()
    with pytest.raises(DataError, match=r"route_infos.json"):
        load_data(path)
    assert time.process_time() - t0 < 1.0


def test_errors_name_the_route_and_field(tmp_path: Path) -> None:
    routes = [paper_route(), {**paper_route(), "init_heading": "east"}]
    path = write_routes(tmp_path / "r.json", routes)
    with pytest.raises(DataError, match=r"route 1: 'init_heading' must be a number"):
        load_data(path)


def test_world_routes_play_in_file_order(tmp_path: Path) -> None:
    starts = [(40.70 + 0.01 * i, -73.99) for i in range(3)]
    path = write_routes(tmp_path / "world.json", [paper_route(90, 1, start=s) for s in starts])
    from harness_tasks.virl.plugin import VIRL_VL as task
    env = task.make_env("world", data=str(path), image_size=32)
    seen = []
    for i in range(5):
        env.reset(seed=i, options={"episode_index": i})
        seen.append(env.route.index)
    assert seen == [0, 1, 2, 0, 1]
    env = task.make_env("id", data=str(path), image_size=32)
    picks = {env.reset(seed=i, options={"episode_index": i})[1]["route_id"] for i in range(12)}
    assert len(picks) > 1  # other splits draw a route from the episode seed


def test_numpy_fallback_matches_opencv_closely(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness_tasks.virl import panorama

    if not panorama.have_opencv():
        pytest.skip("opencv-python-headless is not installed (pip install 'harness[virl-data]')")
    rng = np.random.default_rng(0)
    pano = (rng.random((128, 256, 3)) * 40 + np.linspace(0, 200, 256)[None, :, None]).astype(np.uint8)
    exact = np.asarray(panorama.perspective(pano, 33.0, 12.0, size=48)).astype(int)
    monkeypatch.setattr(panorama, "_cv2", None)
    panorama._maps.cache_clear()
    approx = np.asarray(panorama.perspective(pano, 33.0, 12.0, size=48)).astype(int)
    panorama._maps.cache_clear()
    assert np.abs(exact - approx).mean() < 8  # bilinear instead of bicubic sampling; same geometry


def test_size_caps_refuse_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness_tasks.virl import data as data_mod

    path = write_routes(tmp_path / "route_infos.json", [paper_route() for _ in range(3)])
    monkeypatch.setattr(data_mod, "MAX_ROUTE_FILE_BYTES", 100)
    with pytest.raises(DataError, match="route files are limited to 100 bytes"):
        data_mod.load_route_file(path)
    monkeypatch.setattr(data_mod, "MAX_ROUTE_FILE_BYTES", 10**9)
    monkeypatch.setattr(data_mod, "MAX_ROUTES", 2)
    with pytest.raises(DataError, match="3 routes; at most 2"):
        data_mod.load_route_file(path)
