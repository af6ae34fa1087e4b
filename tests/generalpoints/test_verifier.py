"""Every verdict, its reward (the paper's values), the verification order, and the feedback text."""

from __future__ import annotations

import json

import pytest

from tasks.generalpoints.verifier import (
    R_ILLEGAL,
    R_PARTIAL,
    R_SUCCESS,
    R_WRONG_CARDS,
    R_WRONG_NUMBERS,
    R_WRONG_RESULT,
    Judge,
    parse_answer,
)

# Hand 5, J, A, 9 under the training rule: values 5, 10, 1, 9.
RANKS = (5, 11, 1, 9)
VALUES = (5, 10, 1, 9)


def ans(formula: object, cards: object = ("5", "J", "A", "9"), **extra: object) -> str:
    return json.dumps({"cards": list(cards) if isinstance(cards, tuple) else cards,
                       "number": list(VALUES), "formula": formula, **extra})


@pytest.fixture
def text_judge() -> Judge:
    return Judge(RANKS, VALUES, 24, check_cards=False)


@pytest.fixture
def vision_judge() -> Judge:
    return Judge(RANKS, VALUES, 24, check_cards=True)


def test_reward_values_are_the_papers() -> None:
    assert (R_SUCCESS, R_PARTIAL, R_WRONG_RESULT, R_WRONG_CARDS, R_WRONG_NUMBERS, R_ILLEGAL) == \
        (5, 1, -1, -1.5, -2, -3)


def test_success(text_judge: Judge) -> None:
    for f in ["10+5+9*1", "(10+5+9)*1", "10 + 5 + 9 * 1 = 24", "24 = 9+10+5*1"]:
        v = text_judge(ans(f))
        assert (v.verdict, v.reward, v.message) == ("success", 5.0, ""), f


def test_exact_rational_arithmetic() -> None:
    # 8/(3-8/3) is exactly 24 but about 23.999999999999996 in floating point.
    judge = Judge((3, 3, 8, 8), (3, 3, 8, 8), 24, check_cards=False)
    assert judge(json.dumps({"formula": "8/(3-8/3)"})).verdict == "success"


def test_wrong_result_reports_value(text_judge: Judge) -> None:
    v = text_judge(ans("10+5+9+1"))
    assert (v.verdict, v.reward) == ("wrong_result", -1.0)
    assert "evaluates to 25, not 24" in v.message
    v = text_judge(ans("10/(5-1)+9"))
    assert "23/2" in v.message


def test_division_by_zero_is_wrong_result() -> None:
    judge = Judge((5, 5, 1, 9), (5, 5, 1, 9), 24, check_cards=False)
    v = judge(json.dumps({"formula": "9/(5-5)+1"}))
    assert (v.verdict, v.reward) == ("wrong_result", -1.0) and "divides by zero" in v.message


def test_wrong_claimed_target(text_judge: Judge) -> None:
    v = text_judge(ans("10+5+9*1=25"))
    assert v.reward == -1.0 and "= 25" in v.message


def test_illegal_characters(text_judge: Judge) -> None:
    v = text_judge(ans("10×5+9-1"))
    assert (v.verdict, v.reward) == ("illegal_formula", -3.0)
    assert "'×'" in v.message and "'×' -> '*'" in v.message and "+ - * / ( ) =" in v.message


@pytest.mark.parametrize("formula", ["10 5 + 9 1", "10+*5", "(10+5))", "()+10", "-10+5+9+1", "10**5", "9(5+1)",
                                     "10=5=9", "10+5=9+1"])
def test_illegal_token_sequence(text_judge: Judge, formula: str) -> None:
    v = text_judge(ans(formula))
    assert (v.verdict, v.reward) == ("illegal_formula", -3.0), v.message
    assert v.message.startswith("You failed this trial because")


@pytest.mark.parametrize("answer", ["", "no json here", "{'formula': '10+5+9*1'}", '{"cards": ["5"]}',
                                    '{"formula": 24}', '["10+5+9*1"]'])
def test_unparseable_or_missing_formula_is_illegal(text_judge: Judge, answer: str) -> None:
    v = text_judge(answer)
    assert (v.verdict, v.reward) == ("illegal_formula", -3.0) and v.message


def test_numbers_not_from_hand(text_judge: Judge) -> None:
    v = text_judge(ans("8*3*1*1"))
    assert (v.verdict, v.reward) == ("wrong_numbers", -2.0)
    assert "[8, 3]" in v.message and "not among your numbers [1, 5, 9, 10]" in v.message


def test_numbers_over_used(text_judge: Judge) -> None:
    v = text_judge(ans("9+9+5+1"))
    assert (v.verdict, v.reward) == ("wrong_numbers", -2.0)
    assert "you used numbers [9] too many times" in v.message


def test_numbers_under_used(text_judge: Judge) -> None:
    v = text_judge(ans("10+9-5"))  # complete, and no solution starts this way
    assert (v.verdict, v.reward) == ("wrong_numbers", -2.0)
    assert "did not use numbers [1]" in v.message


def test_partial_prefix_of_known_solution(text_judge: Judge) -> None:
    for f in ["(10+5+9)*", "(10+5", "10+5+9", "(5+10+9)*"]:
        v = text_judge(ans(f))
        assert (v.verdict, v.reward) == ("partial", 1.0), f
        assert "not finished" in v.message


def test_partial_needs_two_numbers_and_whole_tokens(text_judge: Judge) -> None:
    assert text_judge(ans("(")).verdict == "illegal_formula"  # a bare prefix commits to nothing
    assert text_judge(ans("10+")).verdict == "illegal_formula"
    # "1" is a string prefix of "10..." but not a token prefix
    judge = Judge((1, 10, 5, 9), (1, 10, 5, 9), 24, check_cards=False)
    assert judge(json.dumps({"formula": "1"})).verdict != "partial"


def test_incomplete_non_prefix_is_illegal_and_under_use_is_numbers(text_judge: Judge) -> None:
    v = text_judge(ans("(10-1)/"))
    assert (v.verdict, v.reward) == ("illegal_formula", -3.0) and "incomplete" in v.message
    v = text_judge(ans("10-1-5"))  # complete, misses 9, not a solution prefix
    assert (v.verdict, v.reward) == ("wrong_numbers", -2.0)


def test_wrong_cards_gp_vl(vision_judge: Judge) -> None:
    v = vision_judge(ans("10+5+9*1", cards=["5", "Q", "A", "9"]))
    assert (v.verdict, v.reward, v.cards_correct) == ("wrong_cards", -1.5, False)
    assert "['Q']" in v.message
    v = vision_judge(ans("10+5+9*1", cards=["5", "J", "A"]))
    assert v.verdict == "wrong_cards" and "3 cards" in v.message


@pytest.mark.parametrize("cards", [["5", "J", "A", "9"], ["9", "Jack", "Ace", "5"], ["5♠", "J of clubs", "1", "9"],
                                   ["five", "jack", "a", "nine"], [5, 11, 1, 9]])
def test_card_spellings_accepted(vision_judge: Judge, cards: list[object]) -> None:
    v = vision_judge(ans("10+5+9*1", cards=cards))
    assert (v.verdict, v.cards_correct) == ("success", True)


def test_ten_spellings() -> None:
    judge = Judge((10, 2, 3, 4), (10, 2, 3, 4), 24, check_cards=True)
    for ten in ["10", "T", "Ten", "10♦"]:
        assert judge(json.dumps({"cards": [ten, "2", "3", "4"], "formula": "10*2+3-4+3"})).cards_correct


def test_gp_l_ignores_cards(text_judge: Judge) -> None:
    assert text_judge(ans("10+5+9*1", cards=["K", "K", "K", "K"])).verdict == "success"


# ---------------------------------------------------------------------------------- order conflicts


def test_order_wrong_cards_beats_illegal_formula(vision_judge: Judge) -> None:
    v = vision_judge(ans("9**9**9", cards=["2", "2", "2", "2"]))
    assert (v.verdict, v.reward) == ("wrong_cards", -1.5)


def test_order_wrong_cards_beats_everything_else(vision_judge: Judge) -> None:
    for f in ["8*3", "(10+5", "10+5+9+1"]:
        assert vision_judge(ans(f, cards=["K", "J", "A", "9"])).reward == -1.5


def test_order_illegal_beats_numbers(text_judge: Judge) -> None:
    assert text_judge(ans("8 8 8 8")).reward == -3.0  # foreign numbers, but the sequence is illegal first
    assert text_judge(ans("9+9+9+x")).reward == -3.0


def test_order_numbers_beat_partial_and_result(text_judge: Judge) -> None:
    assert text_judge(ans("(10+5+9+9")).reward == -2.0  # over-used even though unfinished
    assert text_judge(ans("24")).reward == -2.0  # evaluates to the target, but 24 is not a card


def test_order_unparseable_json_on_gp_vl_is_illegal(vision_judge: Judge) -> None:
    v = vision_judge("the answer is 10+5+9*1")
    assert (v.verdict, v.reward) == ("illegal_formula", -3.0)


# ---------------------------------------------------------------------------------------- extraction


@pytest.mark.parametrize("wrapped", [
    'Sure! ```json\n{"cards": ["5","J","A","9"], "number": [5,10,1,9], "formula": "10+5+9*1=24"}\n```',
    'I think {"formula": "10+5+9*1"} works. {not json}',
    '{"Formula": "10+5+9*1"}',
    'Here: {"cards": {"bad": 1}} and then {"formula": "10+5+9*1"}',
])
def test_json_extracted_from_prose(text_judge: Judge, wrapped: str) -> None:
    assert text_judge(wrapped).verdict == "success"


def test_parse_answer_fields() -> None:
    a = parse_answer('{"cards": ["A"], "number": [1], "formula": "1"}')
    assert (a.cards, a.number, a.formula, a.error) == (["A"], [1], "1", "")
    assert parse_answer("nothing").error
