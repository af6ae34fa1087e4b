"""The verifier reproduces the paper's step_rewards on concrete answers (each expectation checked against the
paper's own code), and departs from it only where the README names a fix."""

from __future__ import annotations

import json

import pytest

from harness.answers import NOT_FOUND, Answer, list_pattern_search
from harness_tasks.generalpoints import solver
from harness_tasks.generalpoints.verifier import FEEDBACK_PREFIX, Judge, clean_card_text, read_answer

NUMS = [4, 7, 10, 9]
CARDS = ["4", "7", "10", "9"]
F = FEEDBACK_PREFIX


def paper_layout(formula: str, cards: str = "['4', '7', '10', '9']") -> str:
    """The layout the paper's SFT data and checkpoints answer in (not JSON: single quotes, trailing comma)."""
    return f'{{\n  "cards": {cards},\n  "number": [4, 7, 10, 9],\n  "formula": "{formula}",\n}}'


def judge(answer: str, vision: bool = False, nums: list[int] = NUMS, cards: list[str] = CARDS) -> tuple[float, str]:
    v = Judge(nums, cards, 24, vision)(answer)
    return v.reward, v.feedback


@pytest.mark.parametrize(("formula", "reward", "feedback"), [
    ("(4*10)-(7+9)=24", 5, ""),
    ("10*(9-7)+4", 5, ""),
    # the formula is the text before the first '=': the right side is never read
    ("4*10-7-9==24", 5, ""),
    ("4*10-7-9=25", 5, ""),
    ("4*10-7-9=24.0", 5, ""),
    ("24=4*10-7-9", -4, F + "you used invalid numbers: [24], you didn't use numbers: [4, 7, 10, 9]."),
    # tokens must give the formula back exactly: any space is illegal, and nothing else is checked
    ("4 * 10 - 7 - 9=24", -3, F + "illegal characters."),
    ("4*10-7-9.0", -3, F + "illegal characters."),
    ("4x10-7-9", -3, F + "illegal characters."),
    # penalties add up
    ("4*10-7-9-9", -2, F + "you used numbers: [9] too many times."),
    ("4*10-7-24", -4, F + "you used invalid numbers: [24], you didn't use numbers: [9]."),
    ("4**10--7-9-9", -8, F + "invalid sequence after operator, invalid sequence after operator, "
                             "you used numbers: [9] too many times."),
    ("4*10)-7-9", -3, F + "unmatched closing parenthesis."),
    # a '(' in a wrong place is not pushed, so its ')' is unmatched too
    ("4(10)-7-9", -6, F + "invalid sequence before '(', unmatched closing parenthesis."),
    ("(4+7", -2, F + "you didn't use numbers: [10, 9]."),
    ("", -2, F + "you didn't use numbers: [4, 7, 10, 9]."),
    # +1: an unfinished formula (here an unclosed bracket) that is a prefix of a solution string
    ("4*10-(7+9", 1, F + "partial solution."),
    # -1 names the longest prefix that still matches a solution
    ("4+7+10+9", -1, F + "4+ is partially correct but the full formula does not match any solution."),
    ("4*(10-7)-9+", -1, F + "4*( is partially correct but the full formula does not match any solution."),
    ("((4*10)-7-9", -1, F + "( is partially correct but the full formula does not match any solution."),
    # Python's eval refuses leading zeros and non-ASCII digits, so these are never "correct"
    ("04*10-7-9", -1, F + "your formula does not match any solution."),
    ("٤*10-7-9", -1, F + "your formula does not match any solution."),
])
def test_paper_layout_formulas(formula: str, reward: float, feedback: str) -> None:
    assert judge(paper_layout(formula)) == (reward, feedback)


@pytest.mark.parametrize(("answer", "reward", "feedback"), [
    ('{"cards": ["4", "7", "10", "9"], "number": [4, 7, 10, 9], "formula": "4*10-7-9=24"}', 5, ""),
    ('  {"formula": "4*10-7-9"}\n', 5, ""),
    ('```json\n{"cards": ["4", "7", "10", "9"], "formula": "4*10-7-9=24"}\n```', 5, ""),
    ('Here you go: {"formula": "4*10-7-9=24"} - good luck!', 5, ""),
    # the field pattern needs '": "' exactly: without the space only strict JSON is read
    ('{"formula":"4*10-7-9"}', 5, ""),
    ('{"formula":"4*10-7-9",}', -3, F + "illegal characters."),
    # a field the JSON object lacks is looked for in the raw text (here a nested object)
    ('{"answer": {"formula": "4*10-7-9"}}', 5, ""),
    ("no answer at all", -3, F + "illegal characters."),
    # fix: a non-string formula crashes the paper's env; here it is illegal
    ('{"formula": 24}', -3, F + "illegal characters."),
    ('{"formula": null}', -3, F + "illegal characters."),
])
def test_answer_forms(answer: str, reward: float, feedback: str) -> None:
    assert judge(answer) == (reward, feedback)


@pytest.mark.parametrize(("answer", "reward", "feedback"), [
    ("{\"cards\": ['9', '10', '7', '4'], \"formula\": \"4*10-7-9=24\",}", 5, ""),
    ('{"cards": "4, 7, 10, 9", "formula": "4*10-7-9"}', 5, ""),
    # the card check comes first; a failure is -1.5 with the bare message (no final period) and nothing else
    ("{\"cards\": ['4', '7', 'T', '9'], \"formula\": \"4*10-7-9=24\",}", -1.5, F + "you recognized wrong cards"),
    ("{\"cards\": ['4', '7', '10'], \"formula\": \"4*10-7-9=24\",}", -1.5, F + "you recognized wrong cards"),
    ("no answer at all", -1.5, F + "you recognized wrong cards"),
    ('{"cards": ["4", "7", "10", "9"], "formula": 24}', -3, F + "illegal characters."),
    # the paper's quirk, kept: outside JSON, an all-number card list is read as integers it cannot compare
    ('{"cards": [4, 7, 10, 9], "formula": "4*10-7-9=24",}', -1.5, F + "you recognized wrong cards"),
    # fix: a JSON list, or double-quoted items outside JSON, pass when they name the right cards
    ('{"cards": ["4", "7", "10", "9"], "formula": "4*10-7-9=24"}', 5, ""),
    ('{"cards": [4, 7, 10, 9], "formula": "4*10-7-9=24"}', 5, ""),
    ('{"cards": ["4", "7", "10", "9"], "formula": "4*10-7-9=24",}', 5, ""),
    ("{\"cards\": ['4', '7', '10', '9'], \"formula\": \"4*10-7-8=24\",}", -4,
     F + "you used invalid numbers: [8], you didn't use numbers: [9]."),
])
def test_gp_vl_card_check(answer: str, reward: float, feedback: str) -> None:
    assert judge(answer, vision=True) == (reward, feedback)


def test_exact_arithmetic_fix() -> None:
    """The paper's float eval gives 23.999999999999996 here (reward 0, feedback '.'); exact arithmetic gives +5."""
    nums, cards = [3, 3, 8, 8], ["3", "3", "8", "8"]
    assert solver.solutions(nums) == ("8/(3-8/3)",)
    assert judge(paper_layout("8/(3-8/3)=24", "['3', '3', '8', '8']"), nums=nums, cards=cards) == (5, "")


def test_float_affected_hands_are_the_papers_45() -> None:
    """The fix matters for the multisets with an exact solution that floats reject: 45 of 1,820."""
    affected = [k for k in solver.ALL_KEYS
                if any(abs(_float_eval(s) - 24) > 0 for s in solver.solution_table(24)[k])]
    assert len(affected) == 45 and (3, 3, 8, 8) in affected


def _float_eval(expr: str) -> float:
    """Left-to-right float evaluation with precedence, as Python's eval would do it (no eval here)."""
    import ast

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        assert isinstance(node, ast.BinOp)
        a, b = ev(node.left), ev(node.right)
        op = type(node.op)
        return a + b if op is ast.Add else a - b if op is ast.Sub else a * b if op is ast.Mult else a / b

    return ev(ast.parse(expr, mode="eval"))


def test_messages_list_unused_numbers_in_dealt_order() -> None:
    assert judge(paper_layout("7"), nums=[9, 7, 4, 10], cards=["9", "7", "4", "10"]) == (
        -2, F + "you didn't use numbers: [9, 4, 10].")


def test_field_reader_matches_the_papers_patterns() -> None:
    a = Answer('{"formula": "1+2",\n "cards": [\'A\', \'K\'],}')
    assert a.string_field("formula") == "1+2" and a.list_field("cards") == "'A', 'K'"
    assert Answer('{"formula": "1+2\n"}').string_field("formula") == NOT_FOUND  # the pattern stops at a newline
    assert Answer('{"formula": 5}').string_field("formula") == 5  # JSON values keep their type
    assert list_pattern_search('"cards": [] "cards": [x]', "cards") == "x"
    assert list_pattern_search('"cards": [' * 10_000, "cards") is None  # linear, not quadratic
    assert read_answer(paper_layout("1+2=3")).formula == "1+2"
    assert read_answer(paper_layout("1+2=3")).cards == CARDS


def test_card_cleanup() -> None:
    assert clean_card_text("['A', ' K', 'Q', '10']") == ["A", "K", "Q", "10"]
    assert clean_card_text("[A, K, Q]") == []
    assert clean_card_text(["A", "K", "Q", 10]) == ["A", "K", "Q", "10"]
    assert clean_card_text(["A", "K", "Q", True]) == []
    assert clean_card_text(None) == []


def test_solution_strings_are_the_papers_forms() -> None:
    sols = solver.solutions([4, 7, 10, 9])
    assert "(4*10)-(7+9)" in sols and "4*(7+9-10)" in sols and "10*4-(7+9)" in sols
    assert all(s.count("(") <= 2 for s in sols)
    table = solver.solution_table(24)
    # the paper's seven bracket forms reach every one of the classic 1,362 solvable hands
    assert len(table) == 1820 and sum(bool(v) for v in table.values()) == 1362
    assert table[(1, 1, 1, 1)] == ()
    assert solver.is_solvable([1, 5, 5, 5]) and "5*(5-1/5)" in solver.solutions([1, 5, 5, 5])
    assert json.dumps(sorted(solver.solutions([1, 2, 3, 4])))  # plain strings


def test_other_targets() -> None:
    assert "1+2+3+4" in solver.solutions([1, 2, 3, 4], 10)
    assert Judge([1, 2, 3, 4], ["A", "2", "3", "4"], 10, False)(paper_layout("1+2+3+4")).reward == 5
    with pytest.raises(ValueError):
        solver.solution_table(10**9)
