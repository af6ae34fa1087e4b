"""The environment contract: Gymnasium's API with text actions and :class:`Observation` observations.

A task's env owns its whole protocol, verification-revision included: ``step`` judges one model answer,
and the observation it returns is either the verifier's feedback (appended as the next user turn) or a
fresh prompt for the next step. The episode ends (``terminated``) on success, when the task is done, or
when the answer budget (``verify_iter``) is spent. At the end, ``info['episode']`` holds the summary the
runner records.
"""

from __future__ import annotations

import random
from typing import Any, TypedDict

import gymnasium as gym

from harness.types import Observation


class EpisodeSummary(TypedDict, total=False):
    success: bool  # required: solved within the budget
    metrics: dict[str, Any]  # task metrics, see MetricSpec (bool, float or (hits, total))
    details: dict[str, Any]  # anything worth keeping in samples.jsonl (hand, route id, solution, ...)


class ObservationSpace(gym.Space):
    """Accepts any :class:`Observation`; images and free text have no fixed shape."""

    def __init__(self) -> None:
        super().__init__(shape=None, dtype=None)

    def contains(self, x: Any) -> bool:
        return isinstance(x, Observation)

    def sample(self, mask: Any = None, probability: Any = None) -> Observation:
        return Observation(text="")


class TextSpace(gym.Space):
    """Any string: a model's raw answer. Its length is not limited here; verifiers bound their own work."""

    def __init__(self) -> None:
        super().__init__(shape=None, dtype=None)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str)

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        return ""


class TextEnv(gym.Env):
    """Base class of task environments. Subclasses implement reset, step, expert_action, random_action."""

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium convention
    observation_space = ObservationSpace()
    action_space = TextSpace()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        raise NotImplementedError

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        raise NotImplementedError

    def expert_action(self) -> str:
        """A correct answer for the current state (the oracle policy; SFT data)."""
        raise NotImplementedError

    def random_action(self, rng: random.Random) -> str:
        """A well-formed answer chosen at random: the random baseline."""
        raise NotImplementedError
