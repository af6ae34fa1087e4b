"""The solution strings of a hand, exactly as the paper's solver writes them.

The paper's GeneralPoints env decides two things with its solver: which hands are dealt (a hand is kept only
if the solver finds a solution) and which unfinished formulas earn the +1 "partial solution" reward (a
formula that is a string prefix of one of the hand's solution strings). So harness must produce the same
*strings*, not just the same solvability.

The paper's procedure, restated: for every distinct ordering of the four numbers and every choice of three
operators from ``+-*/``, lay the expression out as ``a o b o c o d`` and try it with no brackets and with each
of six bracket placements: ``(a o b) o c o d``, ``(a o b o c) o d``, ``a o (b o c) o d``, ``a o (b o c o d)``,
``a o b o (c o d)`` and ``(a o b) o (c o d)``. A string is a solution when its exact value (usual precedence,
left to right) is the target; a division by zero anywhere rules it out. Trees that need nested brackets, such
as ``a/(b/(c-d))``, are not tried, so a hand solvable only that way is never dealt - as in the paper.

All 13**4 ordered hands are evaluated at once with numpy on exact integer fractions, so building the whole
table for a target takes well under a second; tables are memoised per process.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from functools import lru_cache

import numpy as np

DEFAULT_TARGET = 24
MAX_TARGET = 10**6  # four numbers <= 13 cannot get anywhere near; bigger targets only waste work
OPS = "+-*/"

Key = tuple[int, int, int, int]
ALL_KEYS: tuple[Key, ...] = tuple(itertools.combinations_with_replacement(range(1, 14), 4))  # type: ignore[assignment]

# Where the brackets go, as (open before operand i, close after operand j) pairs over operands 0..3.
# The last entry is the paper's "double brackets case".
BRACKETS: tuple[tuple[tuple[int, int], ...], ...] = (
    (), ((0, 1),), ((0, 2),), ((1, 2),), ((1, 3),), ((2, 3),), ((0, 1), (2, 3)),
)


def layout(numbers: tuple[int, ...] | tuple[str, ...], ops: tuple[str, ...], brackets: tuple[tuple[int, int], ...]
           ) -> str:
    """The expression string for one ordering, operator triple and bracket placement."""
    opens = {i for i, _ in brackets}
    closes = {j for _, j in brackets}
    out = []
    for i, n in enumerate(numbers):
        if i in opens:
            out.append("(")
        out.append(str(n))
        if i in closes:
            out.append(")")
        if i < len(ops):
            out.append(ops[i])
    return "".join(out)


# --------------------------------------------------------------------------- vectorised exact evaluation

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def _postfix(ops: tuple[str, ...], brackets: tuple[tuple[int, int], ...]) -> list[int | str]:
    """The expression ``layout(0..3, ops, brackets)`` in postfix form (operand indices and operators)."""
    tokens: list[int | str] = []
    opens = {i for i, _ in brackets}
    closes = {j for _, j in brackets}
    for i in range(4):
        if i in opens:
            tokens.append("(")
        tokens.append(i)
        if i in closes:
            tokens.append(")")
        if i < 3:
            tokens.append(ops[i])
    out: list[int | str] = []
    stack: list[str] = []
    for t in tokens:
        if isinstance(t, int):
            out.append(t)
        elif t == "(":
            stack.append(t)
        elif t == ")":
            while stack[-1] != "(":
                out.append(stack.pop())
            stack.pop()
        else:
            while stack and stack[-1] != "(" and _PREC[stack[-1]] >= _PREC[t]:
                out.append(stack.pop())
            stack.append(t)
    out.extend(reversed(stack))
    return out


@lru_cache(maxsize=1)
def _ordered_hands() -> np.ndarray:
    """Every ordered hand of values 1..13: shape (13**4, 4), int64."""
    return np.array(list(itertools.product(range(1, 14), repeat=4)), dtype=np.int64)


def _evaluate(postfix: list[int | str], hands: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numerators, denominators and a validity mask (no division by zero) of one expression over all hands.
    Values stay exact: every intermediate is a fraction of small integers (|n|, |d| < 13**4)."""
    num_stack: list[np.ndarray] = []
    den_stack: list[np.ndarray] = []
    ok = np.ones(len(hands), dtype=bool)
    for t in postfix:
        if isinstance(t, int):
            num_stack.append(hands[:, t].copy())
            den_stack.append(np.ones(len(hands), dtype=np.int64))
            continue
        bn, bd = num_stack.pop(), den_stack.pop()
        an, ad = num_stack.pop(), den_stack.pop()
        if t == "+":
            n, d = an * bd + bn * ad, ad * bd
        elif t == "-":
            n, d = an * bd - bn * ad, ad * bd
        elif t == "*":
            n, d = an * bn, ad * bd
        else:
            ok &= bn != 0
            n, d = an * bd, ad * np.where(bn == 0, 1, bn)
        g = np.gcd(n, d)
        g[g == 0] = 1
        num_stack.append(n // g)
        den_stack.append(d // g)
    return num_stack[0], den_stack[0], ok


@lru_cache(maxsize=8)
def solution_table(target: int = DEFAULT_TARGET) -> dict[Key, tuple[str, ...]]:
    """Sorted values -> the paper's solution strings for that multiset, sorted (empty when it is unsolvable).

    Sorted tuples rather than sets: a prefix lookup is a bisection, and tuples of strings drop out of Python's
    garbage collector, where sets of ~100,000 strings would make every full collection take milliseconds."""
    if not isinstance(target, int) or isinstance(target, bool) or abs(target) > MAX_TARGET:
        raise ValueError(f"target must be an integer with |target| <= {MAX_TARGET}, got {target!r}")
    hands = _ordered_hands()
    found: dict[Key, set[str]] = {k: set() for k in ALL_KEYS}
    for ops in itertools.product(OPS, repeat=3):
        for br in BRACKETS:
            num, den, ok = _evaluate(_postfix(ops, br), hands)
            hit = ok & (num == target * den)
            for row in hands[hit]:
                nums = tuple(int(x) for x in row)
                found[tuple(sorted(nums))].add(layout(nums, ops, br))  # type: ignore[index]
    return {k: tuple(sorted(v)) for k, v in found.items()}


def solutions(values: tuple[int, ...] | list[int], target: int = DEFAULT_TARGET) -> tuple[str, ...]:
    """The paper's solution strings of a hand (any order of its values)."""
    key = tuple(sorted(values))
    if len(key) != 4 or not all(1 <= v <= 13 for v in key):
        return _solve_any(key, target)
    return solution_table(target)[key]  # type: ignore[index]


@lru_cache(maxsize=4096)
def _solve_any(key: tuple[int, ...], target: int) -> tuple[str, ...]:
    """The same procedure, one hand at a time, for values outside 1..13 (hands given by a caller)."""
    if len(key) != 4:
        return ()
    from fractions import Fraction

    out = set()
    for perm in set(itertools.permutations(key)):
        for ops in itertools.product(OPS, repeat=3):
            for br in BRACKETS:
                vals = [Fraction(v) for v in perm]
                try:
                    value = _eval_postfix(_postfix(ops, br), vals)
                except ZeroDivisionError:
                    continue
                if value == target:
                    out.add(layout(perm, ops, br))
    return tuple(sorted(out))


def _eval_postfix(postfix: list[int | str], vals: list) -> object:
    stack: list = []
    for t in postfix:
        if isinstance(t, int):
            stack.append(vals[t])
            continue
        b, a = stack.pop(), stack.pop()
        stack.append(a + b if t == "+" else a - b if t == "-" else a * b if t == "*" else a / b)
    return stack[0]


def is_prefix(sols: tuple[str, ...], text: str) -> bool:
    """The paper's ``any(sol.startswith(text) for sol in solutions)`` on sorted solution strings: the strings
    starting with ``text`` are contiguous and the first of them is the first string >= ``text``."""
    i = bisect_left(sols, text)
    return i < len(sols) and sols[i].startswith(text)


def is_solvable(values: tuple[int, ...] | list[int], target: int = DEFAULT_TARGET) -> bool:
    return bool(solutions(values, target))


def preferred_solution(values: tuple[int, ...] | list[int], target: int = DEFAULT_TARGET) -> str | None:
    """The shortest solution (then the alphabetically first): the expert's answer."""
    return _preferred(tuple(sorted(values)), target)


@lru_cache(maxsize=4096)
def _preferred(key: tuple[int, ...], target: int) -> str | None:
    sols = solutions(key, target)
    return min(sols, key=lambda s: (len(s), s)) if sols else None
