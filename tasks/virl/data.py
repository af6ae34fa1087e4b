"""The paper's released V-IRL data (``--data DIR``), read as untrusted input.

Layout (as in the paper's ``nyc_1k_routes/`` and its world routes)::

    DIR/route_infos.json       [routes, count]
    DIR/gps_pano_mapping.pkl   {(lat, lng): panorama id}  (optional: without it points are not snapped)
    DIR/street_views/          <id>.jpg and <id>.metadata.json ("rotation") per panorama (optional: virl-vl then
                               draws its own street views from the landmarks)

``--data FILE`` takes a route file alone. Each route has ``start_place.relocated_geocode`` ([lat, lng]; an address
string needs online geocoding and is refused), ``init_heading`` (missing or 0: random each episode),
``route_results.geocode_list`` (the leg ends, one per milestone) and ``milestone_info`` (the paper's milestone
text). Every file is validated with errors naming the file, route index and field; sizes are capped and parsing
is linear. The pickle is read by an unpickler that admits plain dicts, tuples, lists, numbers and strings only:
anything that would import or call code is refused before it can run.
"""

from __future__ import annotations

import functools
import io
import math
import os
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from harness_tasks.virl.geodesy import Point, haversine_m
from harness_tasks.virl.instructions import MilestoneError, milestones_from_dicts, parse_milestone_text
from harness_tasks.virl.routes import Route, scenes_from_milestones

ROUTE_FILE = "route_infos.json"
MAPPING_FILE = "gps_pano_mapping.pkl"
VIEWS_DIR = "street_views"
MAX_ROUTE_FILE_BYTES = 256 * 2**20
MAX_ROUTES = 200_000
MAX_MILESTONES = 64
MAX_MILESTONE_CHARS = 50_000
MAX_LANDMARK_CHARS = 500
MAX_MAPPING_BYTES = 1024 * 2**20
MAX_PANORAMA_BYTES = 64 * 2**20
MAPPING_RADIUS_M = 20.0  # the paper's MAPPING_RADIUS
_PANO_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


class DataError(ValueError):
    """Released data that cannot be used; the message names the file and what is wrong."""


# ---------------------------------------------------------------------------------------------- routes


def _point(value: Any, where: str) -> Point:
    if isinstance(value, dict) and {"lat", "lng"} <= set(value):
        value = [value["lat"], value["lng"]]
    if isinstance(value, str):
        raise DataError(f"{where} is an address ({value[:60]!r}); it needs online geocoding, which harness does not "
                        "do: give [lat, lng]")
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise DataError(f"{where} must be [lat, lng], got {_show(value)}")
    lat, lng = value
    for v in (lat, lng):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise DataError(f"{where} must hold two finite numbers, got {_show(value)}")
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise DataError(f"{where} = {_show(value)} is not a (lat, lng) position")
    return (float(lat), float(lng))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def validate_routes(doc: Any, source: str) -> list[Route]:
    """Routes from a parsed route file, or :class:`DataError` naming every problem (route index, field)."""
    if not isinstance(doc, list) or len(doc) != 2 or not isinstance(doc[0], list):
        raise DataError(f"{source}: expected a JSON array [routes, count]")
    routes, _count = doc
    if not routes:
        raise DataError(f"{source}: the file holds no routes")
    if len(routes) > MAX_ROUTES:
        raise DataError(f"{source}: {len(routes)} routes; at most {MAX_ROUTES} are supported")
    problems: list[str] = []
    out: list[Route] = []
    for i, r in enumerate(routes):
        try:
            out.append(_route(r, i, source))
        except DataError as exc:
            problems.append(str(exc))
            if len(problems) >= 25:
                problems.append("... (stopped after 25 problems)")
                break
    if problems:
        raise DataError(f"{source}: {len(problems)} problem(s) in the route file:\n  " + "\n  ".join(problems))
    return out


def _route(r: Any, i: int, source: str) -> Route:
    where = f"route {i}"
    if not isinstance(r, dict):
        raise DataError(f"{where}: not an object")
    start_place = r.get("start_place")
    if not isinstance(start_place, dict) or "relocated_geocode" not in start_place:
        raise DataError(f"{where}: missing field 'start_place.relocated_geocode'")
    start = _point(start_place["relocated_geocode"], f"{where}: 'start_place.relocated_geocode'")
    init = r.get("init_heading", 0)
    if isinstance(init, bool) or not isinstance(init, int | float) or not math.isfinite(init) or abs(init) > 720:
        raise DataError(f"{where}: 'init_heading' must be a number of degrees, got {_show(init)}")
    results = r.get("route_results")
    if not isinstance(results, dict) or not isinstance(results.get("geocode_list"), list):
        raise DataError(f"{where}: missing field 'route_results.geocode_list' (a list of [lat, lng])")
    points = results["geocode_list"]
    text = r.get("milestone_info")
    if not isinstance(text, str):
        raise DataError(f"{where}: 'milestone_info' must be the milestone text, got {_show(text)}")
    if len(text) > MAX_MILESTONE_CHARS:
        raise DataError(f"{where}: 'milestone_info' is {len(text)} characters; at most {MAX_MILESTONE_CHARS}")
    try:
        milestones = milestones_from_dicts(parse_milestone_text(text))
    except MilestoneError as exc:
        raise DataError(f"{where}: 'milestone_info' {exc}") from None
    if not milestones:
        raise DataError(f"{where}: 'milestone_info' has no milestone blocks")
    if len(milestones) > MAX_MILESTONES:
        raise DataError(f"{where}: {len(milestones)} milestones; at most {MAX_MILESTONES}")
    for j, m in enumerate(milestones):
        if len(m.landmarks) > MAX_LANDMARK_CHARS:
            raise DataError(f"{where}, milestone {j}: 'landmarks' is {len(m.landmarks)} characters; at most "
                            f"{MAX_LANDMARK_CHARS}")
    if len(points) != len(milestones):
        raise DataError(f"{where}: 'route_results.geocode_list' has {len(points)} points but 'milestone_info' has "
                        f"{len(milestones)} milestones (one point per milestone)")
    ends = tuple(_point(p, f"{where}: 'route_results.geocode_list[{j}]'") for j, p in enumerate(points))
    dest = r.get("dest_place")
    name = str(dest.get("name", ""))[:80] if isinstance(dest, dict) else ""
    ms = tuple(milestones)
    return Route(route_id=f"{source}#{i}" + (f" ({name})" if name else ""), source=source, city="nyc", start=start,
                 init_heading=float(init), milestones=ms, ends=ends, planar=False, scenes=scenes_from_milestones(ms),
                 index=i)


def load_route_file(path: Path) -> list[Route]:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: {exc.strerror or exc}") from None
    if size > MAX_ROUTE_FILE_BYTES:
        raise DataError(f"{path}: {size} bytes; route files are limited to {MAX_ROUTE_FILE_BYTES} bytes")
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from None
    except MemoryError:
        raise DataError(f"{path}: too large to load") from None
    return validate_routes(doc, path.name)


# --------------------------------------------------------------------------------------------- mapping


class _PlainUnpickler(pickle.Unpickler):
    """Admits only what pickle builds without naming a global: dicts, lists, tuples, sets, numbers, strings."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"it refers to {module}.{name}; only plain dicts, tuples, lists, numbers and "
                                     "strings are accepted (nothing that imports or runs code)")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("it uses persistent ids; only plain data is accepted")


def read_plain_pickle(path: Path, max_bytes: int = MAX_MAPPING_BYTES) -> Any:
    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(f"{path}: {size} bytes; at most {max_bytes}")
    try:
        return _PlainUnpickler(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            RecursionError, MemoryError, UnicodeDecodeError, OverflowError) as exc:
        raise DataError(f"{path}: refused: {exc}") from None


class PanoramaMapping:
    """The paper's (lat, lng) -> panorama id mapping, with its snapping rule: an exact key first, else the
    nearest key within 20 m (haversine), else nothing. A grid index keeps lookups fast on large mappings."""

    CELL = 0.001  # degrees; a 3x3 block of cells spans > 20 m at any latitude below 79 degrees

    def __init__(self, mapping: dict[Point, str], source: str) -> None:
        self.mapping = mapping
        self.source = source
        self.keys = list(mapping)
        self._arr = np.array(self.keys, dtype=np.float64).reshape(-1, 2)
        self._cells: dict[tuple[int, int], list[int]] = {}
        for i, (lat, lng) in enumerate(self.keys):
            self._cells.setdefault(self._cell(lat, lng), []).append(i)

    def _cell(self, lat: float, lng: float) -> tuple[int, int]:
        return math.floor(lat / self.CELL), math.floor(lng / self.CELL)

    def snap(self, p: Point) -> Point | None:
        p = (float(p[0]), float(p[1]))
        if p in self.mapping:
            return p
        if abs(p[0]) > 75:  # cells get too narrow in longitude: look at every key
            idx = np.arange(len(self.keys))
        else:
            ci, cj = self._cell(*p)
            near = [i for di in (-1, 0, 1) for dj in (-1, 0, 1) for i in self._cells.get((ci + di, cj + dj), ())]
            if not near:
                return None
            idx = np.array(sorted(near))
        pts = self._arr[idx]
        d = _haversine_vec(p[0], p[1], pts[:, 0], pts[:, 1])
        k = int(np.argmin(d))  # ties go to the first key in the file's order, as with the paper's argmin
        return self.keys[int(idx[k])] if d[k] < MAPPING_RADIUS_M else None

    def pano(self, p: Point) -> str | None:
        key = self.snap(p)
        return None if key is None else self.mapping[key]


def _haversine_vec(lat1: float, lon1: float, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    lon1r, lat1r, lon2r, lat2r = np.radians(lon1), np.radians(lat1), np.radians(lon2), np.radians(lat2)
    a = np.sin((lat2r - lat1r) / 2.0) ** 2 + np.cos(lat1r) * np.cos(lat2r) * np.sin((lon2r - lon1r) / 2.0) ** 2
    return 6371.0 * 2 * np.arcsin(np.sqrt(a)) * 1000


def load_mapping(path: Path) -> PanoramaMapping:
    raw = read_plain_pickle(path)
    if not isinstance(raw, dict) or not raw:
        raise DataError(f"{path}: expected a non-empty dict from (lat, lng) to panorama id, got {type(raw).__name__}")
    out: dict[Point, str] = {}
    for k, v in raw.items():
        if not (isinstance(k, tuple) and len(k) == 2 and all(isinstance(x, int | float) and not isinstance(x, bool)
                                                               and math.isfinite(x) for x in k)):
            raise DataError(f"{path}: key {_show(k)} is not a (lat, lng) pair of numbers")
        if not isinstance(v, str) or not _PANO_ID.match(v):
            raise DataError(f"{path}: the panorama id for {_show(k)} is {_show(v)}; ids are 1-128 letters, digits, "
                            "'_' or '-'")
        out[(float(k[0]), float(k[1]))] = v
    return PanoramaMapping(out, path.name)


# ---------------------------------------------------------------------------------------------- views


class StreetViews:
    """Panoramas on disk, each decoded once (a small cache: a rail point's four views share one panorama)."""

    def __init__(self, directory: Path, cache: int = 4) -> None:
        self.dir = directory
        self._cache: OrderedDict[str, tuple[np.ndarray, float]] = OrderedDict()
        self._size = cache

    def load(self, pano_id: str) -> tuple[np.ndarray, float]:
        hit = self._cache.get(pano_id)
        if hit is not None:
            self._cache.move_to_end(pano_id)
            return hit
        if not _PANO_ID.match(pano_id):
            raise DataError(f"panorama id {_show(pano_id)} is not a plain name")
        img_path = self.dir / f"{pano_id}.jpg"
        meta_path = self.dir / f"{pano_id}.metadata.json"
        for p in (img_path, meta_path):
            if not p.is_file():
                raise DataError(f"{p}: missing (the panorama mapping names {pano_id!r})")
        try:
            meta = orjson.loads(meta_path.read_bytes()[:1_000_000])
        except orjson.JSONDecodeError as exc:
            raise DataError(f"{meta_path}: not valid JSON: {exc}") from None
        rotation = meta.get("rotation") if isinstance(meta, dict) else None
        if isinstance(rotation, bool) or not isinstance(rotation, int | float) or not math.isfinite(rotation):
            raise DataError(f"{meta_path}: field 'rotation' must be a finite number, got {_show(rotation)}")
        pano = _read_rgb(img_path)
        self._cache[pano_id] = (pano, float(rotation))
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return pano, float(rotation)


def _read_rgb(path: Path) -> np.ndarray:
    if path.stat().st_size > MAX_PANORAMA_BYTES:
        raise DataError(f"{path}: larger than {MAX_PANORAMA_BYTES} bytes")
    from harness_tasks.virl import panorama

    if panorama.have_opencv():  # the paper decodes with OpenCV
        import cv2

        data = np.frombuffer(path.read_bytes(), np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f"{path}: not a readable image")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.width * im.height > 100_000_000:
                raise DataError(f"{path}: {im.width}x{im.height} is too large a panorama")
            return np.asarray(im.convert("RGB"))
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: not a readable image: {exc}") from None


# ---------------------------------------------------------------------------------------------- a data set


class DataSet:
    def __init__(self, routes: list[Route], mapping: PanoramaMapping | None, views: StreetViews | None,
                 source: str) -> None:
        self.routes = routes
        self.mapping = mapping
        self.views = views
        self.source = source


def load_data(path: str | os.PathLike[str]) -> DataSet:
    """A route file, or a folder in the paper's layout. Cached per process by path and modification times."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"V-IRL data not found: {p}")
    route_file = p / ROUTE_FILE if p.is_dir() else p
    if not route_file.is_file():
        raise DataError(f"{p}: no {ROUTE_FILE} in this folder (the paper's layout: route_infos.json, "
                        "gps_pano_mapping.pkl, street_views/)")
    stamps = tuple(_mtime(x) for x in (route_file, p / MAPPING_FILE, p / VIEWS_DIR)) if p.is_dir() else \
        (_mtime(route_file),)
    return _load_cached(str(p.resolve()), stamps)


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return -1.0


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, _stamps: tuple[float, ...]) -> DataSet:
    p = Path(path)
    routes = load_route_file(p / ROUTE_FILE if p.is_dir() else p)
    mapping = views = None
    if p.is_dir() and (p / MAPPING_FILE).is_file():
        mapping = load_mapping(p / MAPPING_FILE)
    if p.is_dir() and (p / VIEWS_DIR).is_dir():
        if mapping is None:
            raise DataError(f"{p}: {VIEWS_DIR}/ needs {MAPPING_FILE} to know which panorama is where")
        views = StreetViews(p / VIEWS_DIR)
    return DataSet(routes, mapping, views, p.name)


__all__ = ["DataError", "DataSet", "PanoramaMapping", "StreetViews", "haversine_m", "load_data", "read_plain_pickle",
           "validate_routes"]
