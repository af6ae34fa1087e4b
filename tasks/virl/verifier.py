"""Judging one V-IRL answer: the paper's verifier (``step_rewards_virl`` in its ``utils_rl.py``).

The fields ``action`` and ``current observation`` are read with the paper's field reader
(:mod:`harness.answers`: the whole text as JSON, else ``"NAME": "..."`` on one line, else ``"None"``). Then:

1. the action equal to the expected one (exact string comparison) is +1, whatever the other fields say;
2. otherwise -1.5 when the observation's claim about an intersection contradicts the expected one, computed as
   the paper computes it: the answer "claims" an intersection when the text ``intersection`` (lower case) occurs
   in its ``current observation`` field, and the expected observation is the rail point's *landmark* text, which
   practically never contains that word - so a wrong action whose observation mentions an intersection is -1.5
   even at a real intersection, and the "you are at an intersection" branch fires only for landmarks whose name
   contains the word;
3. otherwise -1.

The -1.75 instruction penalty the paper defines is never used there, and is not here. An unreadable answer is a
wrong action (-1). One fix: an observation field that is JSON but neither text nor a list/object (a number,
``null``, ``true``) crashes the paper's verifier; here it claims nothing.

The feedback turn is ``"You failed this trial because "``, the paper's reason (``you make incorrect action`` /
``you are not at any intersection`` / ``you are at an intersection``), its request to avoid that action or
observation and answer again in the same format, the output layout (in harness's words), and a final period.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from harness.answers import NOT_FOUND, Answer

MAX_ANSWER_CHARS = 20_000  # longer answers are judged unreadable (256 new tokens stay far below this)

R_CORRECT = 1.0
R_WRONG_ACTION = -1.0
R_WRONG_OBSERVATION = -1.5
R_STEP_LIMIT = -1.0  # the paper's extra answer after a spent budget: scored without being read

FEEDBACK_PREFIX = "You failed this trial because "
M_CORRECT = "Correct action"
M_NOT_AT_INTERSECTION = "you are not at any intersection"
M_AT_INTERSECTION = "you are at an intersection"
M_WRONG_ACTION = "you make incorrect action"
RETRY_OBSERVATION = ". Please avoid this observation and try again in the same format:"
RETRY_ACTION = ". Please avoid this action and try again in the same format:"

FORMAT_BLOCK = """
[Output]
{
  "current observation": what you observe now,
  "current instruction": the sentence of the instruction you are carrying out now,
  "action": one action from the action space,
}"""


class Verdict(NamedTuple):
    verdict: str  # correct | wrong_observation | wrong_action
    reward: float
    feedback: str  # "" when correct
    action: Any  # the action as read (any JSON value, or "None")


def mentions(field: Any, word: str) -> bool:
    """Python's ``word in field`` as the paper evaluates it: substring for text, membership for a list or an
    object's keys; any other value (the paper's crash) mentions nothing."""
    if isinstance(field, str | list | dict):
        return word in field
    return False


def read_fields(text: str) -> tuple[Any, Any]:
    """(action, current observation) as the paper reads them."""
    if not isinstance(text, str) or len(text) > MAX_ANSWER_CHARS:
        return NOT_FOUND, NOT_FOUND
    ans = Answer(text)
    return ans.string_field("action"), ans.string_field("current observation")


def parse_answer(text: str) -> dict[str, Any]:
    """The task's answer parser (``TaskSpec.parse_answer``): the three fields as the paper reads them."""
    if not isinstance(text, str) or len(text) > MAX_ANSWER_CHARS:
        return {"current observation": NOT_FOUND, "current instruction": NOT_FOUND, "action": NOT_FOUND}
    ans = Answer(text)
    return {k: ans.string_field(k) for k in ("current observation", "current instruction", "action")}


def judge(text: str, expected_action: str, expected_landmarks: str, format_block: str = FORMAT_BLOCK) -> Verdict:
    action, observation = read_fields(text)
    if action == expected_action:
        return Verdict("correct", R_CORRECT, "", action)
    claims = mentions(observation, "intersection")
    truth = "intersection" in expected_landmarks
    if claims and not truth:
        return Verdict("wrong_observation", R_WRONG_OBSERVATION,
                       feedback(M_NOT_AT_INTERSECTION + RETRY_OBSERVATION, format_block), action)
    if truth and not claims:
        return Verdict("wrong_observation", R_WRONG_OBSERVATION,
                       feedback(M_AT_INTERSECTION + RETRY_OBSERVATION, format_block), action)
    return Verdict("wrong_action", R_WRONG_ACTION, feedback(M_WRONG_ACTION + RETRY_ACTION, format_block), action)


def feedback(message: str, format_block: str) -> str:
    return FEEDBACK_PREFIX + message + format_block + "."
