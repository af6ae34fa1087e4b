"""Judging one GeneralPoints answer: the paper's verifier (``step_rewards`` in its ``utils_rl.py``).

Reading the answer (:func:`read_answer`): the formula, recognised cards and numbers are read with the paper's
field reader (:mod:`harness.answers`); the formula is cut at its first ``=``; the card list goes through the
paper's clean-up (brackets, single quotes and spaces removed, split on commas, exactly four items, else
empty).

Judging (:meth:`Judge.__call__`), in the paper's order:

1. gp-vl only: the sorted recognised cards must equal the sorted plain ranks of the hand (``A``, ``2``..``10``,
   ``J``, ``Q``, ``K``), else -1.5 and nothing else is checked.
2. The formula's tokens (``\\d+`` and single ``+-*/()``) joined must give the formula back exactly (so any space,
   letter, ``.`` or ``**`` is illegal): -3, and nothing else is checked.
3. Every bad token transition adds -3 with its own message (a number after a number or ``)``; an operator first
   or after an operator or ``(``; a ``(`` after a number or ``)``; a ``)`` first or after an operator or ``(``; an
   unmatched ``)``). An unclosed ``(`` is not an error here.
4. Numbers not in the hand add -2, else numbers used more often than the hand has them add -2; numbers the
   formula leaves out add -2 more. So -4, -8 and the like occur: penalties add up.
5. Only when nothing was added: a value equal to the target is +5 (the episode ends); an unfinished formula
   that is a string prefix of one of the paper's solution strings for the hand is +1; otherwise -1, naming the
   longest prefix that still matches a solution.

The feedback turn is ``"You failed this trial because "`` followed by the messages joined by ``", "`` and a
final ``"."`` (for the card check, the bare message with no final period, as in the paper).

Departures, each a plain bug of the paper's code (README, "GeneralPoints protocol"):
* exact arithmetic (the paper's float ``eval`` rejects ``8/(3-8/3)``-like answers);
* a card list given as a JSON list, or with double-quoted items, passes the card check when it names the
  right cards (the paper's clean-up can only read the single-quoted text form);
* a formula that is not a string (a JSON number, list or null) is -3 "illegal characters" (the paper crashes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from harness.answers import MISSING, NOT_FOUND, Answer
from harness_tasks.generalpoints import formula as fm
from harness_tasks.generalpoints import solver

MAX_ANSWER_CHARS = 20_000  # longer answers are judged unreadable (256 new tokens stay far below this)
# Garbage formulas can collect thousands of messages (one per bad transition); the reward counts them all, the
# feedback turn shows the first ones. A real answer's feedback is a few hundred characters.
MAX_FEEDBACK_CHARS = 2_000
MAX_RECORDED_MESSAGES = 20
MAX_CACHED_FORMULA_CHARS = 200

R_SUCCESS = 5.0
R_PARTIAL = 1.0
R_NO_SOLUTION = -1.0
R_WRONG_CARDS = -1.5
R_NUMBERS = -2.0
R_ILLEGAL = -3.0

FEEDBACK_PREFIX = "You failed this trial because "

# The paper's message phrases (protocol facts: they are what the model reads back).
M_ILLEGAL_CHARS = "illegal characters"
M_AFTER_NUMBER = "invalid sequence after number"
M_AFTER_OPERATOR = "invalid sequence after operator"
M_BEFORE_OPEN = "invalid sequence before '('"
M_AFTER_CLOSE = "invalid sequence after ')'"
M_UNMATCHED = "unmatched closing parenthesis"
M_WRONG_CARDS = "you recognized wrong cards"
M_CORRECT = "Correct solution"
M_PARTIAL = "partial solution"
M_NO_MATCH = "your formula does not match any solution"


class ReadAnswer(NamedTuple):
    """The fields of one answer as the paper's env reads them."""

    formula: Any  # the text before the first '=' (or whatever non-string the JSON held)
    cards: list[str]  # the cleaned-up recognised cards, [] when unreadable
    number: list[str]


class Verdict(NamedTuple):
    verdict: str  # success | partial | no_solution | wrong_cards | wrong_numbers | illegal_formula | no_message
    reward: float
    feedback: str  # the next user turn ("" on success)
    messages: tuple[str, ...]
    cards_correct: bool | None = None  # gp-vl only


def clean_card_text(value: Any) -> list[str]:
    """The paper's ``robust_str_to_list`` with its one fix: items are also freed of double quotes, and a JSON
    list of strings or integers is read item by item, so a correctly named hand passes in those forms too."""
    if isinstance(value, list):
        if len(value) != 4 or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
            return []
        return [_strip_card(str(v)) for v in value]
    if not isinstance(value, str):
        return []
    items = value.replace("[", "").replace("]", "").replace("'", "").replace('"', "").replace(" ", "").split(",")
    return items if len(items) == 4 else []


def _strip_card(text: str) -> str:
    return text.replace("[", "").replace("]", "").replace("'", "").replace('"', "").replace(" ", "")


def _paper_cards_value(raw: Any) -> Any:
    """The paper's extra step for the pattern-read ``cards`` text: all-integer contents become a list of ints
    (which its clean-up then cannot read), anything else is put back in brackets."""
    if not isinstance(raw, str):
        return raw
    try:
        return [int(x) for x in raw.split(", ")]
    except ValueError:
        return "[" + raw + "]"


def read_answer(text: str) -> ReadAnswer:
    """The formula, cards and numbers of an answer, read as the paper's env reads them. Never raises."""
    if not isinstance(text, str) or len(text) > MAX_ANSWER_CHARS:
        return ReadAnswer(NOT_FOUND, [], [])
    ans = Answer(text)
    form = ans.string_field("formula")
    if isinstance(form, str):
        form = form.split("=", 1)[0]
    cards_json = ans.json_value("cards")
    if cards_json is MISSING:
        cards_raw = _paper_cards_value(ans.list_field("cards"))
        # pattern-read lists of ints are what the paper's clean-up cannot read: they stay unreadable
        cards = [] if isinstance(cards_raw, list) else clean_card_text(cards_raw)
    else:
        cards = clean_card_text(cards_json)
    number = ans.list_field("number")
    return ReadAnswer(form, cards, clean_card_text(number) if not isinstance(number, list) else [])


def parse_answer(text: str) -> ReadAnswer:
    """The task's answer parser (``TaskSpec.parse_answer``): :func:`read_answer`."""
    return read_answer(text)


def feedback_text(messages: Sequence[str]) -> str:
    text = FEEDBACK_PREFIX + ", ".join(messages) + "."
    if len(text) > MAX_FEEDBACK_CHARS:
        text = text[:MAX_FEEDBACK_CHARS] + f"... ({len(messages)} messages in all)."
    return text


class Judge:
    """Judges answers for one hand. ``values`` are the card numbers in dealt order (the order the paper's
    messages list unused numbers in); ``plain_cards`` the plain rank names (gp-vl's card check)."""

    __slots__ = ("check_cards", "counts", "key", "plain_sorted", "solutions", "target", "values")

    def __init__(self, values: Sequence[int], plain_cards: Sequence[str], target: int, check_cards: bool) -> None:
        self.values = list(values)
        self.counts = Counter(self.values)
        self.key = tuple(sorted(self.values))
        self.plain_sorted = sorted(plain_cards)
        self.target = target
        self.check_cards = check_cards
        self.solutions = solver.solutions(self.key, target)

    def __call__(self, text: str) -> Verdict:
        ans = read_answer(text)
        cards_ok: bool | None = None
        if self.check_cards:
            cards_ok = sorted(ans.cards) == self.plain_sorted
            if not cards_ok:
                return Verdict("wrong_cards", R_WRONG_CARDS, FEEDBACK_PREFIX + M_WRONG_CARDS, (M_WRONG_CARDS,),
                               False)
        return self.judge_formula(ans.formula, cards_ok)

    def judge_formula(self, formula: Any, cards_ok: bool | None = None) -> Verdict:
        """Steps 2 to 5 for the formula text (already cut at its first '=')."""
        if not isinstance(formula, str):
            return self._done(R_ILLEGAL, [M_ILLEGAL_CHARS], "illegal_formula", cards_ok)
        if len(formula) <= MAX_CACHED_FORMULA_CHARS:
            # the verdict depends only on the hand's values (in dealt order), the target and the formula;
            # oracle runs and RL rollouts judge the same formulas over and over
            v = _judge_cached(tuple(self.values), self.target, formula)
            return v if v.cards_correct == cards_ok else v._replace(cards_correct=cards_ok)
        return self._judge(formula, cards_ok)

    def _judge(self, formula: str, cards_ok: bool | None) -> Verdict:
        toks = fm.tokens(formula)
        if "".join(toks) != formula:
            return self._done(R_ILLEGAL, [M_ILLEGAL_CHARS], "illegal_formula", cards_ok)
        reward = 0.0
        messages: list[str] = []
        prev = None  # the previous token's kind: n(umber), o(perator), ( or )
        depth = 0
        for tok in toks:
            if tok in "+-*/":
                if prev not in ("n", ")"):
                    reward += R_ILLEGAL
                    messages.append(M_AFTER_OPERATOR)
                prev = "o"
            elif tok == "(":
                if prev in (None, "o", "("):
                    depth += 1
                else:
                    reward += R_ILLEGAL
                    messages.append(M_BEFORE_OPEN)
                prev = "("
            elif tok == ")":
                if prev in ("n", ")"):
                    if depth:
                        depth -= 1
                    else:
                        reward += R_ILLEGAL
                        messages.append(M_UNMATCHED)
                else:
                    reward += R_ILLEGAL
                    messages.append(M_AFTER_CLOSE)
                prev = ")"
            else:
                if prev not in (None, "o", "("):
                    reward += R_ILLEGAL
                    messages.append(M_AFTER_NUMBER)
                prev = "n"
        syntax_errors = bool(messages)
        number_penalty = self._number_messages(formula, messages)
        reward += R_NUMBERS * number_penalty
        if reward != 0:
            kind = "illegal_formula" if syntax_errors else "wrong_numbers"
            return self._done(reward, messages, kind, cards_ok)
        val = fm.value(toks)
        if val is not None and val == self.target:
            return Verdict("success", R_SUCCESS, "", (M_CORRECT,), cards_ok)
        if val is None and solver.is_prefix(self.solutions, formula):
            return self._done(R_PARTIAL, [M_PARTIAL], "partial", cards_ok)
        register = ""
        for tok in toks:
            longer = register + tok
            if not solver.is_prefix(self.solutions, longer):
                msg = M_NO_MATCH if not register else (
                    f"{register} is partially correct but the full formula does not match any solution")
                return self._done(R_NO_SOLUTION, [msg], "no_solution", cards_ok)
            register = longer
        # a whole formula that is a prefix of a solution yet not a solution: reward 0, no message
        return self._done(0.0, [], "no_message", cards_ok)

    def _number_messages(self, formula: str, messages: list[str]) -> int:
        """Step 4: appends the number messages, returns how many -2 penalties they carry."""
        used: Counter[int | str] = Counter()
        for tok in fm.NUMBER.findall(formula):
            v = fm.number_value(tok)
            used[v if v is not None else _huge(tok)] += 1
        have = self.counts
        invalid = [n for n in used if n not in have]
        penalties = 0
        if invalid:
            messages.append(f"you used invalid numbers: {_show(invalid)}")
            penalties += 1
        else:
            over = [n for n in used if used[n] > have[n]]
            if over:
                messages.append(f"you used numbers: {_show(over)} too many times")
                penalties += 1
        under = [n for n in have if have[n] > used[n]]
        if under:
            messages.append(f"you didn't use numbers: {_show(under)}")
            penalties += 1
        return penalties

    def _done(self, reward: float, messages: list[str], verdict: str, cards_ok: bool | None) -> Verdict:
        return Verdict(verdict, reward, feedback_text(messages), tuple(messages[:MAX_RECORDED_MESSAGES]), cards_ok)


@lru_cache(maxsize=1 << 16)
def _judge_cached(values: tuple[int, ...], target: int, formula: str) -> Verdict:
    return Judge(values, (), target, False)._judge(formula, None)


class _Huge(str):
    """A number too long for Python's int(): never a card value; shown as its digits."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def _huge(token: str) -> _Huge:
    return _Huge(token.lstrip("0") or "0")


def _show(numbers: list[Any]) -> str:
    """Python's list display, as the paper's f-strings print it (``[24, 3]``)."""
    return "[" + ", ".join(repr(n) for n in numbers) + "]"
