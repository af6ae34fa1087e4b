"""The V-IRL navigation environment (virl-l: text observations; virl-vl: street-view images).

One episode is one route. Each rail step gets a fresh prompt (``new_context=True``) holding the whole
instruction, the history so far and the current observation; a wrong answer gets the verifier's feedback as
the next user turn (``new_context=False``) and the same step is tried again, up to ``verify_iter`` answers
per step. Then the episode ends as a failure (or, with ``continue_after_fail``, the rail moves on as in the
paper's code and the route can no longer succeed).

Metrics: ``success`` = every rail step answered right within its budget, ending with ``stop()`` at the
destination. ``step_accuracy`` = (rail steps answered right within their budget, rail steps in the route):
each rail step counts once however many tries it took, and steps never reached count as misses, so a run
that fails early scores low.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import orjson

from harness.env import TextEnv
from harness.types import Observation
from tasks.virl.city import STYLES, get_city
from tasks.virl.instructions import instruction_sentences
from tasks.virl.loader import load_routes, route_from_paper
from tasks.virl.prompts import build_prompt, full_observation, history_observation, shown_observation
from tasks.virl.routes import RailStep, Route, build_rail, generate_route
from tasks.virl.verifier import action_set, judge

DEFAULT_IMAGE_SIZE = 512


def _styles(value: str | Sequence[str]) -> tuple[str, ...]:
    names = tuple(s.strip() for s in (value.replace("+", ",").split(",") if isinstance(value, str) else value)
                  if s.strip())
    if not names:
        raise ValueError("styles must name at least one city style")
    unknown = [s for s in names if s not in STYLES]
    if unknown:
        raise ValueError(f"unknown city style(s) {', '.join(unknown)}; known: {', '.join(STYLES)}")
    return names


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class VirlEnv(TextEnv):
    """See the module docstring. Arguments other than ``vision`` are the task args of ``make_env``."""

    def __init__(self, *, vision: bool, verify_iter: int = 2, action_space: str = "absolute",
                 styles: str | Sequence[str] = ("nyc",), data: str | None = None,
                 image_size: int = DEFAULT_IMAGE_SIZE, city_seed: int = 0, min_turns: int = 2, max_turns: int = 6,
                 continue_after_fail: bool = False) -> None:
        self.vision = bool(vision)
        self.verify_iter = int(verify_iter)
        if self.verify_iter < 1:
            raise ValueError(f"verify_iter must be at least 1, got {verify_iter}")
        self.action_space_name = str(action_space)
        self.actions = action_set(self.action_space_name)
        self.styles = _styles(styles)
        self.data = str(data) if data else None
        self.image_size = int(image_size)
        self.city_seed = int(city_seed)
        self.min_turns, self.max_turns = int(min_turns), int(max_turns)
        self.continue_after_fail = _bool(continue_after_fail)
        self._paper = load_routes(self.data) if self.data else None  # validates the file up front
        self._renderers: dict[str, Any] = {}
        self.route: Route | None = None
        self.rail: list[RailStep] = []
        self._over = True

    # ------------------------------------------------------------------------------------------- episode
    def pick_route(self, seed: int, options: dict[str, Any] | None = None) -> Route:
        """The route an episode seed plays: its city style and route are drawn from the seed alone."""
        rng = random.Random(f"virl-episode:{seed}")
        style = self.styles[rng.randrange(len(self.styles))]
        if self._paper is not None:
            idx = int(options["route_index"]) if options and "route_index" in options \
                else rng.randrange(len(self._paper))
            return route_from_paper(self._paper[idx % len(self._paper)], style, seed)
        return generate_route(get_city(style, self.city_seed), seed, self.min_turns, self.max_turns)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        gym.Env.reset(self, seed=seed)  # seeds np_random; TextEnv.reset itself is abstract
        if seed is None:
            seed = int(self.np_random.integers(0, 2 ** 62))
        self.seed_used = int(seed)
        self.route = self.pick_route(self.seed_used, options)
        self.rail = build_rail(self.route)
        self.sentences = instruction_sentences(self.route)
        self.expected = [s.absolute_action if self.action_space_name == "absolute" else s.relative_action
                         for s in self.rail]
        self.pos = 0
        self.tries = 0
        self.hits = 0
        self.answers = 0
        self.failed = False
        self.history: list[tuple[str, str]] = []
        self._over = False
        return self._observe(), {"route_id": self.route.route_id, "city": self.route.city}

    @property
    def current(self) -> RailStep:
        return self.rail[self.pos]

    def _observe(self) -> Observation:
        step = self.current
        text = build_prompt(self.sentences, self.history, shown_observation(step, self.vision),
                            history_observation(step, self.vision), self.actions)
        images = (self.render(step),) if self.vision else ()
        return Observation(text=text, images=images, new_context=True)

    def render(self, step: RailStep | None = None) -> Any:  # type: ignore[override]
        """The street-view grid of a rail step (the current one by default)."""
        from tasks.virl.render import StreetViewRenderer  # Pillow only for the vision task

        assert self.route is not None
        r = self._renderers.get(self.route.city)
        if r is None:
            r = self._renderers[self.route.city] = StreetViewRenderer(self.route.city, self.image_size)
        return r.render(step or self.current)

    # ---------------------------------------------------------------------------------------------- step
    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        if self._over:
            raise RuntimeError("the episode is over; call reset() first")
        step = self.current
        expected = self.expected[self.pos]
        v = judge(action if isinstance(action, str) else "", at_intersection=step.is_intersection,
                  instruction=self.sentences[step.instruction], expected_action=expected, actions=self.actions)
        self.answers += 1
        self.tries += 1
        turn: dict[str, Any] = {"verdict": v.verdict, "step": self.pos}
        info: dict[str, Any] = {"feedback": v.message, "turn": turn}
        last = self.pos == len(self.rail) - 1
        if v.verdict == "correct":
            self.hits += 1
            self.history.append((history_observation(step, self.vision), expected))
            if last:
                return self._end(v.reward, info, success=not self.failed)
            self.pos += 1
            self.tries = 0
            return self._observe(), v.reward, False, False, info
        if self.tries < self.verify_iter:
            return Observation(text=v.message), v.reward, False, False, info
        turn["budget_spent"] = True
        if self.continue_after_fail and not last:
            # The paper's variant: the rail moves on, the route is lost.
            self.failed = True
            self.history.append((history_observation(step, self.vision), v.action or "(no valid action)"))
            self.pos += 1
            self.tries = 0
            return self._observe(), v.reward, False, False, info
        self.failed = True
        return self._end(v.reward, info, success=False)

    def _end(self, reward: float, info: dict[str, Any], success: bool) -> tuple[Observation, float, bool, bool,
                                                                                  dict[str, Any]]:
        assert self.route is not None
        self._over = True
        info["episode"] = {
            "success": success,
            "metrics": {"step_accuracy": (self.hits, len(self.rail))},
            "details": {
                "route_id": self.route.route_id, "city": self.route.city, "source": self.route.source,
                "action_space": self.action_space_name, "turns": self.route.turns, "rail_steps": len(self.rail),
                "steps_passed": self.hits, "answers": self.answers,
                "failed_at": None if success else self.pos,
            },
        }
        return Observation(text=""), reward, True, False, info

    # -------------------------------------------------------------------------------------------- policies
    def expert_action(self) -> str:
        step = self.current
        return orjson.dumps({"current observation": full_observation(step),
                             "current instruction": self.sentences[step.instruction],
                             "action": self.expected[self.pos]}).decode()

    def random_action(self, rng: random.Random) -> str:
        step = self.current
        obs = full_observation(step) if rng.random() < 0.5 else rng.choice(
            ["No landmarks nearby.", "No landmarks nearby. You observe an intersection."])
        return orjson.dumps({"current observation": obs, "current instruction": rng.choice(self.sentences),
                             "action": rng.choice(self.actions)}).decode()
