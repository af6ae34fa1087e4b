"""The verifier reproduces the paper's step_rewards_virl on concrete answers (each checked against its code)."""

from __future__ import annotations

import pytest

from harness_tasks.virl.verifier import FEEDBACK_PREFIX, judge, parse_answer
from tests.virl.helpers import answer, paper_answer

INTER = "A is on your left; You observe an intersection"


@pytest.mark.parametrize(("text", "expected", "landmarks", "reward", "reason"), [
    # the right action is +1 whatever the other fields say
    (answer("x", "a sentence that is not in force", "forward()"), "forward()", "No landmarks nearby", 1, ""),
    (paper_answer(INTER, "1. x", "forward()"), "forward()", "A is on your left", 1, ""),
    ('{"action": "forward()",}', "forward()", "X", 1, ""),
    # the field pattern needs '": "': outside strict JSON, '"action":"x"' is not read
    ('{"action":"forward()",}', "forward()", "X", -1, "you make incorrect action"),
    # a wrong action whose observation mentions an intersection is -1.5 (the expected observation is the
    # landmark text, which does not say "intersection")
    (answer("You observe an intersection", "", "stop()"), "forward()", "A is on your left", -1.5,
     "you are not at any intersection"),
    (answer("No landmarks nearby", "", "stop()"), "forward()", "No landmarks nearby", -1, "you make incorrect action"),
    ("nothing readable", "forward()", "No landmarks nearby", -1, "you make incorrect action"),
    # the word is matched as written: capitalised, it is no claim
    (answer("Intersection ahead", "", "stop()"), "forward()", "X", -1, "you make incorrect action"),
    # a landmark whose name holds the word makes the other branch fire
    (answer("Cafe", "", "stop()"), "forward()", "Broadway intersection Deli is on your left", -1.5,
     "you are at an intersection"),
    # actions are compared exactly
    (answer("x", "", "turn_direction( east)"), "turn_direction(east)", "X", -1, "you make incorrect action"),
    (answer("x", "", "Forward()"), "forward()", "X", -1, "you make incorrect action"),
    # JSON lists are checked by membership, as Python's `in` does
    ('{"current observation": ["intersection"], "action": "stop()"}', "forward()", "X", -1.5,
     "you are not at any intersection"),
    ('{"current observation": ["an intersection"], "action": "stop()"}', "forward()", "X", -1,
     "you make incorrect action"),
    # fix: a number (or null) here crashes the paper's verifier; here it claims nothing
    ('{"current observation": 5, "action": "stop()"}', "forward()", "X", -1, "you make incorrect action"),
])
def test_paper_cases(text: str, expected: str, landmarks: str, reward: float, reason: str) -> None:
    v = judge(text, expected, landmarks)
    assert v.reward == reward
    if reward == 1:
        assert v.feedback == "" and v.verdict == "correct"
    else:
        assert v.feedback.startswith(FEEDBACK_PREFIX + reason + ". Please avoid this ")
        assert "try again in the same format:\n[Output]\n{" in v.feedback and v.feedback.endswith("}.")


def test_retry_phrase_names_what_was_wrong() -> None:
    obs = judge(answer("an intersection", "", "stop()"), "forward()", "X").feedback
    act = judge(answer("none", "", "stop()"), "forward()", "X").feedback
    assert "Please avoid this observation and try again" in obs
    assert "Please avoid this action and try again" in act


def test_parse_answer_reads_like_the_paper() -> None:
    got = parse_answer(paper_answer("o", "i", "forward()"))
    assert got == {"current observation": "o", "current instruction": "i", "action": "forward()"}
    assert parse_answer("x")["action"] == "None"
    assert parse_answer("x" * 30_000)["action"] == "None"  # over the size cap: unread
