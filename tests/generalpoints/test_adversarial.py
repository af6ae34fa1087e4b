"""Hostile answers: each gets a reward and a message, fast, and never an exception or a hang."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness_tasks.generalpoints import solver
from harness_tasks.generalpoints.verifier import MAX_FEEDBACK_CHARS, Judge

BUDGET_S = 0.010
JUDGES = (Judge((5, 10, 1, 9), ("5", "J", "A", "9"), 24, check_cards=False),
          Judge((5, 10, 1, 9), ("5", "J", "A", "9"), 24, check_cards=True))
REWARDS = {"success": 5.0, "partial": 1.0, "no_solution": -1.0, "wrong_cards": -1.5}


def f(formula: object) -> str:
    return json.dumps({"cards": ["5", "J", "A", "9"], "number": [5, 10, 1, 9], "formula": formula})


ADVERSARIAL = {
    "malformed json": '{"formula": "10+5+9*1"',
    "missing fields": "{}",
    "formula null": '{"formula": null}',
    "formula list": '{"formula": ["10", "+", "5"]}',
    "formula dict": '{"formula": {"a": 1}}',
    "cards wrong type": '{"cards": "5 J A 9", "formula": "10+5+9*1"}',
    "not an object": "[1, 2, 3]",
    "json number": "24",
    "huge literal": f("9" * 5000 + "+1"),
    "huge json int": '{"formula": "1", "number": [' + "9" * 5000 + "]}",
    "huge short literal": f("99999999999999999999+5+9+1"),
    "power tower": f("9**9**9"),
    "caret power": f("9^9^9"),
    "deep nesting": f("(" * 150 + "10" + ")" * 150),
    "deep nesting at Python's limit": f("(" * 200 + "10+5+9*1" + ")" * 200),
    "deep nesting past Python's limit": f("(" * 201 + "10+5+9*1" + ")" * 201),
    "garbage that collects a message per token": f(")" * 15_000),
    "deep json": '{"formula": ' + "[" * 5000 + "]" * 5000 + "}",
    "deep json unclosed": "[" * 19000,
    "1 MB answer": "x" * 1_000_000,
    "1 MB of braces": "{" * 1_000_000,
    "1 MB formula": f("1+" * 500_000 + "1"),
    "many braces in prose": "{a} " * 4000,
    "NUL bytes": "\x00" * 100,
    "NUL in formula": f("10+5\x00+9*1"),
    "NUL in json": '{"formula": "10+5+9*1"\x00}',
    "unicode digits": f("١٠+٥+٩*١"),
    "unicode operators": f("10×5÷9−1"),
    "emoji": f("🂡+🂫"),
    "surrogates": '{"formula": "\\ud800"}',
    "lone fence": "```json",
    "empty": "",
    "whitespace": " \n\t ",
    "nan": '{"formula": NaN}',
    "division by zero": f("10/(5-5)+9+1"),
    "python code": f("__import__('os').system('true')"),
    "many equals": f("=" * 100),
}


# correct formulas in odd wrapping: gp-l does not read "cards", the field pattern reads broken JSON (as in the
# paper), and Python accepts 200 levels of brackets
MAY_SUCCEED = {"cards wrong type", "deep nesting at Python's limit", "malformed json", "NUL in json"}


def _consistent(v: object) -> None:
    assert v.verdict in (*REWARDS, "wrong_numbers", "illegal_formula", "no_message")  # type: ignore[attr-defined]
    if v.verdict in REWARDS:  # type: ignore[attr-defined]
        assert v.reward == REWARDS[v.verdict]  # type: ignore[attr-defined]
    else:
        assert v.reward <= 0  # type: ignore[attr-defined]
    assert (v.feedback == "") == (v.verdict == "success")  # type: ignore[attr-defined]
    assert len(v.feedback) <= MAX_FEEDBACK_CHARS + 40  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_input_is_judged_fast(name: str) -> None:
    for judge in JUDGES:
        t0 = time.thread_time()
        v = judge(ADVERSARIAL[name])
        dt = time.thread_time() - t0
        _consistent(v)
        if name not in MAY_SUCCEED:
            assert v.verdict != "success", name
        assert dt < BUDGET_S, f"{name}: {dt * 1000:.2f} ms"
    if name == "cards wrong type":
        assert JUDGES[1](ADVERSARIAL[name]).verdict == "wrong_cards"


def test_python_nesting_limit_is_respected() -> None:
    assert JUDGES[0](ADVERSARIAL["deep nesting at Python's limit"]).verdict == "success"
    assert JUDGES[0](ADVERSARIAL["deep nesting past Python's limit"]).verdict == "no_solution"
    v = JUDGES[0](ADVERSARIAL["garbage that collects a message per token"])
    assert v.reward < -40_000 and v.feedback.endswith("messages in all).")  # every penalty counted, feedback cut


def test_non_string_action_is_judged() -> None:
    assert JUDGES[0](None).verdict == "illegal_formula"  # type: ignore[arg-type]


def test_partial_check_is_fast_for_every_hand() -> None:
    """The +1 path looks the formula up among the hand's solution prefixes; worst case over all multisets."""
    table = solver.solution_table(24)
    worst = 0.0
    for key, sols in table.items():
        judge = Judge(key, [str(k) for k in key], 24, check_cards=False)
        prefix = min(sols)[:-1] if sols else f"{key[0]}+{key[1]}"
        t0 = time.thread_time()
        judge(json.dumps({"formula": prefix}))
        worst = max(worst, time.thread_time() - t0)
    assert worst < BUDGET_S, f"{worst * 1000:.2f} ms"


formula_chars = st.sampled_from([*"0123456789+-*/()= ", "10", "9", "5", "1", "x", "**", "\x00", "é"])


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=300),
    st.lists(formula_chars, max_size=60).map(lambda xs: f("".join(xs))),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                     st.sampled_from(["formula", "cards", "number", "x"]), inner, max_size=4),
                 max_leaves=20).map(json.dumps),
))
def test_property_any_answer_gets_a_verdict(answer: str) -> None:
    for judge in JUDGES:
        t0 = time.thread_time()
        v = judge(answer)
        assert time.thread_time() - t0 < BUDGET_S
        _consistent(v)


@settings(max_examples=200, deadline=None, database=None)
@given(st.permutations(["5", "10", "1", "9"]), st.lists(st.sampled_from("+-*/"), min_size=3, max_size=3))
def test_property_result_matches_exact_arithmetic(nums: list[str], ops: list[str]) -> None:
    """A flat expression over the hand: success exactly when Fraction arithmetic says it is 24."""
    from fractions import Fraction

    expr = nums[0] + "".join(o + n for o, n in zip(ops, nums[1:], strict=True))
    terms: list[Fraction] = [Fraction(nums[0])]
    signs: list[str] = []
    for o, n in zip(ops, nums[1:], strict=True):
        if o in "*/":
            terms[-1] = terms[-1] * Fraction(n) if o == "*" else terms[-1] / Fraction(n)
        else:
            signs.append(o)
            terms.append(Fraction(n))
    value = terms[0]
    for s, t in zip(signs, terms[1:], strict=True):
        value = value + t if s == "+" else value - t
    v = JUDGES[0](f(expr))
    assert (v.verdict == "success") == (value == 24)
    if value != 24:
        assert v.verdict in ("no_solution", "no_message")
