"""Answer parsing and the step verifier (the paper's reward values).

Check order - the first failed check decides the reward, so each answer gets exactly one verdict:

1. ``invalid_format`` (-1.75): no JSON object with string fields ``current observation``,
   ``current instruction`` and ``action`` could be read (also: too long, NUL bytes). It costs as much as the
   worst wrong answer so that emitting garbage is never a way to dodge a penalty.
2. ``wrong_observation`` (-1.5): the ``current observation`` field claims an intersection where there is
   none, or misses one that is there.
3. ``wrong_instruction`` (-1.75): ``current instruction`` is not the sentence in force, compared after
   :func:`normalise_sentence` (case, punctuation, spacing, a leading "3." are ignored).
4. ``invalid_action`` (-1): the action is not in this split's action space (e.g. ``turn_direction(east)``
   under relative actions).
5. ``wrong_action`` (-1): a legal action, but not the right one.
6. ``correct`` (+1): the rail advances.

The fields are checked in the order the model writes them (see, locate yourself in the plan, act).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from tasks.virl.geometry import COMPASS, RELATIVE
from tasks.virl.instructions import normalise_sentence

REWARDS: dict[str, float] = {
    "correct": 1.0,
    "wrong_action": -1.0,
    "invalid_action": -1.0,
    "wrong_observation": -1.5,
    "wrong_instruction": -1.75,
    "invalid_format": -1.75,
}
MAX_ANSWER_CHARS = 20_000  # longer answers are rejected before any parsing
MAX_FIELD_CHARS = 2_000

FIELDS = ("current observation", "current instruction", "action")

ABSOLUTE_ACTIONS: tuple[str, ...] = ("forward()", *(f"turn_direction({d})" for d in COMPASS), "stop()")
RELATIVE_ACTIONS: tuple[str, ...] = ("forward()", *(f"turn_direction({d})" for d in RELATIVE), "stop()")


def action_set(action_space: str) -> tuple[str, ...]:
    if action_space == "absolute":
        return ABSOLUTE_ACTIONS
    if action_space == "relative":
        return RELATIVE_ACTIONS
    raise ValueError(f"action_space must be 'absolute' or 'relative', got {action_space!r}")


class AnswerError(ValueError):
    """The answer could not be read; the message says why, for the model's feedback."""


@dataclass(frozen=True)
class Answer:
    observation: str
    instruction: str
    action: str


_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)
# Fallback for almost-JSON (trailing commas, prose around it): "key": "value" pairs, bounded.
_PAIR = re.compile(r'"\s*(current[ _]observation|current[ _]instruction|action)\s*"\s*:\s*"((?:[^"\\]|\\.){0,2000})"',
                   re.IGNORECASE)


def _key(k: str) -> str:
    return " ".join(k.replace("_", " ").lower().split())


def parse_answer(text: str) -> Answer:
    """Read a model answer. Raises :class:`AnswerError` with a reason; never anything else."""
    if not isinstance(text, str):
        raise AnswerError("the answer is not text")
    if len(text) > MAX_ANSWER_CHARS:
        raise AnswerError(f"the answer is {len(text)} characters long; keep it under {MAX_ANSWER_CHARS}")
    if "\x00" in text:
        raise AnswerError("the answer contains NUL characters")
    body = _FENCE.sub("", text)
    start, end = body.find("{"), body.rfind("}")
    fields: dict[str, object] = {}
    if start != -1 and end > start:
        try:
            obj = orjson.loads(body[start:end + 1])
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            fields = {_key(k): v for k, v in obj.items() if isinstance(k, str)}
    if not all(f in fields for f in FIELDS):
        for m in _PAIR.finditer(body):
            fields.setdefault(_key(m.group(1)), _unescape(m.group(2)))
    missing = [f for f in FIELDS if f not in fields]
    if missing:
        if start == -1:
            raise AnswerError("no JSON object found")
        raise AnswerError("missing field(s) " + ", ".join(f'"{f}"' for f in missing))
    for f in FIELDS:
        v = fields[f]
        if not isinstance(v, str):
            raise AnswerError(f'field "{f}" must be a string, got {type(v).__name__}')
        if len(v) > MAX_FIELD_CHARS:
            raise AnswerError(f'field "{f}" is too long ({len(v)} characters)')
    return Answer(str(fields["current observation"]), str(fields["current instruction"]), str(fields["action"]))


def _unescape(s: str) -> str:
    try:
        out = orjson.loads(f'"{s}"')
        return out if isinstance(out, str) else s
    except orjson.JSONDecodeError:
        return s


_QUOTES = re.compile(r"[\"'`]")
_SPACES = re.compile(r"\s+")


def normalise_action(action: str) -> str:
    """``Turn_Direction( 'Slightly  Left' ).`` -> ``turn_direction(slightly left)``."""
    a = _QUOTES.sub("", action.strip().lower()).rstrip(".")
    a = _SPACES.sub(" ", a)
    a = re.sub(r"\s*\(\s*", "(", a)
    return re.sub(r"\s*\)\s*", ")", a).strip()


_CLAUSES = re.compile(r"[.;,!?\n]|\band\b|\bbut\b")
_NEGATION = re.compile(r"\b(?:no|not|none|without|never)\b|n't\b")


def claims_intersection(observation: str) -> bool:
    """Whether an observation says the agent is at an intersection.

    A clause mentioning "intersection" is a claim unless it is negated ("not at an intersection", "no
    intersection here"); one positive clause is enough.
    """
    for clause in _CLAUSES.split(observation.lower()[:MAX_FIELD_CHARS]):
        if "intersection" in clause and not _NEGATION.search(clause):
            return True
    return False


FORMAT_HINT = """Answer with one JSON object and nothing else:
{
  "current observation": "what you observe now: landmarks and on which side, and whether you are at an intersection",
  "current instruction": "the sentence of the instruction you are carrying out now, copied exactly",
  "action": "one action from the action space"
}"""


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reward: float
    message: str  # "" when correct
    action: str | None = None  # the normalised action, when one could be read


def judge(text: str, *, at_intersection: bool, instruction: str, expected_action: str,
          actions: tuple[str, ...]) -> Verdict:
    """Judge one answer against the rail step; see the module docstring for the order."""
    try:
        ans = parse_answer(text)
    except AnswerError as exc:
        return _fail("invalid_format", f"your answer could not be read ({exc}).")
    claim = claims_intersection(ans.observation)
    if claim and not at_intersection:
        return _fail("wrong_observation", "you are not at an intersection, but your current observation says "
                     "you are.")
    if at_intersection and not claim:
        return _fail("wrong_observation", "you are at an intersection, but your current observation does not "
                     "say so.")
    if normalise_sentence(ans.instruction) != normalise_sentence(instruction):
        return _fail("wrong_instruction", "your current instruction is not the sentence of the instruction "
                     "that you should be carrying out now.")
    act = normalise_action(ans.action)
    if act not in actions:
        return _fail("invalid_action", f"{ans.action[:80]!r} is not in the action space "
                     f"({', '.join(actions)}).", None)
    if act != expected_action:
        return _fail("wrong_action", f"{act} is not the right action here.", act)
    return Verdict("correct", REWARDS["correct"], "", act)


def _fail(verdict: str, reason: str, action: str | None = None) -> Verdict:
    msg = f"Your answer was wrong: {reason} Please try again.\n{FORMAT_HINT}"
    return Verdict(verdict, REWARDS[verdict], msg, action)
