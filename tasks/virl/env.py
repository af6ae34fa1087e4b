"""The V-IRL navigation environment (virl-l: text observations; virl-vl: street views), with the paper's episode
flow.

One episode is one route. Each rail step gets a fresh prompt (``new_context=True``) with the whole instruction,
the action space and the observation/action history; a wrong answer gets ``"You failed this trial because ..."``
as the next user turn of the same conversation and may be corrected. Up to ``verify_iter`` answers are judged per
rail step (2, as in the paper); a right action moves the agent along the rail and renews the budget. When a
step's budget is spent the paper's env asks once more, scores that answer -1 without reading it and ends the
episode (``answer_after_budget=false`` ends it right after the last judged answer instead).

Metrics: ``success`` = the route walked to its end, every rail step answered right within its budget and
``stop()`` at the destination. ``step_accuracy`` = (rail steps answered right within their budget, rail steps in
the route); steps never reached count as misses.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness import templates
from harness.checks import as_bool
from harness.env import TextEnv
from harness.types import Observation
from harness_tasks.virl.city import STYLES, get_city
from harness_tasks.virl.data import DataError, DataSet, load_data
from harness_tasks.virl.geodesy import Earth, Plane
from harness_tasks.virl.geometry import wrap
from harness_tasks.virl.instructions import Instructions, build_instructions
from harness_tasks.virl.prompts import action_space_text, history, make_template
from harness_tasks.virl.rail import RailStep, build_rail
from harness_tasks.virl.routes import BETWEEN, Route, Scene, generate_route
from harness_tasks.virl.verifier import FORMAT_BLOCK, R_STEP_LIMIT, judge

DEFAULT_IMAGE_SIZE = 512  # per view, for drawn cities; the paper's panoramas default to its 1200
MAX_IMAGE_SIZE = 2048
STEP_LIMIT = "step_limit_reached"
ROUTE_ORDERS = ("random", "sequential")


def _styles(value: str | Sequence[str]) -> tuple[str, ...]:
    names = tuple(s.strip() for s in (value.replace("+", ",").split(",") if isinstance(value, str) else value)
                  if str(s).strip())
    if not names:
        raise ValueError("styles must name at least one city style")
    unknown = [s for s in names if s not in STYLES]
    if unknown:
        raise ValueError(f"unknown city style(s) {', '.join(unknown)}; known: {', '.join(STYLES)}")
    return names


def _number(value: Any, name: str, lo: float, hi: float, integer: bool = False) -> float:
    try:
        x = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        x = float("nan")
    if not (lo <= x <= hi) or (integer and x != int(x)):
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'} in {lo:g}..{hi:g}, got {value!r}")
    return int(x) if integer else x


@dataclass(frozen=True)
class _Drawn:
    """What the street-view renderer needs for one rail step."""

    heading: float
    stop: Scene
    is_intersection: bool
    view_key: int


class VirlEnv(TextEnv):
    """See the module docstring. Arguments other than ``vision`` are the task args of ``make_env``."""

    def __init__(self, *, vision: bool, verify_iter: int = 2, action_space: str = "absolute",
                 styles: str | Sequence[str] = ("nyc",), data: str | None = None, image_size: int | None = None,
                 city_seed: int = 0, min_turns: int = 2, max_turns: int = 6, drop_rate: float = 0.5,
                 straight_line_length: int = 5, route_order: str = "random", prompt: str | None = None,
                 prompt_file: str | None = None, answer_after_budget: bool | str = True) -> None:
        self.vision = bool(vision)
        self.verify_iter = int(_number(verify_iter, "verify_iter", 1, 1000, integer=True))
        if action_space not in ("absolute", "relative"):
            raise ValueError(f"action_space must be 'absolute' or 'relative', got {action_space!r}")
        self.action_space_name = action_space
        self.absolute = action_space == "absolute"
        self.styles = _styles(styles)
        self.city_seed = int(_number(city_seed, "city_seed", 0, 2**31, integer=True))
        self.min_turns = int(_number(min_turns, "min_turns", 1, 20, integer=True))
        self.max_turns = int(_number(max_turns, "max_turns", self.min_turns, 20, integer=True))
        self.drop_rate = _number(drop_rate, "drop_rate", 0.0, 1.0)
        self.straight_line_length = int(_number(straight_line_length, "straight_line_length", 1, 50, integer=True))
        if route_order not in ROUTE_ORDERS:
            raise ValueError(f"route_order must be one of {', '.join(ROUTE_ORDERS)}, got {route_order!r}")
        self.route_order = route_order
        self.answer_after_budget = as_bool(answer_after_budget, "answer_after_budget")
        self.data: DataSet | None = load_data(data) if data else None  # validates every file up front
        real_views = self.data is not None and self.data.views is not None
        default_size = 1200 if real_views else DEFAULT_IMAGE_SIZE
        self.image_size = int(_number(image_size if image_size is not None else default_size, "image_size", 32,
                                      MAX_IMAGE_SIZE, integer=True))
        self.template = make_template(self.vision, prompt, prompt_file)
        self.actions_text = action_space_text(self.absolute)
        self._renderers: dict[str, Any] = {}
        self.route: Route | None = None
        self.rail: list[RailStep] = []
        self._over = True

    # ------------------------------------------------------------------------------------------- episode
    def _pick_route(self, rng: random.Random, options: dict[str, Any] | None) -> Route:
        options = options or {}
        if self.data is not None:
            routes = self.data.routes
            if options.get("route_index") is not None:
                idx = options["route_index"]
                if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < len(routes):
                    raise ValueError(f"route_index must be 0..{len(routes) - 1}, got {idx!r}")
                return routes[idx]
            if self.route_order == "sequential" and isinstance(options.get("episode_index"), int):
                return routes[options["episode_index"] % len(routes)]
            return rng.choice(routes)
        style = self.styles[rng.randrange(len(self.styles))]
        return generate_route(get_city(style, self.city_seed), rng.getrandbits(63), self.min_turns, self.max_turns)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.episode_rng(seed)
        route = self._pick_route(rng, options)
        heading = route.init_heading or float(rng.randint(0, 359))  # the paper: missing or 0 means random
        self.route = route
        self.instructions: Instructions = build_instructions(list(route.milestones), heading)
        mapping = self.data.mapping if self.data is not None else None
        snap = mapping.snap if mapping is not None else None
        start = (snap(route.start) or route.start) if snap else route.start
        self.rail = build_rail(start, route.ends, self.instructions, (Plane if route.planar else Earth).distance,
                               snap, rng, self.drop_rate, self.straight_line_length)
        self.pos = 0
        self.tries = 0
        self.hits = 0
        self.answers = 0
        self.observations: list[str] = [self.rail[0].observation(self.absolute)]
        self.actions: list[str] = []
        self._over = False
        return self._observe(), {"route_id": route.route_id, "city": route.city}

    @property
    def current(self) -> RailStep:
        return self.rail[self.pos]

    def _observe(self) -> Observation:
        text = templates.render(self.template, {
            "instruction": self.instructions.text, "action_space": self.actions_text,
            "obs_act_seq": history(self.observations, self.actions, self.vision)})
        images = (self.render(),) if self.vision else ()
        return Observation(text=text, images=images, new_context=True)

    def render(self, step: RailStep | None = None) -> Any:  # type: ignore[override]
        """The street-view grid of a rail step (the current one by default): cut from the paper's panoramas when
        the data has them, else drawn in the route's city style."""
        step = step or self.current
        assert self.route is not None
        if self.data is not None and self.data.views is not None:
            return self._panorama_grid(step)
        from harness_tasks.virl.render import StreetViewRenderer  # Pillow drawing only for the vision task

        style = self.route.city
        r = self._renderers.get(style)
        if r is None:
            r = self._renderers[style] = StreetViewRenderer(style, self.image_size)
        if step.stop is None:
            scene = Scene(False, (), (step.heading, wrap(step.heading + 180)))
        else:
            scene = self.route.scenes[step.stop] if self.route.scenes else BETWEEN
        return r.render(_Drawn(step.heading, scene, scene.is_intersection, 7 * step.leg + step.index))

    def _panorama_grid(self, step: RailStep) -> Any:
        from harness_tasks.virl.panorama import street_view_grid

        assert self.data is not None and self.data.views is not None and self.data.mapping is not None
        pano_id = self.data.mapping.pano(step.point)
        if pano_id is None:
            where = self.route.route_id if self.route else "?"
            raise DataError(f"no panorama within 20 m of rail point {step.point} of {where}")
        pano, rotation = self.data.views.load(pano_id)
        return street_view_grid(pano, rotation, step.heading, self.image_size)

    # ---------------------------------------------------------------------------------------------- step
    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        if self._over:
            raise RuntimeError("the episode is over; call reset() first")
        step = self.current
        if self.tries >= self.verify_iter:  # the paper's one extra answer after a spent budget
            return self._end(R_STEP_LIMIT, {"feedback": "", "turn": {"verdict": STEP_LIMIT, "step": self.pos}},
                             success=False)
        expected = step.action(self.absolute)
        v = judge(action if isinstance(action, str) else "", expected, step.landmarks, FORMAT_BLOCK)
        self.answers += 1
        self.tries += 1
        info: dict[str, Any] = {"feedback": v.feedback, "turn": {"verdict": v.verdict, "step": self.pos}}
        if v.verdict == "correct":
            self.hits += 1
            if expected == "stop()":
                return self._end(v.reward, info, success=True)
            self.actions.append(expected)
            self.pos += 1
            self.tries = 0
            self.observations.append(self.current.observation(self.absolute))
            return self._observe(), v.reward, False, False, info
        if self.tries >= self.verify_iter and not self.answer_after_budget:
            return self._end(v.reward, info, success=False)
        return Observation(text=v.feedback), v.reward, False, False, info

    def _end(self, reward: float, info: dict[str, Any], success: bool
             ) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        assert self.route is not None
        self._over = True
        legs: dict[int, int] = {}
        for s in self.rail:
            if s.stop is None:
                legs[s.leg] = legs.get(s.leg, 0) + 1
        info["episode"] = {
            "success": success,
            "metrics": {"step_accuracy": (self.hits, len(self.rail))},
            "details": {
                "route_id": self.route.route_id, "city": self.route.city, "source": self.route.source,
                "action_space": self.action_space_name, "turns": self.route.turns, "rail_steps": len(self.rail),
                "points_between": [legs.get(j, 0) for j in range(1, len(self.route.milestones) + 1)],
                "steps_passed": self.hits, "answers": self.answers, "failed_at": None if success else self.pos,
            },
        }
        return Observation(text=""), reward, success, not success, info

    # -------------------------------------------------------------------------------------------- policies
    def expert_action(self) -> str:
        """The right answer in the layout of the paper's SFT data (one field a line, a trailing comma)."""
        step = self.current
        return paper_layout(step.observation(self.absolute), step.instruction, step.action(self.absolute))

    def random_action(self, rng: random.Random) -> str:
        step = self.current
        names = ("north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest") \
            if self.absolute else ("left", "right", "slightly left", "slightly right")
        choices = ["forward()", "stop()", *(f"turn_direction({d})" for d in names)]
        obs = step.observation(self.absolute) if rng.random() < 0.5 else rng.choice(
            ["No landmarks nearby; ", "No landmarks nearby; You observe an intersection"])
        return paper_layout(obs, rng.choice(self.instructions.sentences), rng.choice(choices))


def paper_layout(observation: str, instruction: str, action: str) -> str:
    return (f'{{\n  "current observation": "{observation}",\n  "current instruction": "{instruction}",\n'
            f'  "action": "{action}",\n}}')
