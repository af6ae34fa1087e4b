"""Formula checking: tokenizer, a prefix-aware syntax check, and an exact rational evaluator.

No ``eval`` and no floats. The input is capped at :data:`MAX_FORMULA_CHARS` before anything else, so every
step is linear in a small bound; nesting depth is capped too. Grammar (binary operators only, the usual
precedence, left to right)::

    expr := term (('+' | '-') term)*      term := atom (('*' | '/') atom)*      atom := NUMBER | '(' expr ')'
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

MAX_FORMULA_CHARS = 200
MAX_DEPTH = 16
MAX_NUMBER_DIGITS = 6  # longer literals are never a card value; they are kept as text, never int()-ed

ALLOWED_TEXT = "digits 0-9, + - * / ( ) = and spaces"
_ILLEGAL = re.compile(r"[^0-9+\-*/()=\s]")
_TOKEN = re.compile(r"[0-9]+|[-+*/()=]")
_LOOKALIKES = {"×": "*", "x": "*", "X": "*", "·": "*", "÷": "/", "−": "-", "–": "-", "^": "(no powers)",
               "[": "(", "]": ")", "{": "(", "}": ")"}


class Syntax(NamedTuple):
    """The shape of a token sequence: ``status`` is ``complete`` (a whole expression), ``prefix`` (could
    still become one) or ``invalid``; ``problem`` says why when it is not complete. For a complete
    expression, ``num``/``den`` is its exact value as an unreduced fraction (``den`` 0: division by zero)."""

    status: str
    problem: str = ""
    num: int = 0
    den: int = 1
    numbers: Sequence[int] = ()  # the literals in order (-1: absurdly long); empty when invalid


def has_illegal(formula: str) -> bool:
    return _ILLEGAL.search(formula) is not None


def illegal_chars(formula: str) -> list[str]:
    """Distinct characters outside the allowed set, in order of appearance (at most 5)."""
    out: list[str] = []
    for m in _ILLEGAL.finditer(formula):
        ch = m.group()
        if ch not in out:
            out.append(ch)
            if len(out) == 5:
                break
    return out


def lookalike_hint(chars: list[str]) -> str:
    hints = [f"'{c}' -> '{_LOOKALIKES[c]}'" for c in chars if c in _LOOKALIKES]
    return f" (replace {', '.join(hints)})" if hints else ""


def tokenize(formula: str) -> list[str]:
    """Tokens of a formula already known to hold only allowed characters (spaces are dropped)."""
    return _TOKEN.findall(formula)


_KIND = {"+": 1, "-": 1, "*": 2, "/": 2, "(": 3, ")": 4}  # 1, 2: operator precedence; numbers are absent


def _reduce(nums: list[int], dens: list[int], op: str) -> bool:
    """Apply ``op`` to the top two values in place; True when it divided by zero."""
    bn = nums.pop()
    bd = dens.pop()
    if op == "+":
        nums[-1] = nums[-1] * bd + bn * dens[-1]
        dens[-1] *= bd
    elif op == "-":
        nums[-1] = nums[-1] * bd - bn * dens[-1]
        dens[-1] *= bd
    elif op == "*":
        nums[-1] *= bn
        dens[-1] *= bd
    else:
        nums[-1] *= bd
        dens[-1] *= bn
        return bn == 0
    return False


def analyse(tokens: Sequence[str]) -> Syntax:
    """Syntax check and exact evaluation in one left-to-right pass (shunting-yard with immediate
    reduction). Values are unreduced (numerator, denominator) integer pairs, which stay tiny for four
    small numbers; a division by zero is reported as denominator 0. This is the verifier's hot path, so
    it only tracks state; :func:`_diagnose` explains an invalid sequence."""
    if not tokens:
        return Syntax("prefix", "the formula is empty")
    kind = _KIND.get
    want_operand = True
    depth = 0
    nums: list[int] = []  # value stack: numerators and denominators side by side
    dens: list[int] = []
    ops: list[str] = []
    seen: list[int] = []
    zero_div = False
    for tok in tokens:
        k = kind(tok)
        if k is None:  # a number
            if not want_operand:
                return _diagnose(tokens)
            v = int(tok) if len(tok) <= MAX_NUMBER_DIGITS else -1
            seen.append(v)
            nums.append(v)
            dens.append(1)
            want_operand = False
        elif k == 3:  # (
            depth += 1
            if not want_operand or depth > MAX_DEPTH:
                return _diagnose(tokens)
            ops.append(tok)
        elif k == 4:  # )
            if want_operand or not depth:
                return _diagnose(tokens)
            depth -= 1
            op = ops.pop()
            while op != "(":
                zero_div = _reduce(nums, dens, op) or zero_div
                op = ops.pop()
        else:  # an operator of precedence k
            if want_operand:
                return _diagnose(tokens)
            while ops and ops[-1] != "(" and _KIND[ops[-1]] >= k:
                zero_div = _reduce(nums, dens, ops.pop()) or zero_div
            ops.append(tok)
            want_operand = True
    if want_operand:
        return Syntax("prefix", f"the formula ends with '{tokens[-1]}' and needs a number after it",
                      numbers=tuple(seen))
    if depth:
        return Syntax("prefix", f"{depth} '(' {'is' if depth == 1 else 'are'} never closed", numbers=tuple(seen))
    while ops:
        zero_div = _reduce(nums, dens, ops.pop()) or zero_div
    return Syntax("complete", "", nums[0], 0 if zero_div else dens[0], tuple(seen))


def _diagnose(tokens: Sequence[str]) -> Syntax:
    """Why a token sequence can never become an expression (the first offending token)."""
    want_operand = True
    depth = 0
    for i, tok in enumerate(tokens):
        k = _KIND.get(tok)
        prev = tokens[i - 1] if i else ""
        if k is None or k == 3:
            if not want_operand:
                return Syntax("invalid", f"'{tok}' follows '{prev}' with no operator between them "
                                         "(write every multiplication with '*')")
            if k == 3:
                depth += 1
                if depth > MAX_DEPTH:
                    return Syntax("invalid", f"brackets are nested more than {MAX_DEPTH} deep")
            else:
                want_operand = False
        elif k == 4:
            if want_operand:
                if not i:
                    return Syntax("invalid", "the formula starts with ')'")
                return Syntax("invalid", "'()' is empty" if prev == "(" else f"')' follows the operator '{prev}'")
            if depth == 0:
                return Syntax("invalid", "a ')' has no matching '('")
            depth -= 1
        else:
            if want_operand:
                if i == 0 or prev == "(":
                    return Syntax("invalid", f"'{tok}' has no number before it (signs like -3 are not allowed; "
                                             "every operator needs a number on each side)")
                return Syntax("invalid", f"two operators in a row: '{prev}{tok}' (powers such as ** are not allowed)")
            want_operand = True
    raise AssertionError("_diagnose called on a valid token sequence")


@lru_cache(maxsize=1 << 14)
def analyse_text(expr: str) -> tuple[tuple[str, ...], Syntax]:
    """Tokens and :func:`analyse` of an expression text (allowed characters only, no '='). Pure, so
    memoised: rollouts and oracle runs judge the same formulas over and over."""
    tokens = _TOKEN.findall(expr)
    return tuple(tokens), analyse(tokens)


def check_syntax(tokens: list[str]) -> Syntax:
    return analyse(tokens)


def literal_value(tok: str) -> int:
    """The integer a number token stands for; -1 (never a card value) for an absurdly long literal, so
    huge numbers are never converted."""
    return int(tok) if len(tok) <= MAX_NUMBER_DIGITS else -1


def evaluate(tokens: list[str]) -> Fraction | None:
    """The exact value of a complete expression, or None when it divides by zero."""
    syn = analyse(tokens)
    if syn.status != "complete":
        raise ValueError(f"not a complete expression: {syn.problem}")
    return Fraction(syn.num, syn.den) if syn.den else None


def equals(tokens: list[str], target: int) -> tuple[bool, Fraction | None]:
    """Whether a complete expression equals ``target`` exactly; also its value when it does not
    (None: division by zero)."""
    syn = analyse(tokens)
    if syn.status != "complete":
        raise ValueError(f"not a complete expression: {syn.problem}")
    return value_equals(syn, target)


def value_equals(syn: Syntax, target: int) -> tuple[bool, Fraction | None]:
    """The comparison is done on the raw pair, so the common success path builds no Fraction."""
    if syn.den == 0:
        return False, None
    if syn.num == target * syn.den:
        return True, None
    return False, Fraction(syn.num, syn.den)


def value_text(num: int, den: int) -> str:
    """An exact value for a message, e.g. "23/2 (about 11.5)", without building a Fraction."""
    g = math.gcd(num, den)
    num, den = num // g, den // g
    if den < 0:
        num, den = -num, -den
    return str(num) if den == 1 else f"{num}/{den} (about {num / den:.4g})"
