from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.virl.verifier import (
    ABSOLUTE_ACTIONS,
    RELATIVE_ACTIONS,
    REWARDS,
    AnswerError,
    claims_intersection,
    judge,
    normalise_action,
    parse_answer,
)
from tests.virl.helpers import answer

INSTR = "Turn left to face south."


def j(text: str, *, inter: bool = True, expected: str = "turn_direction(south)", actions=ABSOLUTE_ACTIONS):
    return judge(text, at_intersection=inter, instruction=INSTR, expected_action=expected, actions=actions)


def test_paper_reward_values() -> None:
    assert REWARDS["correct"] == 1 and REWARDS["wrong_action"] == -1
    assert REWARDS["wrong_observation"] == -1.5 and REWARDS["wrong_instruction"] == -1.75


def test_correct() -> None:
    v = j(answer("You observe an intersection.", INSTR, "turn_direction(south)"))
    assert (v.verdict, v.reward, v.message) == ("correct", 1.0, "")


def test_check_order_format_then_observation_then_instruction_then_action() -> None:
    # Everything wrong: the format is checked first.
    assert j("no json here").verdict == "invalid_format"
    # Observation, instruction and action all wrong: the observation decides.
    v = j(answer("No landmarks nearby.", "Move forward.", "stop()"))
    assert (v.verdict, v.reward) == ("wrong_observation", -1.5)
    # Instruction and action wrong.
    v = j(answer("You observe an intersection.", "Move forward.", "stop()"))
    assert (v.verdict, v.reward) == ("wrong_instruction", -1.75)
    # Only the action wrong.
    v = j(answer("You observe an intersection.", INSTR, "forward()"))
    assert (v.verdict, v.reward) == ("wrong_action", -1.0)
    # Claiming an intersection where there is none.
    v = j(answer("You observe an intersection.", INSTR, "forward()"), inter=False, expected="forward()")
    assert v.verdict == "wrong_observation" and "not at an intersection" in v.message


def test_action_outside_the_action_space() -> None:
    v = j(answer("You observe an intersection.", INSTR, "turn_direction(south)"), actions=RELATIVE_ACTIONS,
          expected="turn_direction(left)")
    assert (v.verdict, v.reward) == ("invalid_action", -1.0) and "action space" in v.message


def test_feedback_repeats_the_format() -> None:
    v = j(answer("You observe an intersection.", INSTR, "forward()"))
    assert '"current instruction"' in v.message and '"action"' in v.message


def test_instruction_matching_is_normalised() -> None:
    for text in ("turn left to face south", "3. Turn left to face South!", "  Turn  left, to face south. "):
        assert j(answer("intersection", text, "turn_direction(south)")).verdict == "correct"
    assert j(answer("intersection", "Turn right to face south.", "turn_direction(south)")).verdict == \
        "wrong_instruction"


def test_action_normalisation() -> None:
    assert normalise_action(" Turn_Direction( 'Slightly  Left' ). ") == "turn_direction(slightly left)"
    assert normalise_action("forward ()") == "forward()"


def test_intersection_claims() -> None:
    assert claims_intersection("You observe an intersection.")
    assert claims_intersection("No landmarks nearby. You observe an intersection.")
    assert claims_intersection("Blue Cafe on your left and an intersection ahead")
    assert not claims_intersection("I am not at an intersection.")
    assert not claims_intersection("No intersection here; Blue Cafe on your right.")
    assert not claims_intersection("No landmarks nearby.")
    assert not claims_intersection("")


def test_parse_tolerates_fences_and_trailing_commas() -> None:
    a = parse_answer('Sure:\n```json\n{"current observation": "x",\n "current instruction": "y",\n'
                     ' "action": "forward()",\n}\n```')
    assert (a.observation, a.instruction, a.action) == ("x", "y", "forward()")
    a = parse_answer('{"current_observation": "x", "Current Instruction": "y", "action": "stop()"}')
    assert a.action == "stop()"


@pytest.mark.parametrize("text", [
    "", "{", "}{", "null", "[]", "42", '{"action": 3}', '{"current observation": "x"}',
    '{"current observation": "x", "current instruction": "y", "action": ["forward()"]}',
    '{"current observation": {"a": 1}, "current instruction": "y", "action": "forward()"}',
    "\x00" * 1000, '{"action": "forward()\x00"}', "[" * 100_000 + "]" * 100_000, "{" * 50_000,
    '{"a":' * 5000 + "1" + "}" * 5000, "x" * 10_000_000, '{"current observation": "' + "a" * 19_000 + '"}',
    "\ud800 garbage \uffff", '"current observation": "' + "\\" * 5000,
    '"action": "' * 1800, ('"action": "' + "a" * 1990) * 9, "{}" * 9999,
])
def test_adversarial_answers_are_judged_fast_without_exceptions(text: str) -> None:
    t = time.perf_counter()
    v = j(text)
    elapsed = time.perf_counter() - t
    assert v.verdict == "invalid_format" and v.reward == REWARDS["invalid_format"] and v.message
    assert elapsed < 0.010, f"{elapsed * 1000:.1f} ms"
    with pytest.raises(AnswerError):
        parse_answer(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gets_a_verdict(text: str) -> None:
    v = j(text)
    assert v.reward in REWARDS.values()
    assert (v.message == "") == (v.verdict == "correct")
