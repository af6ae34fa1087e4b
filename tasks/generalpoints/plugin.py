"""Registers gp-l and gp-vl with harness, and their Gymnasium ids (``harness/gp-l-v0``, ``harness/gp-vl-v0``)."""

from __future__ import annotations

from harness.hookspecs import hookimpl
from harness.types import TaskSpec
from harness_tasks.generalpoints.env import GeneralPointsL, GeneralPointsVL

DEFAULT_VERIFY_ITER = GeneralPointsL.verify_iter
GP_L: TaskSpec = GeneralPointsL.spec()
GP_VL: TaskSpec = GeneralPointsVL.spec()
make_gp_l = GeneralPointsL.make_env
make_gp_vl = GeneralPointsVL.make_env

GeneralPointsL.register_gym()
GeneralPointsVL.register_gym()


@hookimpl
def harness_tasks() -> list[TaskSpec]:
    return [GP_L, GP_VL]
