"""Which four-number hands can reach the target, and how.

A hand is identified by the sorted tuple of its four *values* (after the face-card rule), so one table
over the 1,820 multisets of values 1..13 serves both rules. The table for target 24 ships as package
data (``data/table-t24.json.gz``); any other target is computed on first use (a few seconds) and cached
under ``$XDG_CACHE_HOME/harness/generalpoints/``.

Expressions are written in *canonical minimal-parenthesis form*: parentheses appear only where dropping
them would change the value under the usual precedence and left-to-right evaluation. The "known
solutions" of a hand are all such strings over its four numbers (every operand order, every tree shape)
that evaluate exactly to the target; they define the verifier's +1 "correct prefix" reward.

Regenerate the shipped table with ``python -m tasks.generalpoints.solver --build``.
"""

from __future__ import annotations

import gzip
import itertools
import os
import sys
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import orjson

TABLE_VERSION = 1
DEFAULT_TARGET = 24
DATA_DIR = Path(__file__).resolve().parent / "data"
MAX_TARGET = 10**6  # bigger targets are pointless with four numbers <= 13 and would only waste work

Key = tuple[int, int, int, int]
Table = dict[Key, tuple[str, ...]]  # sorted values -> all known solutions, shortest first
ALL_KEYS: tuple[Key, ...] = tuple(itertools.combinations_with_replacement(range(1, 14), 4))  # type: ignore[assignment]

# An expression while building: its text and its precedence class (3 atom, 2 product, 1 sum).
Expr = tuple[str, int]


def combine(left: Expr, op: str, right: Expr) -> Expr:
    """``left op right`` with only the parentheses the value needs."""
    ls, lp = left
    rs, rp = right
    if op in "*/" and lp == 1:
        ls = f"({ls})"
    if (op == "-" and rp == 1) or (op == "*" and rp == 1) or (op == "/" and rp <= 2):
        rs = f"({rs})"
    return f"{ls}{op}{rs}", 1 if op in "+-" else 2


def _apply(a: Fraction, op: str, b: Fraction) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b if b else None


_OPS = "+-*/"


def solve_one(values: tuple[int, ...], target: int) -> str | None:
    """The shortest (then alphabetically first) canonical solution, or None when there is none."""
    sols = all_solutions(tuple(sorted(values)), target)
    return sols[0] if sols else None


def all_solutions(key: tuple[int, ...], target: int) -> tuple[str, ...]:
    """Every canonical minimal-parenthesis expression over the sorted values ``key`` that equals
    ``target``, sorted by (length, text). Read from the table when it is loaded, computed otherwise."""
    table = _TABLES.get(target)
    if table is not None and key in table:
        return table[key]
    return _compute_solutions(key, target)


def _compute_solutions(key: tuple[int, ...], target: int) -> tuple[str, ...]:
    """Subsets below the full hand come from the memoised :func:`_reachable`; at the top the partner
    value each operator needs is solved for and looked up rather than searched."""
    n = len(key)
    if n == 1:
        return (str(key[0]),) if key[0] == target else ()
    full = (1 << n) - 1
    t = Fraction(target)
    found: set[str] = set()
    sub = (full - 1) & full
    while sub:
        left = _reachable(_pick(key, sub))
        right = _reachable(_pick(key, full ^ sub))
        for a, aexprs in left.items():
            for op, bs in _partners(a, t, right):
                for b in bs:
                    for x in aexprs:
                        for y in right[b]:
                            found.add(combine(x, op, y)[0])
        sub = (sub - 1) & full
    return tuple(sorted(found, key=lambda s: (len(s), s)))


def _pick(values: tuple[int, ...], mask: int) -> tuple[int, ...]:
    return tuple(v for i, v in enumerate(values) if mask >> i & 1)


def _partners(a: Fraction, t: Fraction, right: dict[Fraction, tuple[Expr, ...]]
              ) -> list[tuple[str, list[Fraction]]]:
    """For each operator, the values b in ``right`` with ``a op b == t`` (solved for b, not searched)."""
    def have(b: Fraction) -> list[Fraction]:
        return [b] if b in right else []

    out = [("+", have(t - a)), ("-", have(a - t))]
    if a:
        out.append(("*", have(t / a)))
    elif t == 0:
        out.append(("*", list(right)))  # 0 * anything == 0
    if t:
        out.append(("/", [b for b in have(a / t) if b]))
    elif a == 0:
        out.append(("/", [b for b in right if b]))  # 0 / b == 0 for any non-zero b
    return out


@lru_cache(maxsize=1024)
def _reachable(values: tuple[int, ...]) -> dict[Fraction, tuple[Expr, ...]]:
    """Every value a sorted multiset of numbers can make, with every canonical expression for it.
    Memoised: there are only 559 multisets of one to three values from 1..13."""
    if len(values) == 1:
        return {Fraction(values[0]): ((str(values[0]), 3),)}
    full = (1 << len(values)) - 1
    out: dict[Fraction, dict[Expr, None]] = {}
    sub = (full - 1) & full
    while sub:
        left = _reachable(_pick(values, sub))
        right = _reachable(_pick(values, full ^ sub))
        for a, aexprs in left.items():
            for b, bexprs in right.items():
                for op in _OPS:
                    val = _apply(a, op, b)
                    if val is None:
                        continue
                    bucket = out.setdefault(val, {})
                    for x in aexprs:
                        for y in bexprs:
                            bucket[combine(x, op, y)] = None
        sub = (sub - 1) & full
    return {v: tuple(e) for v, e in out.items()}


def is_solution_prefix(key: tuple[int, ...], target: int, prefix: str) -> bool:
    """Whether ``prefix`` (whitespace-free) is a token prefix of a known solution of the hand: a string
    prefix that does not cut a number in two ("1" is not a prefix of "10+...")."""
    if not prefix:
        return False
    n = len(prefix)
    cut_digit = prefix[-1].isdigit()
    for sol in all_solutions(key, target):
        if sol.startswith(prefix) and not (cut_digit and len(sol) > n and sol[n].isdigit()):
            return True
    return False


# ----------------------------------------------------------------------------------------- tables


def build_table(target: int) -> Table:
    """All known solutions (shortest first; empty when unsolvable) for each of the 1,820 multisets."""
    return {k: _compute_solutions(k, target) for k in ALL_KEYS}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "generalpoints"


def _table_file(target: int) -> str:
    return f"table-t{target}-v{TABLE_VERSION}.json.gz" if target != DEFAULT_TARGET else "table-t24.json.gz"


def _encode(target: int, table: Table) -> bytes:
    doc = {"version": TABLE_VERSION, "target": target, "multisets": len(table),
           "solutions": {",".join(map(str, k)): v for k, v in table.items()}}
    return gzip.compress(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), mtime=0)


def _decode(blob: bytes, target: int) -> Table:
    doc = orjson.loads(gzip.decompress(blob))
    if doc.get("version") != TABLE_VERSION or doc.get("target") != target:
        raise ValueError("stale or foreign table")
    table = {tuple(int(x) for x in k.split(",")): tuple(v) for k, v in doc["solutions"].items()}
    if len(table) != len(ALL_KEYS):
        raise ValueError("incomplete table")
    return table  # type: ignore[return-value]


_TABLES: dict[int, Table] = {}


def load_table(target: int = DEFAULT_TARGET) -> Table:
    """The solvability table for ``target``: shipped for 24, else cached on disk after a first build."""
    if target in _TABLES:
        return _TABLES[target]
    if not isinstance(target, int) or isinstance(target, bool) or abs(target) > MAX_TARGET:
        raise ValueError(f"target must be an integer with |target| <= {MAX_TARGET}, got {target!r}")
    shipped = DATA_DIR / _table_file(target)
    cached = cache_dir() / _table_file(target)
    table = None
    for path in (shipped, cached):
        if path.is_file():
            try:
                table = _decode(path.read_bytes(), target)
                break
            except (OSError, ValueError, KeyError, gzip.BadGzipFile, orjson.JSONDecodeError):
                continue  # a corrupt or stale cache file is rebuilt below
    if table is None:
        table = build_table(target)
        try:  # caching is an optimisation: a read-only home must not break the task
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
            tmp.write_bytes(_encode(target, table))
            os.replace(tmp, cached)
        except OSError:
            pass
    _TABLES[target] = table
    return table


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "--build":
        print("usage: python -m tasks.generalpoints.solver --build [TARGET]", file=sys.stderr)
        return 2
    target = int(argv[1]) if len(argv) > 1 else DEFAULT_TARGET
    table = build_table(target)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    out = DATA_DIR / _table_file(target)
    out.write_bytes(_encode(target, table))
    solvable = sum(bool(v) for v in table.values())
    print(f"wrote {out}: {len(table)} multisets, {solvable} solvable for target {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
