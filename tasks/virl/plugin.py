"""Plugin entry point: the virl-l and virl-vl tasks, and their Gymnasium ids."""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym

from harness.hookspecs import hookimpl
from harness.types import MetricSpec, SplitSpec, TaskSpec
from harness_tasks.virl.city import TRAIN_STYLES, WORLD_STYLES
from harness_tasks.virl.env import VirlEnv
from harness_tasks.virl.verifier import MAX_ANSWER_CHARS, parse_answer

GYM_IDS = {"virl-l": "harness/virl-l-v0", "virl-vl": "harness/virl-vl-v0"}
DEFAULT_VERIFY_ITER = 2  # the paper's value for V-IRL
PAPER_EPISODES = {"id": 48, "ood-rule": 48, "world": 18}  # scripts/virl_evaluation/*.sh
# "paper-1": the paper's protocol (verifier, rail, sentences, labels, history, episode flow).
VERSION = "paper-1"
TASK_ARGS = tuple(p for p in inspect.signature(VirlEnv.__init__).parameters if p not in ("self", "vision",
                                                                                           "verify_iter"))

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
_WORLD = SplitSpec("world", "routes in other cities (" + ", ".join(WORLD_STYLES) + "; with --data, the paper's "
                   "world routes in file order): unseen layouts and views; absolute actions", "ood",
                   {"styles": WORLD_STYLES, "action_space": "absolute", "route_order": "sequential"},
                   aliases=("ood-visual",))
SPLITS = {"virl-l": (_ID, _RULE), "virl-vl": (_ID, _RULE, _WORLD)}


def make_env(vision: bool, split: str, verify_iter: int = DEFAULT_VERIFY_ITER, **task_args: Any) -> VirlEnv:
    """``split`` picks the split's options; task args override them (see ``TASK_ARGS``)."""
    task = "virl-vl" if vision else "virl-l"
    by_name = {s.name: s for s in SPLITS[task]} | {a: s for s in SPLITS[task] for a in s.aliases}
    if split not in by_name:
        raise KeyError(f"task {task!r} has no split {split!r}; valid splits: {', '.join(s.name for s in SPLITS[task])}")
    unknown = sorted(set(task_args) - set(TASK_ARGS))
    if unknown:
        raise TypeError(f"task {task!r} got unknown task args {unknown}; valid: {', '.join(TASK_ARGS)}")
    return VirlEnv(vision=vision, verify_iter=verify_iter, **{**dict(by_name[split].options), **task_args})


def _make_l(split: str = "id", verify_iter: int = DEFAULT_VERIFY_ITER, **task_args: Any) -> VirlEnv:
    return make_env(False, split, verify_iter, **task_args)


def _make_vl(split: str = "id", verify_iter: int = DEFAULT_VERIFY_ITER, **task_args: Any) -> VirlEnv:
    return make_env(True, split, verify_iter, **task_args)


VIRL_L = TaskSpec(
    name="virl-l",
    description="V-IRL navigation with text observations: follow a route instruction through a city (the paper's "
                "protocol)",
    modality="text", splits=SPLITS["virl-l"], make_env=_make_l, default_verify_iter=DEFAULT_VERIFY_ITER,
    metrics=(STEP_ACCURACY,), parse_answer=parse_answer, action_field="action", gym_id=GYM_IDS["virl-l"],
    version=VERSION, max_answer_chars=MAX_ANSWER_CHARS,
)
VIRL_VL = TaskSpec(
    name="virl-vl",
    description="V-IRL navigation from street views: landmarks must be read off the images (the paper's protocol)",
    modality="vision", splits=SPLITS["virl-vl"], make_env=_make_vl, default_verify_iter=DEFAULT_VERIFY_ITER,
    metrics=(STEP_ACCURACY,), parse_answer=parse_answer, action_field="action", gym_id=GYM_IDS["virl-vl"],
    version=VERSION, max_answer_chars=MAX_ANSWER_CHARS,
)


def _register_gym() -> None:
    # gym.make's passive checker wants array spaces (ours hold Observation objects and free text);
    # gymnasium.utils.env_checker.check_env passes on the unwrapped env. Splits: gym.make(id, split="world").
    for gid, factory in ((GYM_IDS["virl-l"], _make_l), (GYM_IDS["virl-vl"], _make_vl)):
        if gid not in gym.registry:
            gym.register(id=gid, entry_point=factory, disable_env_checker=True)


_register_gym()


@hookimpl
def harness_tasks() -> list[TaskSpec]:
    return [VIRL_L, VIRL_VL]
