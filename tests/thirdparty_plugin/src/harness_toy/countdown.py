"""``countdown``: reach a target with + - * over three numbers - the README's example of a whole task in
about 50 lines on :class:`harness.simple_task.SimpleTask`."""

from __future__ import annotations

import ast
import itertools
import operator

from harness import hookimpl
from harness.simple_task import Judgement, SimpleTask
from harness.types import MetricSpec, SplitSpec

OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def evaluate(node: ast.AST, pool: list[int]) -> int:
    """The value of +, -, * over numbers taken from ``pool`` (each at most once); ValueError otherwise."""
    if isinstance(node, ast.BinOp) and type(node.op) in OPS:
        return OPS[type(node.op)](evaluate(node.left, pool), evaluate(node.right, pool))
    if isinstance(node, ast.Constant) and type(node.value) is int and node.value in pool:
        pool.remove(node.value)
        return node.value
    raise ValueError("use only + - * and the given numbers, each at most once")


class Countdown(SimpleTask):
    name, description = "countdown", "reach a target with + - * over three numbers (a third-party example)"
    splits = (SplitSpec("id", "numbers 1-9"), SplitSpec("ood", "numbers 10-30", "ood", {"low": 10, "high": 30}))
    verify_iter = 3
    metrics = (MetricSpec("valid", "answers that were well-formed expressions", "ratio"),)

    def __init__(self, *, low: int = 1, high: int = 9) -> None:
        self.low, self.high = int(low), int(high)

    def problem(self, rng, options):
        nums = [rng.randint(self.low, self.high) for _ in range(3)]
        a, b, c = rng.sample(nums, 3)
        return nums, OPS[rng.choice(list(OPS))](OPS[rng.choice(list(OPS))](a, b), c)

    def prompt(self, p):
        return f"Using {p[0]} (each at most once) and + - *, make {p[1]}. Reply with the expression only."

    def judge(self, p, answer):
        try:
            value = evaluate(ast.parse(answer.strip()[:200], mode="eval").body, list(p[0]))
        except (SyntaxError, ValueError, RecursionError) as exc:
            return Judgement(-1.0, False, f"Not a valid expression: {exc}. Try again.", metrics={"valid": False})
        ok = value == p[1]
        return Judgement(1.0 if ok else -0.5, ok, "" if ok else f"That makes {value}, not {p[1]}. Try again.",
                         fields={"value": value}, metrics={"valid": True})

    def expert(self, p):
        for a, b, c in itertools.permutations(p[0]):
            for x, y in itertools.product("+-*", repeat=2):
                if evaluate(ast.parse(f"({a}{x}{b}){y}{c}", mode="eval").body, list(p[0])) == p[1]:
                    return f"({a}{x}{b}){y}{c}"
        raise AssertionError("problems are built solvable")

    def random_answer(self, p, rng):
        a, b, c = rng.sample(p[0], 3)
        return f"{a}{rng.choice('+-*')}{b}{rng.choice('+-*')}{c}"


@hookimpl
def harness_tasks():
    return [Countdown.spec()]
