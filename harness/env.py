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
    """Base class of task environments. Subclasses implement reset (calling ``super().reset(seed=seed)``), step,
    expert_action and random_action."""

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium convention
    observation_space = ObservationSpace()
    action_space = TextSpace()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        """Subclasses return the first observation; call ``super().reset(seed=seed)`` first, as in any
        Gymnasium env, so ``np_random`` is seeded.

        Seeding is Gymnasium's, done lazily: the generator for ``seed`` is built the first time ``np_random`` is
        used. Harness tasks draw from their own seeded ``random.Random`` and most never touch ``np_random``, and
        building a numpy generator per episode would cost more than a whole GeneralPoints episode."""
        if seed is not None:
            self._pending_seed = seed
            self._np_random_seed = seed
        return Observation(text=""), {}

    _pending_seed: int | None = None
    _rng_obj: Any = None

    @property  # type: ignore[override]
    def _np_random(self) -> Any:
        if self._pending_seed is not None:
            from gymnasium.utils import seeding

            self._rng_obj, self._np_random_seed = seeding.np_random(self._pending_seed)
            self._pending_seed = None
        return self._rng_obj

    @_np_random.setter
    def _np_random(self, value: Any) -> None:
        self._rng_obj = value
        self._pending_seed = None

    _task_rng: random.Random | None = None

    def episode_rng(self, seed: int | None) -> random.Random:
        """The task's own generator for the episode ``reset(seed=...)`` starts: a fresh ``random.Random(seed)``,
        or without a seed the env's running one (itself seeded once from ``np_random``)."""
        if seed is not None:
            self._task_rng = random.Random(seed)
        elif self._task_rng is None:
            self._task_rng = random.Random(int(self.np_random.integers(0, 2**62)))
        return self._task_rng

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        raise NotImplementedError

    def expert_action(self) -> str:
        """A correct answer for the current state (the oracle policy; SFT data)."""
        raise NotImplementedError

    def random_action(self, rng: random.Random) -> str:
        """A well-formed answer chosen at random: the random baseline."""
        raise NotImplementedError
