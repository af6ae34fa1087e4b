"""SFT data: expert transcripts played through the task's own env and the runner's conversation logic.

An episode is played with :class:`harness.runner._Episode`, the object the runner uses, so roles,
ordering, system prompts and feedback turns are exactly what evaluation will show. Some episodes start
with a wrong answer (the task's random policy, or the expert answer with a digit changed); the env's
verifier then appends its feedback and the expert's correct revision follows, so the model learns the
revision format. Only the expert's turns are training targets: a wrong answer sits in the prompt of the
next turn and is never a target.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from harness.env import TextEnv
from harness.runner import _Episode, episode_seed
from harness.types import Completion, Message, TaskSpec


@dataclass(frozen=True)
class Example:
    """One training target: the conversation so far and the expert's answer to it."""

    messages: tuple[Message, ...]
    answer: str
    revision: bool  # the answer follows verifier feedback on a wrong answer


def wrong_answer(env: TextEnv, rng: random.Random) -> str:
    """A plausible but (usually) wrong answer: the random policy, else a corrupted expert answer."""
    try:
        return env.random_action(rng)
    except NotImplementedError:
        pass
    expert = env.expert_action()
    digits = [i for i, ch in enumerate(expert) if ch.isdigit()]
    if not digits:
        return expert[::-1] or "?"
    i = rng.choice(digits)
    return expert[:i] + str((int(expert[i]) + rng.randint(1, 9)) % 10) + expert[i + 1:]


def expert_episode(env: TextEnv, seed: int, rng: random.Random, n_wrong: int) -> list[Example]:
    """Play one episode: ``n_wrong`` wrong answers (fewer if the budget or luck ends it), then the expert."""
    ep = _Episode(0, seed, env)
    out: list[Example] = []
    wrong_left = n_wrong
    while True:
        if wrong_left > 0:
            answer, is_expert = wrong_answer(env, rng), False
            wrong_left -= 1
        else:
            answer, is_expert = env.expert_action(), True
        if is_expert:
            out.append(Example(tuple(ep.messages), answer, revision=len(ep.turns) > 0))
        before = len(ep.turns)
        over = ep.apply(Completion(answer))
        if over:
            return out
        if wrong_left > 0 and before + 2 >= _budget(env):
            wrong_left = 0  # keep the last answer of the budget for the correct revision


def _budget(env: TextEnv) -> int:
    return int(getattr(env, "verify_iter", 1 << 30))


def expert_stream(task: TaskSpec, split: str, *, seed: int, verify_iter: int | None, revision_frac: float,
                  max_wrong: int, dataset_size: int = 0, stream: str = "sft") -> Iterator[Example]:
    """Endless expert examples. Episode seeds come from a stream named apart from evaluation's, so
    training never replays the evaluation episodes. ``dataset_size`` > 0 cycles over a fixed set."""
    env = task.new_env(split, verify_iter)
    budget = _budget(env)
    rng = random.Random(f"{seed}:{stream}")
    cache: list[list[Example]] = []
    i = 0
    while True:
        if dataset_size and len(cache) == dataset_size:
            yield from cache[i % dataset_size]
            i += 1
            continue
        wrong = 0
        if budget > 1 and max_wrong > 0 and rng.random() < revision_frac:
            wrong = rng.randint(1, min(max_wrong, budget - 1))
        examples = expert_episode(env, episode_seed(task.name, f"{split}/{stream}", seed, i), rng, wrong)
        i += 1
        if dataset_size:
            cache.append(examples)
            if len(cache) == dataset_size:
                i = 0
        yield from examples


__all__ = ["Example", "expert_episode", "expert_stream", "wrong_answer"]
