"""Seeded cities: street graphs, street names and landmarks, one look per city style.

A city is a graph of intersections on an integer lattice (x to the east, y to the north), so every street
runs along one of the 8 compass headings. Landmarks sit at the corners of intersections (on the bisector
between two neighbouring streets) or mid-block beside a street; routes use the first as cues and the second
as destinations. Everything is drawn from ``random.Random`` seeded by (style, city seed), so a city is the
same on every machine, and it is built once per process (``get_city`` caches it).
"""

from __future__ import annotations

import functools
import random
from collections import deque
from dataclasses import dataclass

from harness_tasks.virl.geometry import vector_heading, wrap

# Kinds of places, each with the words a storefront of that kind may use.
KINDS: dict[str, tuple[str, ...]] = {
    "cafe": ("Coffee", "Cafe", "Espresso", "Roasters"),
    "bank": ("Bank", "Savings", "Credit Union"),
    "pharmacy": ("Pharmacy", "Drugstore", "Chemist"),
    "bakery": ("Bakery", "Bread Co", "Patisserie"),
    "bookstore": ("Books", "Booksellers"),
    "hotel": ("Hotel", "Inn", "Suites"),
    "restaurant": ("Kitchen", "Diner", "Bistro", "Grill"),
    "grocery": ("Market", "Grocers", "Foods"),
    "gym": ("Fitness", "Gym"),
    "florist": ("Flowers", "Florist"),
    "cinema": ("Cinema", "Theater"),
    "hardware": ("Hardware", "Tools"),
    "laundry": ("Laundry", "Cleaners"),
    "pizza": ("Pizza", "Pizzeria"),
    "barber": ("Barbers", "Salon"),
    "museum": ("Museum", "Gallery"),
    "post": ("Post Office",),
    "tea": ("Tea House", "Tea Bar"),
}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)


@dataclass(frozen=True)
class Style:
    """How a city looks and what it is called. ``world`` styles are never used for training."""

    name: str
    layout: str  # grid | radial | irregular
    size: int  # lattice width/height (grid, irregular) or number of rings (radial)
    font: str  # sign font file under tasks/virl/fonts
    sky: tuple[int, int, int]
    road: tuple[int, int, int]
    sidewalk: tuple[int, int, int]
    facades: tuple[tuple[int, int, int], ...]
    window: tuple[int, int, int]
    signs: tuple[tuple[int, int, int], ...]  # sign board colours, picked by landmark kind
    prefixes: tuple[str, ...]  # first words of landmark names
    streets: tuple[str, ...]  # street names
    street_suffixes: tuple[str, ...] = ("Street", "Avenue")
    corner_density: float = 0.55
    midblock_density: float = 0.5
    storeys: int = 4  # window rows on facades
    diagonals: int = 0  # extra diagonal avenues (grid)
    block_m: float = 90.0  # metres between neighbouring intersections: decides how many rail points a leg gets


NYC = Style(
    name="nyc", block_m=84.0, layout="grid", size=9, font="DejaVuSans-Bold.ttf",
    sky=(176, 204, 230), road=(72, 72, 76), sidewalk=(170, 166, 158),
    facades=((150, 74, 56), (122, 84, 64), (168, 104, 78), (108, 98, 92), (186, 160, 130)),
    window=(46, 56, 70), signs=((24, 60, 120), (160, 30, 40), (20, 110, 70), (230, 180, 40), (30, 30, 30),
                                (120, 40, 130)),
    prefixes=("Hudson", "Bleecker", "Gotham", "Empire", "Liberty", "Bowery", "Astor", "Lenox", "Knicker",
              "Chelsea", "Tribeca", "Harlem", "Soho", "Delancey", "Mercer", "Orchard", "Houston", "Fulton",
              "Canal", "Greene", "Spring", "Prince", "Hester", "Mott", "Varick", "Lafayette"),
    streets=("W 4th", "W 8th", "W 10th", "W 12th", "W 14th", "W 16th", "W 18th", "W 20th", "W 23rd", "1st",
             "2nd", "3rd", "Lexington", "Park", "Madison", "5th", "6th", "7th", "8th"),
    street_suffixes=("Street", "Avenue"), storeys=5, diagonals=1,
)

WORLD: tuple[Style, ...] = (
    Style(
        name="paris", block_m=110.0, layout="radial", size=4, font="DejaVuSerif-Bold.ttf",
        sky=(190, 210, 228), road=(96, 92, 90), sidewalk=(200, 194, 182),
        facades=((226, 214, 186), (214, 200, 170), (232, 224, 204), (206, 190, 160)),
        window=(70, 80, 96), signs=((20, 40, 80), (110, 20, 30), (30, 80, 60), (60, 60, 60), (150, 110, 40)),
        prefixes=("Maison", "Chez Louise", "Le Petit", "Rive Gauche", "Montmartre", "Marais", "Belleville",
                  "Saint Roch", "Lumiere", "Vendome", "Odeon", "Pigalle", "Bastille", "Etoile", "Tuileries",
                  "Mouffetard", "Ile Blanche", "Sevres", "Voltaire", "Rivoli"),
        streets=("Rivoli", "Haussmann", "Voltaire", "Lafayette", "Sebastopol", "Raspail", "Monge", "Malesherbes",
                 "Opera", "Wagram", "Clichy", "Magenta"),
        street_suffixes=("Rue", "Boulevard"), storeys=6,
    ),
    Style(
        name="london", block_m=90.0, layout="irregular", size=8, font="DejaVuSerifCondensed-Bold.ttf",
        sky=(168, 178, 190), road=(60, 62, 66), sidewalk=(150, 150, 148),
        facades=((140, 60, 48), (236, 232, 222), (120, 70, 60), (200, 196, 184), (90, 60, 50)),
        window=(40, 44, 52), signs=((16, 50, 32), (0, 36, 90), (140, 20, 30), (40, 40, 40), (190, 150, 60)),
        prefixes=("Camden", "Baker", "Notting", "Thames", "Kensington", "Mayfair", "Shoreditch", "Islington",
                  "Brixton", "Hackney", "Strand", "Belgravia", "Fleet", "Holborn", "Borough", "Clerkenwell",
                  "Marylebone", "Bloomsbury", "Peckham", "Whitechapel"),
        streets=("Baker", "Oxford", "Regent", "Fleet", "Strand", "Cheapside", "Aldgate", "Holborn", "Pall Mall",
                 "Piccadilly", "Whitehall", "Kingsway", "Marylebone", "Euston"),
        street_suffixes=("Street", "Road", "Lane"), storeys=4,
    ),
    Style(
        name="tokyo", block_m=64.0, layout="grid", size=8, font="DejaVuSansCondensed-Bold.ttf",
        sky=(200, 214, 224), road=(84, 86, 90), sidewalk=(190, 190, 186),
        facades=((200, 200, 196), (170, 172, 176), (220, 214, 200), (150, 156, 164), (236, 236, 232)),
        window=(60, 90, 120), signs=((220, 40, 60), (250, 200, 0), (0, 140, 200), (20, 20, 20), (240, 120, 0),
                                     (0, 150, 110)),
        prefixes=("Sakura", "Shibuya", "Ginza", "Asakusa", "Ueno", "Akiba", "Harajuku", "Meguro", "Shinjuku",
                  "Ebisu", "Nakano", "Kanda", "Roppongi", "Ikebukuro", "Yanaka", "Kagura", "Daikan", "Tsukiji",
                  "Hibiya", "Komaba"),
        streets=("Meiji", "Omotesando", "Yasukuni", "Chuo", "Sotobori", "Hibiya", "Aoyama", "Kasuga",
                 "Hakusan", "Kototoi", "Showa", "Shinobazu"),
        street_suffixes=("Dori", "Avenue"), storeys=7,
    ),
    Style(
        name="cairo", block_m=96.0, layout="irregular", size=8, font="DejaVuSansMono-Bold.ttf",
        sky=(222, 214, 188), road=(110, 100, 86), sidewalk=(196, 178, 146),
        facades=((210, 180, 130), (196, 160, 112), (222, 200, 160), (180, 150, 110), (236, 220, 190)),
        window=(80, 64, 48), signs=((0, 100, 90), (130, 40, 20), (20, 60, 120), (200, 140, 20), (60, 40, 30)),
        prefixes=("Nile", "Zamalek", "Khan", "Giza", "Tahrir", "Garden", "Maadi", "Heliopolis", "Qasr",
                  "Azhar", "Fustat", "Bulaq", "Dokki", "Abbas", "Sphinx", "Lotus", "Oasis", "Pharos", "Karnak",
                  "Luxor"),
        streets=("Tahrir", "Talaat Harb", "Qasr el Nil", "Ramses", "Abbas", "Gameat", "Mohandessin", "Azhar",
                 "Sherif", "Emad", "Corniche", "Nubar"),
        street_suffixes=("Street", "Road"), storeys=4,
    ),
    Style(
        name="rio", block_m=104.0, layout="radial", size=4, font="DejaVuSans-Bold.ttf",
        sky=(150, 200, 240), road=(80, 84, 80), sidewalk=(230, 226, 214),
        facades=((240, 190, 170), (170, 220, 200), (250, 230, 150), (180, 200, 240), (240, 240, 236)),
        window=(50, 90, 100), signs=((0, 120, 60), (230, 180, 0), (0, 70, 150), (200, 50, 60), (90, 40, 120)),
        prefixes=("Copacabana", "Ipanema", "Leblon", "Lapa", "Gavea", "Tijuca", "Flamengo", "Botafogo", "Urca",
                  "Gloria", "Catete", "Leme", "Barra", "Carioca", "Samba", "Sol", "Mar Azul", "Corcovado",
                  "Santa Teresa", "Joatinga"),
        streets=("Atlantica", "Vieira Souto", "Rio Branco", "Presidente Vargas", "Visconde", "Barata Ribeiro",
                 "Voluntarios", "Catete", "Lavradio", "Gomes Freire", "Ouvidor", "Mem de Sa"),
        street_suffixes=("Avenida", "Rua"), storeys=3,
    ),
    Style(
        name="sydney", block_m=92.0, layout="grid", size=8, font="DejaVuSerif-Bold.ttf",
        sky=(140, 190, 235), road=(70, 74, 80), sidewalk=(206, 200, 190),
        facades=((196, 170, 120), (226, 220, 206), (150, 110, 80), (120, 140, 150), (210, 196, 170)),
        window=(40, 70, 90), signs=((0, 60, 110), (180, 60, 20), (20, 100, 60), (220, 170, 30), (40, 40, 60)),
        prefixes=("Harbour", "Bondi", "Manly", "Coogee", "Rocks", "Darling", "Surry", "Glebe", "Newtown",
                  "Paddington", "Balmain", "Mosman", "Kirribilli", "Pyrmont", "Wattle", "Banksia", "Waratah",
                  "Kookaburra", "Opal", "Southern Cross"),
        streets=("George", "Pitt", "Elizabeth", "Macquarie", "Castlereagh", "Kent", "Sussex", "Clarence",
                 "Oxford", "Crown", "Bourke", "Liverpool", "Goulburn", "Market"),
        street_suffixes=("Street", "Parade"), storeys=3, diagonals=2,
    ),
)

STYLES: dict[str, Style] = {s.name: s for s in (NYC, *WORLD)}
TRAIN_STYLES: tuple[str, ...] = ("nyc",)
WORLD_STYLES: tuple[str, ...] = tuple(s.name for s in WORLD)


@dataclass(frozen=True)
class Landmark:
    name: str
    kind: str
    x: float
    y: float


@dataclass
class City:
    """A street graph. ``adj[node][heading] = neighbour``; headings are multiples of 45 degrees."""

    style: Style
    seed: int
    nodes: dict[int, tuple[int, int]]
    adj: dict[int, dict[int, int]]
    street_of: dict[frozenset[int], str]
    corners: dict[int, tuple[tuple[Landmark, float], ...]]  # node -> (landmark, absolute bearing)
    # (a, b) with a < b -> (landmark, absolute bearing from the street to it: which side it is on)
    midblock: dict[tuple[int, int], tuple[tuple[Landmark, float], ...]]

    def degree(self, node: int) -> int:
        return len(self.adj[node])

    def street(self, a: int, b: int) -> str:
        return self.street_of[frozenset((a, b))]

    def edge_landmarks(self, a: int, b: int) -> tuple[tuple[Landmark, float], ...]:
        return self.midblock.get((min(a, b), max(a, b)), ())


def _lattice_edges(style: Style, rng: random.Random) -> tuple[list[tuple[int, int]], list[tuple[tuple[int, int],
                                                                                                 tuple[int, int]]]]:
    pts: list[tuple[int, int]] = []
    edges: list[tuple[tuple[int, int], tuple[int, int]]] = []
    n = style.size
    if style.layout == "radial":
        # Concentric square rings joined by 8 spokes: ring segments run N/E/S/W, spokes also diagonally, so
        # turns of 45 degrees ("slightly left") happen at ring/spoke junctions.
        units = [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)]
        pts.append((0, 0))
        for r in range(1, n + 1):
            ring = [(dx * r, dy * r) for dx, dy in units]
            pts.extend(ring)
            for i in range(8):
                edges.append((ring[i], ring[(i + 1) % 8]))
                inner = (0, 0) if r == 1 else (units[i][0] * (r - 1), units[i][1] * (r - 1))
                edges.append((inner, ring[i]))
        return pts, edges
    pts = [(x, y) for x in range(n) for y in range(n)]
    for x in range(n):
        for y in range(n):
            if x + 1 < n:
                edges.append(((x, y), (x + 1, y)))
            if y + 1 < n:
                edges.append(((x, y), (x, y + 1)))
    if style.layout == "grid":
        # Broadway-like diagonal avenues cutting across the grid.
        for d in range(style.diagonals):
            off = rng.randrange(-2, 3) + (d * 3 - style.diagonals)
            for x in range(n - 1):
                y = x + off
                if 0 <= y < n - 1:
                    edges.append(((x, y), (x + 1, y + 1)))
        return pts, edges
    # irregular: drop some blocks' sides, add diagonals through some blocks (one per block so none cross)
    for x in range(n - 1):
        for y in range(n - 1):
            if rng.random() < 0.25:
                if rng.random() < 0.5:
                    edges.append(((x, y), (x + 1, y + 1)))
                else:
                    edges.append(((x, y + 1), (x + 1, y)))
    rng.shuffle(edges)
    kept = list(edges)
    for e in edges:
        if rng.random() < 0.18:
            trial = [k for k in kept if k != e]
            if _connected(pts, trial):
                kept = trial
    return pts, kept


def _connected(pts: list[tuple[int, int]], edges: list[tuple[tuple[int, int], tuple[int, int]]]) -> bool:
    adj: dict[tuple[int, int], list[tuple[int, int]]] = {p: [] for p in pts}
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    seen = {pts[0]}
    todo = deque([pts[0]])
    while todo:
        for q in adj[todo.popleft()]:
            if q not in seen:
                seen.add(q)
                todo.append(q)
    return len(seen) == len(pts)


def _names(style: Style, rng: random.Random, count: int) -> list[tuple[str, str]]:
    """``count`` distinct (name, kind) pairs such as ("Hudson Coffee", "cafe")."""
    pool = [(f"{p} {w}", k) for p in style.prefixes for k, words in KINDS.items() for w in words
            if len(p) + len(w) <= 22]
    rng.shuffle(pool)
    out, used = [], set()
    for name, kind in pool:
        if name not in used:
            used.add(name)
            out.append((name, kind))
        if len(out) == count:
            break
    return out


def build_city(style: Style, seed: int = 0) -> City:
    rng = random.Random(f"virl-city:{style.name}:{seed}")
    pts, edges = _lattice_edges(style, rng)
    ids = {p: i for i, p in enumerate(sorted(pts))}
    nodes = {i: p for p, i in ids.items()}
    adj: dict[int, dict[int, int]] = {i: {} for i in nodes}
    street_of: dict[frozenset[int], str] = {}
    lines: dict[tuple, str] = {}
    names = list(style.streets)
    rng.shuffle(names)
    for a, b in edges:
        ia, ib = ids[a], ids[b]
        h = int(vector_heading(b[0] - a[0], b[1] - a[1]))
        adj[ia][h] = ib
        adj[ib][int(wrap(h + 180))] = ia
        # Edges on one straight line (or one ring) share a street name.
        dx, dy = b[0] - a[0], b[1] - a[1]
        if style.layout == "radial":
            ra, rb = max(abs(a[0]), abs(a[1])), max(abs(b[0]), abs(b[1]))
            outer = a if ra > rb else b
            line: tuple = ("ring", ra) if ra == rb else ("spoke", _sign(outer[0]), _sign(outer[1]))
        elif dy == 0:
            line = ("row", a[1])
        elif dx == 0:
            line = ("col", a[0])
        else:
            line = ("diag", dx * dy, a[1] - a[0] * dx * dy)
        if line not in lines:
            base = names[len(lines) % len(names)]
            # Rows and rings take the first suffix, columns and spokes the second, diagonals the last.
            sfx = style.street_suffixes
            suffix = sfx[0] if line[0] in ("row", "ring") else sfx[1 % len(sfx)] if line[0] in ("col", "spoke") \
                else sfx[-1]
            lines[line] = f"{suffix} {base}" if suffix in ("Rue", "Avenida", "Rua", "Boulevard") else \
                f"{base} {suffix}"
            if len(lines) > len(names):
                lines[line] += f" {len(lines) // len(names) + 1}"
        street_of[frozenset((ia, ib))] = lines[line]
    # Landmarks: at corners (bisector between neighbouring streets) and beside blocks.
    slots_c: list[tuple[int, float]] = []
    for i in sorted(nodes):
        hs = sorted(adj[i])
        if len(hs) < 3:
            continue
        chosen: list[float] = []
        for k, h in enumerate(hs):
            nxt = hs[(k + 1) % len(hs)] + (360 if k + 1 == len(hs) else 0)
            bearing = wrap((h + nxt) / 2)
            # At most two landmarks on either side for any heading, so signs in a view stay legible.
            if rng.random() < style.corner_density and _fits(chosen, bearing):
                chosen.append(bearing)
                slots_c.append((i, bearing))
    slots_m: list[tuple[int, int, float]] = []
    for a in sorted(nodes):
        for h, b in sorted(adj[a].items()):
            if a < b:
                for side in (90, 270):
                    if rng.random() < style.midblock_density:
                        slots_m.append((a, b, wrap(h + side)))
    names_kinds = _names(style, rng, len(slots_c) + len(slots_m))
    corners: dict[int, list[tuple[Landmark, float]]] = {}
    midblock: dict[tuple[int, int], list[tuple[Landmark, float]]] = {}
    for (node, bearing), (name, kind) in zip(slots_c, names_kinds, strict=False):
        x, y = nodes[node]
        corners.setdefault(node, []).append((Landmark(name, kind, x, y), bearing))
    for (a, b, bearing), (name, kind) in zip(slots_m, names_kinds[len(slots_c):], strict=False):
        (xa, ya), (xb, yb) = nodes[a], nodes[b]
        midblock.setdefault((a, b), []).append((Landmark(name, kind, (xa + xb) / 2, (ya + yb) / 2), bearing))
    return City(style=style, seed=seed, nodes=nodes, adj=adj, street_of=street_of,
                corners={k: tuple(v) for k, v in corners.items()},
                midblock={k: tuple(v) for k, v in midblock.items()})


def _fits(chosen: list[float], bearing: float) -> bool:
    for h in range(0, 360, 45):
        right = sum(1 for b in (*chosen, bearing) if 0 < wrap(b - h) < 180)
        left = sum(1 for b in (*chosen, bearing) if wrap(b - h) > 180)
        if right > 2 or left > 2:
            return False
    return True


def _sign(v: int) -> int:
    return (v > 0) - (v < 0)


@functools.lru_cache(maxsize=32)
def get_city(style_name: str, seed: int = 0) -> City:
    """The city of a style, built once per process: envs are created per batch slot and share it."""
    if style_name not in STYLES:
        raise KeyError(f"unknown city style {style_name!r}; known styles: {', '.join(STYLES)}")
    return build_city(STYLES[style_name], seed)
