"""Registers gp-l and gp-vl with harness, and their Gymnasium ids (``harness/gp-l-v0``, ``harness/gp-vl-v0``)."""

from __future__ import annotations

from typing import Any

import gymnasium

from harness.hookspecs import hookimpl
from harness.types import MetricSpec, SplitSpec, TaskSpec
from tasks.generalpoints.env import GeneralPointsEnv
from tasks.generalpoints.verifier import parse_answer

DEFAULT_VERIFY_ITER = 5  # the paper's budget for GeneralPoints

GP_L_SPLITS = (
    SplitSpec("id", "training rule (J, Q, K = 10); all four suits", "id", {"rule": "train", "suits": "all"}),
    SplitSpec("ood-rule", "OOD rule (J, Q, K = 11, 12, 13); every hand has a face card", "ood",
              {"rule": "ood", "suits": "all"}),
)
GP_VL_SPLITS = (
    SplitSpec("id", "training rule, black suits (spades, clubs)", "id", {"rule": "train", "suits": "black"}),
    SplitSpec("ood-rule", "OOD rule (J, Q, K = 11, 12, 13), black suits; every hand has a face card", "ood",
              {"rule": "ood", "suits": "black"}),
    SplitSpec("ood-visual", "training rule, red suits (hearts, diamonds) never seen in training", "ood",
              {"rule": "train", "suits": "red"}, aliases=("ood-visual-red",)),
)
TASK_ARGS = ("target", "image_size", "rule", "suits", "face_card", "card_images", "prompt", "prompt_file",
             "face_card_msg", "answer_after_budget")
PAPER_EPISODES = 234  # the paper's evaluation size per split (evaluation/configs/llama_gp_*.yaml)
PAPER_MAX_NEW_TOKENS = 256
# "paper-1": the paper's protocol (answer reading, summed penalties, feedback turns, dealing, image layout).
# Runs recorded by earlier harness versions (no task version) are never resumed into or mixed with these.
VERSION = "paper-1"


def _factory(name: str, vision: bool, splits: tuple[SplitSpec, ...]) -> Any:
    by_name = {s.name: s for s in splits} | {a: s for s in splits for a in s.aliases}

    def make_env(split: str = "id", verify_iter: int = DEFAULT_VERIFY_ITER, **task_args: Any) -> GeneralPointsEnv:
        if split not in by_name:
            raise KeyError(f"task {name!r} has no split {split!r}; valid splits: {', '.join(s.name for s in splits)}")
        unknown = sorted(set(task_args) - set(TASK_ARGS))
        if unknown:
            raise TypeError(f"task {name!r} got unknown task args {unknown}; valid: {', '.join(TASK_ARGS)}")
        options = {**by_name[split].options, **task_args}
        if not vision:
            for key in ("image_size", "card_images"):  # accepted for symmetry with gp-vl; no image is drawn
                options.pop(key, None)
        return GeneralPointsEnv(vision=vision, verify_iter=verify_iter, **options)

    return make_env


make_gp_l = _factory("gp-l", False, GP_L_SPLITS)
make_gp_vl = _factory("gp-vl", True, GP_VL_SPLITS)

GP_L = TaskSpec(
    name="gp-l",
    description="GeneralPoints (24 game), cards given as text; answer a formula reaching the target (the paper's "
                "protocol)",
    modality="text",
    splits=GP_L_SPLITS,
    make_env=make_gp_l,
    default_verify_iter=DEFAULT_VERIFY_ITER,
    parse_answer=parse_answer,
    action_field="formula",
    gym_id="harness/gp-l-v0",
    version=VERSION,
)
GP_VL = TaskSpec(
    name="gp-vl",
    description="GeneralPoints from a rendered image of four cards: recognise them, then reach the target",
    modality="vision",
    splits=GP_VL_SPLITS,
    make_env=make_gp_vl,
    default_verify_iter=DEFAULT_VERIFY_ITER,
    metrics=(MetricSpec("recognition_accuracy", "answers whose recognised cards match the hand", kind="ratio"),),
    parse_answer=parse_answer,
    action_field="formula",
    gym_id="harness/gp-vl-v0",
    version=VERSION,
)


def _register_gym() -> None:
    for spec, factory in ((GP_L, make_gp_l), (GP_VL, make_gp_vl)):
        if spec.gym_id and spec.gym_id not in gymnasium.registry:
            # gym.make's passive checker wants array spaces (ours hold Observation objects and free text);
            # gymnasium.utils.env_checker.check_env passes on the unwrapped env
            gymnasium.register(id=spec.gym_id, entry_point=factory, disable_env_checker=True)


_register_gym()


@hookimpl
def harness_tasks() -> list[TaskSpec]:
    return [GP_L, GP_VL]
