"""Judging one model answer: the verification order, the paper's rewards, and the feedback text.

Order (the first failing check decides the verdict):

1. answer too long, no JSON object, or no string ``formula`` field  -> illegal (-3)
2. gp-vl only: the recognised ``cards`` differ from the hand (as a multiset of ranks) -> wrong cards (-1.5)
3. illegal characters in the formula, or a token sequence that can never become an expression -> illegal (-3)
4. a number that is not one of the hand's values, or one used more often than the hand has it -> numbers (-2)
5. the expression is unfinished, or finished but leaves numbers out:
   a token prefix of a known solution that already uses two numbers -> partial (+1);
   else unfinished -> illegal (-3), leaves numbers out -> numbers (-2)
6. exact evaluation: equal to the target -> success (+5, episode ends); otherwise (or division by zero) -> -1

The DESIGN order (cards, illegal, numbers, prefix, result) is kept; the one refinement is that an
*unfinished but well-formed* formula is checked against the known solutions before it is called illegal
or under-using, since a correct prefix is by nature unfinished and +1 would otherwise be unreachable.
A malformed answer can never earn +1: step 3 and step 4 come first.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from tasks.generalpoints import formula as fm
from tasks.generalpoints.cards import card_name, parse_rank
from tasks.generalpoints.solver import is_solution_prefix

MAX_ANSWER_CHARS = 20_000  # generous for prose around the JSON; anything longer is rejected unread
MAX_JSON_TRIES = 8  # '{' positions tried when the object is buried in prose
MIN_PARTIAL_NUMBERS = 2  # a prefix earns +1 only once it combines two numbers

R_SUCCESS = 5.0
R_PARTIAL = 1.0
R_WRONG_RESULT = -1.0
R_WRONG_CARDS = -1.5
R_WRONG_NUMBERS = -2.0
R_ILLEGAL = -3.0

REWARDS = {"success": R_SUCCESS, "partial": R_PARTIAL, "wrong_result": R_WRONG_RESULT,
           "wrong_cards": R_WRONG_CARDS, "wrong_numbers": R_WRONG_NUMBERS, "illegal_formula": R_ILLEGAL}

FAIL = "You failed this trial because "


class Answer(NamedTuple):
    """A parsed model answer. ``error`` is set (and the fields may be None) when no usable JSON object
    with a string ``formula`` was found."""

    cards: Any = None
    number: Any = None
    formula: str | None = None
    error: str = ""


class Verdict(NamedTuple):
    verdict: str
    reward: float
    message: str  # feedback for the model; "" on success
    cards_correct: bool | None = None  # None when the task does not check cards


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except (orjson.JSONDecodeError, RecursionError, ValueError):
        return None


def _field(obj: dict[str, Any], name: str) -> Any:
    if name in obj:
        return obj[name]
    for k, v in obj.items():  # "Formula", " formula " and the like
        if isinstance(k, str) and k.strip().lower() == name:
            return v
    return None


def parse_answer(text: str) -> Answer:
    """Find the JSON object in a model answer: the whole text, a fenced block, or the first object that
    decodes within the text (a bounded number of attempts). Never raises."""
    if not isinstance(text, str):
        return Answer(error="the answer is not text")
    if len(text) > MAX_ANSWER_CHARS:
        return Answer(error=f"the answer is {len(text)} characters long; keep it under {MAX_ANSWER_CHARS} "
                            "and reply with just the JSON object")
    obj = _loads(text) if text[:1] == "{" else None  # the common case: nothing around the object
    if not isinstance(obj, dict):
        s = text.strip()
        obj = _loads(s) if s[:1] == "{" else None
        if not isinstance(obj, dict):
            obj = _search_object(s)
    if obj is None:
        return Answer(error='your answer has no valid JSON object; reply with a JSON object such as '
                            '{"cards": [...], "number": [...], "formula": "..."} using double quotes')
    form = obj.get("formula")
    if form is None:
        form = _field(obj, "formula")
    if form is None:
        return Answer(cards=_field(obj, "cards"), number=_field(obj, "number"),
                      error='your JSON object has no "formula" field')
    if not isinstance(form, str):
        return Answer(cards=_field(obj, "cards"), number=_field(obj, "number"),
                      error=f'the "formula" field must be a string, not {type(form).__name__}')
    return Answer(cards=_field(obj, "cards"), number=_field(obj, "number"), formula=form)


_decoder = json.JSONDecoder()


def _search_object(s: str) -> dict[str, Any] | None:
    """The first object that has a formula (else the first object at all) in a fenced block or in the
    text, trying at most MAX_JSON_TRIES start positions."""
    first: dict[str, Any] | None = None
    fence = s.find("```")
    if fence >= 0:  # a markdown block: its body, without the language tag
        end = s.find("```", fence + 3)
        body = s[fence + 3:end if end > 0 else len(s)]
        if body[:4].lower() == "json":
            body = body[4:]
        obj = _loads(body.strip())
        if isinstance(obj, dict):
            if _field(obj, "formula") is not None:
                return obj
            first = obj
    start = s.find("{")
    tries = 0
    while start >= 0 and tries < MAX_JSON_TRIES:
        tries += 1
        try:
            obj, _ = _decoder.raw_decode(s, start)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            if _field(obj, "formula") is not None:
                return obj
            first = first or obj
        start = s.find("{", start + 1)
    return first


def _show(x: Any, limit: int = 80) -> str:
    text = repr(x)
    return text if len(text) <= limit else text[:limit] + "..."


def check_cards(cards: Any, ranks: Sequence[int]) -> str:
    """"" when ``cards`` names the hand's ranks (any order, common spellings), else what is wrong."""
    if not isinstance(cards, list):
        return f'the "cards" field must be a list of the 4 cards in the image, got {_show(cards)}'
    if len(cards) != len(ranks):
        return f"you listed {len(cards)} cards but the image shows {len(ranks)}"
    parsed = [parse_rank(c) for c in cards]
    unreadable = [c for c, p in zip(cards, parsed, strict=True) if p is None]
    if unreadable:
        return (f"the cards {_show(unreadable)} are not card names (use A, 2-10, J, Q, K); "
                "your recognised cards are wrong")
    extra = Counter(parsed) - Counter(ranks)  # type: ignore[arg-type]
    if extra:
        names = [card_name(r) for r in sorted(extra.elements())]
        return (f"your recognised cards are wrong: the image does not show {names} "
                f"(you listed {[card_name(p) for p in parsed]})")  # type: ignore[arg-type]
    return ""


class Judge:
    """Verifies answers for one hand. Built once per reset; :meth:`__call__` judges one answer."""

    __slots__ = ("check_cards", "key", "key_list", "ranks", "target", "target_text", "values")

    def __init__(self, ranks: Sequence[int], values: Sequence[int], target: int, check_cards: bool) -> None:
        self.ranks = tuple(ranks)
        self.values = tuple(values)
        self.key = tuple(sorted(values))
        self.key_list = list(self.key)
        self.target = target
        self.target_text = str(target)
        self.check_cards = check_cards

    def __call__(self, text: str) -> Verdict:
        ans = parse_answer(text)
        cards_ok: bool | None = None
        if self.check_cards:
            problem = check_cards(ans.cards, self.ranks)
            cards_ok = not problem
            if ans.formula is None and ans.cards is None:  # nothing to read at all: a format failure
                return Verdict("illegal_formula", R_ILLEGAL, FAIL + ans.error + ".", False)
            if problem:
                return Verdict("wrong_cards", R_WRONG_CARDS, FAIL + problem + ". Look at the image again.", False)
        if ans.formula is None:
            return Verdict("illegal_formula", R_ILLEGAL, FAIL + ans.error + ".", cards_ok)
        return self.judge_formula(ans.formula, cards_ok)

    def judge_formula(self, formula: str, cards_ok: bool | None = None) -> Verdict:
        """Steps 3 to 6 of the order above, for the formula text alone."""
        target = self.target
        if len(formula) > fm.MAX_FORMULA_CHARS:
            return _fail(cards_ok, "illegal_formula", f"your formula is {len(formula)} characters long; four "
                                                      f"numbers need far fewer (at most {fm.MAX_FORMULA_CHARS}).")
        if fm.has_illegal(formula):
            bad = fm.illegal_chars(formula)
            return _fail(cards_ok, "illegal_formula",
                         f"your formula contains characters that are not allowed: {_show(bad)}"
                         f"{fm.lookalike_hint(bad)}. Use only {fm.ALLOWED_TEXT}.")
        claimed = None
        lhs, eq, rhs = formula.partition("=")
        if not eq:
            tokens, syntax = fm.analyse_text(formula)
        elif rhs.strip() == self.target_text and "=" not in rhs and lhs.strip():
            tokens, syntax = fm.analyse_text(lhs)  # the usual "... = 24"
        else:
            tokens, rhs_problem, claimed = self._split_equation(fm.tokenize(formula))
            if rhs_problem:
                return _fail(cards_ok, "illegal_formula", rhs_problem)
            syntax = fm.analyse(tokens)
        if syntax.status == "invalid":
            return _fail(cards_ok, "illegal_formula", f"your formula is not a valid expression: {syntax.problem}.")
        used = syntax.numbers
        if syntax.status != "complete" or sorted(used) != self.key_list:
            problem = self._number_problem(used, tokens, syntax, cards_ok)
            if problem is not None:
                return problem
        num, den = syntax.num, syntax.den
        if den == 0:
            return _fail(cards_ok, "wrong_result", "your formula divides by zero.")
        if num != target * den:
            return _fail(cards_ok, "wrong_result",
                         f"your formula evaluates to {fm.value_text(num, den)}, not {target}.")
        if claimed is not None:
            return _fail(cards_ok, "wrong_result", f"your formula equals {target} but you wrote '= {claimed}'; "
                                                   f"the equation must equal {target}.")
        return Verdict("success", R_SUCCESS, "", cards_ok)

    def _number_problem(self, used: Sequence[int], tokens: Sequence[str], syntax: fm.Syntax,
                        cards_ok: bool | None) -> Verdict | None:
        """Steps 4 and 5: foreign or over-used numbers, then unfinished or under-using formulas."""
        target = self.target
        have = Counter(self.values)
        mine = sorted(self.values)
        foreign = [u for u in used if u not in have]
        if foreign:
            shown = [u if u >= 0 else "a huge number" for u in dict.fromkeys(foreign)]
            why = f"you used {shown}, which {'is' if len(shown) == 1 else 'are'} not among your numbers {mine}."
            return Verdict("wrong_numbers", R_WRONG_NUMBERS, FAIL + why, cards_ok)
        counts = Counter(used)
        over = sorted(v for v in counts if counts[v] > have[v])
        if over:
            why = (f"you used numbers {over} too many times; each card is used exactly once "
                   f"(your numbers are {mine}).")
            return Verdict("wrong_numbers", R_WRONG_NUMBERS, FAIL + why, cards_ok)
        missing = sorted((have - counts).elements())
        if syntax.status == "complete" and not missing:
            return None
        # at least two numbers, i.e. one operation decided: "(" or "9" alone would be a free +1
        if len(used) >= MIN_PARTIAL_NUMBERS and is_solution_prefix(self.key, target, "".join(tokens)):
            return Verdict("partial", R_PARTIAL,
                           "Your formula is a correct start but it is not finished: complete it so that it uses "
                           f"every number in {mine} exactly once and equals {target}.", cards_ok)
        if syntax.status == "prefix":
            return Verdict("illegal_formula", R_ILLEGAL, FAIL + f"your formula is incomplete: {syntax.problem}.",
                           cards_ok)
        why = f"you did not use numbers {missing}; each card must be used exactly once (your numbers are {mine})."
        return Verdict("wrong_numbers", R_WRONG_NUMBERS, FAIL + why, cards_ok)

    def _split_equation(self, tokens: list[str]) -> tuple[Sequence[str], str, str | None]:
        """Drop an ``= N`` on either side. Returns the expression tokens, a problem (or ""), and the claimed
        value when it differs from the target (or None)."""
        if tokens.count("=") > 1:
            return tokens, "your formula has more than one '='.", None
        i = tokens.index("=")
        left, right = tokens[:i], tokens[i + 1:]
        if len(right) == 1 and right[0].isdigit():
            expr, side = left, right[0]
        elif len(left) == 1 and left[0].isdigit():
            expr, side = right, left[0]
        else:
            return tokens, (f"'=' may only separate your expression from the single number {self.target} "
                            f"(e.g. '... = {self.target}')."), None
        return expr, "", (None if fm.literal_value(side) == self.target else side[:12])


def _fail(cards_ok: bool | None, verdict: str, why: str) -> Verdict:
    return Verdict(verdict, REWARDS[verdict], FAIL + why, cards_ok)
