"""``toy-add``: add two numbers, on :class:`harness.simple_task.SimpleTask`. Small enough to read in a minute,
complete enough to exercise the runner: verification-revision, rewards, a task metric, an expert and a random
policy. (``harness_toy.countdown`` is the README's example task.)"""

from __future__ import annotations

from harness import hookimpl
from harness.simple_task import Judgement, SimpleTask
from harness.types import MetricSpec, SplitSpec


class ToyAdd(SimpleTask):
    name, description = "toy-add", "add two numbers (a third-party example task)"
    splits = (SplitSpec("id", "numbers up to 9"), SplitSpec("ood", "numbers up to 90", "ood", {"high": 90},
                                                              aliases=("big",)))
    verify_iter = 2
    metrics = (MetricSpec("first_try", "solved with the first answer", "rate"),)

    def __init__(self, *, high: int = 9) -> None:
        self.high = int(high)

    def problem(self, rng, options):
        return rng.randint(0, self.high), rng.randint(0, self.high)

    def prompt(self, ab):
        return f"What is {ab[0]} + {ab[1]}? Answer with the number only."

    def judge(self, ab, answer):
        text = answer.strip()[:32]
        ok = text.lstrip("-").isdigit() and int(text) == sum(ab)
        return Judgement(1.0 if ok else -1.0, ok, "" if ok else f"{text!r} is not the sum; try again.",
                         fields={"correct": ok})

    def summary(self, ab, judgements):
        return {"first_try": judgements[0].success and len(judgements) == 1}, {"a": ab[0], "b": ab[1]}

    def expert(self, ab):
        return str(sum(ab))

    def random_answer(self, ab, rng):
        return str(rng.randint(0, 2 * self.high))


@hookimpl
def harness_tasks():
    return [ToyAdd.spec()]
