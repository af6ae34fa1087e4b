"""A formula's tokens and its value, judged the way the paper's verifier judges them.

The paper tokenises a formula with ``\\d+|[+\\-*/()]`` (Unicode digits included, as Python's ``\\d`` is) and
evaluates it with Python's ``eval``. Here nothing is evaluated as code: :func:`value` computes the exact value
of a token sequence the verifier has already checked, and returns None in every case where Python's ``eval``
raises (so the paper's ``except`` branch runs):

* an unfinished formula: it ends with an operator or ``(``, or a ``(`` is never closed;
* a number literal Python does not accept: a non-ASCII digit, or a leading zero (``07``);
* brackets nested more than 200 deep (Python's parser limit);
* a division by zero.

The one intended difference: the value is exact (a fraction), where the paper's float arithmetic misses some
correct answers such as ``8/(3-8/3)`` (23.999999999999996 in floats).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

TOKEN = re.compile(r"\d+|[+\-*/()]")
NUMBER = re.compile(r"\d+")
PY_MAX_NESTING = 200  # Python raises "too many nested parentheses" beyond this depth
_ASCII_DIGITS = frozenset("0123456789")
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def tokens(formula: str) -> list[str]:
    return TOKEN.findall(formula)


def number_value(token: str) -> int | None:
    """``int(token)`` as Python computes it (Unicode digits, leading zeros), or None when Python refuses
    (more than 4,300 digits)."""
    try:
        return int(token)
    except ValueError:
        return None


def _python_literal(token: str) -> bool:
    if not set(token) <= _ASCII_DIGITS:
        return False
    return len(token) == 1 or token[0] != "0" or set(token) == {"0"}


def value(toks: Sequence[str]) -> Fraction | None:
    """The exact value of a checked token sequence, or None where Python's ``eval`` would raise."""
    # values are (numerator, denominator) pairs of ints: exact, and much faster than Fraction objects
    nums: list[int] = []
    dens: list[int] = []
    ops: list[str] = []
    depth = 0
    expect_operand = True

    def reduce() -> bool:
        op = ops.pop()
        bn, bd = nums.pop(), dens.pop()
        an, ad = nums[-1], dens[-1]
        if op == "+":
            nums[-1], dens[-1] = an * bd + bn * ad, ad * bd
        elif op == "-":
            nums[-1], dens[-1] = an * bd - bn * ad, ad * bd
        elif op == "*":
            nums[-1], dens[-1] = an * bn, ad * bd
        else:
            if bn == 0:
                return False
            nums[-1], dens[-1] = an * bd, ad * bn
        return True

    for tok in toks:
        if tok == "(":
            if not expect_operand:
                return None
            depth += 1
            if depth > PY_MAX_NESTING:
                return None
            ops.append(tok)
        elif tok == ")":
            if expect_operand or depth == 0:
                return None
            depth -= 1
            while ops[-1] != "(":
                if not reduce():
                    return None
            ops.pop()
        elif tok in _PREC:
            if expect_operand:
                return None
            prec = _PREC[tok]
            while ops and ops[-1] != "(" and _PREC[ops[-1]] >= prec:
                if not reduce():
                    return None
            ops.append(tok)
            expect_operand = True
        else:
            if not expect_operand or not _python_literal(tok):
                return None
            nums.append(int(tok))
            dens.append(1)
            expect_operand = False
    if expect_operand or depth:
        return None
    while ops:
        if not reduce():
            return None
    return Fraction(nums[0], dens[0]) if len(nums) == 1 else None


def equals(toks: Sequence[str], target: int) -> bool:
    """Whether a checked token sequence evaluates (as Python would, but exactly) to ``target``."""
    v = value(toks)
    return v is not None and v == target
