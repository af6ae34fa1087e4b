"""Plugin entry point: the virl-l and virl-vl tasks, and their Gymnasium ids."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from harness.hookspecs import hookimpl
from harness.types import MetricSpec, SplitSpec, TaskSpec
from tasks.virl.city import TRAIN_STYLES, WORLD_STYLES
from tasks.virl.env import VirlEnv
from tasks.virl.verifier import parse_answer

GYM_IDS = {"virl-l": "harness/virl-l-v0", "virl-vl": "harness/virl-vl-v0"}
DEFAULT_VERIFY_ITER = 2  # the paper's value for V-IRL

STEP_ACCURACY = MetricSpec(
    "step_accuracy",
    "rail steps answered right within their answer budget, over all rail steps of the route (unreached steps "
    "count as misses)",
    kind="ratio",
)

_ID = SplitSpec("id", "NYC routes, absolute actions (north, northeast, ...): the training distribution", "id",
                {"styles": TRAIN_STYLES, "action_space": "absolute"})
_RULE = SplitSpec("ood-rule", "NYC routes, relative actions (left, right, slightly left, slightly right)", "ood",
                  {"styles": TRAIN_STYLES, "action_space": "relative"})
_WORLD = SplitSpec("world", "routes in other cities (" + ", ".join(WORLD_STYLES) + "): unseen layouts, facades, "
                   "palettes, sign fonts and names; absolute actions", "ood",
                   {"styles": WORLD_STYLES, "action_space": "absolute"}, aliases=("ood-visual",))


def make_env(vision: bool, split: str, verify_iter: int = DEFAULT_VERIFY_ITER, **task_args: Any) -> VirlEnv:
    """Task args: data (a route file), image_size, styles, action_space, city_seed, min_turns, max_turns,
    continue_after_fail. Split options come in the same way and task args override them."""
    try:
        return VirlEnv(vision=vision, verify_iter=verify_iter, **task_args)
    except TypeError as exc:
        valid = "data, image_size, styles, action_space, city_seed, min_turns, max_turns, continue_after_fail"
        raise TypeError(f"virl: {exc}; valid task args: {valid}") from None


def _make_l(split: str, verify_iter: int = DEFAULT_VERIFY_ITER, **task_args: Any) -> VirlEnv:
    return make_env(False, split, verify_iter, **task_args)


def _make_vl(split: str, verify_iter: int = DEFAULT_VERIFY_ITER, **task_args: Any) -> VirlEnv:
    return make_env(True, split, verify_iter, **task_args)


def make_gym_env(vision: bool = False, **kwargs: Any) -> VirlEnv:
    """Gymnasium entry point: ``gym.make("harness/virl-vl-v0", action_space="relative")``."""
    return VirlEnv(vision=vision, **kwargs)


VIRL_L = TaskSpec(
    name="virl-l",
    description="V-IRL navigation with text observations: follow a route instruction through a city",
    modality="text", splits=(_ID, _RULE), make_env=_make_l, default_verify_iter=DEFAULT_VERIFY_ITER,
    metrics=(STEP_ACCURACY,), parse_answer=parse_answer, action_field="action", gym_id=GYM_IDS["virl-l"],
)
VIRL_VL = TaskSpec(
    name="virl-vl",
    description="V-IRL navigation from street-view images: landmarks must be read off storefront signs",
    modality="vision", splits=(_ID, _RULE, _WORLD), make_env=_make_vl, default_verify_iter=DEFAULT_VERIFY_ITER,
    metrics=(STEP_ACCURACY,), parse_answer=parse_answer, action_field="action", gym_id=GYM_IDS["virl-vl"],
)


def _register_gym() -> None:
    for task, gid in GYM_IDS.items():
        if gid not in gym.registry:
            gym.register(id=gid, entry_point="tasks.virl.plugin:make_gym_env",
                         kwargs={"vision": task == "virl-vl"}, disable_env_checker=True)


_register_gym()


@hookimpl
def harness_tasks() -> list[TaskSpec]:
    return [VIRL_L, VIRL_VL]
