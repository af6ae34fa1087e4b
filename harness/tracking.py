"""Training curves: the numbers a recipe reports each step (``TrainJob.on_step``) written to TensorBoard
event files and, when asked, to Weights & Biases.

``harness train`` opens the trackers named by ``--report-to`` (default ``tensorboard``) on the main process
only. TensorBoard writes under ``<training folder>/tensorboard/<start time>``, so two trainings into one
folder stay two curves; Weights & Biases follows its own environment (``WANDB_MODE=offline``,
``WANDB_PROJECT``, ``WANDB_DIR``; files default to the training folder). Each scalar is logged under
``train/<name>`` against the optimiser step; training FLOPs are one of the scalars, so a curve can be read
against compute too.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

TRACKERS = ("tensorboard", "wandb")
EXTRA = {"tensorboard": "train", "wandb": "wandb"}
TB_FOLDER = "tensorboard"


class TrackingError(ValueError):
    """A tracker that cannot be used (unknown name, or its package is not installed); one line."""


class Tracker(Protocol):
    def log(self, step: int, scalars: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


def scalars_of(values: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a step report (bools and text are not curves)."""
    out = {}
    for k, v in values.items():
        if k == "step" or isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if math.isfinite(v):
            out[str(k)] = float(v)
    return out


class TensorBoardTracker:
    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch's writer needs the tensorboard package
            raise TrackingError(f"--report-to tensorboard needs the tensorboard package ({exc.name or exc}): "
                                f"pip install 'harness[{EXTRA['tensorboard']}]', or pass --report-to none") from None
        self.log_dir = log_dir
        self._w = SummaryWriter(log_dir=str(log_dir))

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        for k, v in scalars.items():
            self._w.add_scalar(f"train/{k}", v, global_step=step)
        self._w.flush()  # a killed training keeps every step logged so far

    def close(self) -> None:
        self._w.close()


class WandbTracker:
    def __init__(self, out_dir: Path, name: str, config: Mapping[str, Any]) -> None:
        try:
            import wandb
        except ImportError:
            raise TrackingError(f"--report-to wandb needs the wandb package: pip install 'harness[{EXTRA['wandb']}]' "
                                "(WANDB_MODE=offline logs without an account)") from None
        out_dir.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(project=os.environ.get("WANDB_PROJECT", "harness"), name=name,
                               dir=os.environ.get("WANDB_DIR") or str(out_dir), config=dict(config),
                               reinit="create_new")

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        self._run.log({f"train/{k}": v for k, v in scalars.items()}, step=step)

    def close(self) -> None:
        self._run.finish()


class Trackers:
    """The trackers asked for, opened at the first step (a training that fails before it leaves no empty
    curve behind) and fed together; closing closes each one once."""

    def __init__(self, names: Sequence[str], out_dir: Path | str, *, name: str = "",
                 config: Mapping[str, Any] | None = None) -> None:
        self.names, self.out_dir, self.name, self.config = list(names), Path(out_dir), name, dict(config or {})
        self.trackers: list[Tracker] = []
        self._opened = False

    @property
    def tensorboard_dir(self) -> Path | None:
        """Where TensorBoard curves go (``tensorboard --logdir`` this folder), when asked for."""
        return self.out_dir / TB_FOLDER if "tensorboard" in self.names else None

    def _open(self) -> None:
        self._opened = True
        try:
            for n in self.names:
                if n == "tensorboard":
                    self.trackers.append(TensorBoardTracker(self.out_dir / TB_FOLDER / time.strftime("%Y%m%d-%H%M%S")))
                elif n == "wandb":
                    self.trackers.append(WandbTracker(self.out_dir, self.name, self.config))
        except BaseException:
            self.close()
            raise

    def log(self, values: Mapping[str, Any]) -> None:
        scalars = scalars_of(values)
        if not scalars or not self.names:
            return
        if not self._opened:
            self._open()
        step = int(values.get("step", 0))
        for t in self.trackers:
            t.log(step, scalars)

    def close(self) -> None:
        trackers, self.trackers = self.trackers, []
        for t in trackers:
            t.close()


def check_installed(names: Sequence[str]) -> None:
    """Fail early, in one line naming the extra, when a tracker's package is missing."""
    import importlib.util

    for n in names:
        module = "tensorboard" if n == "tensorboard" else "wandb"
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise TrackingError(f"--report-to {n} needs the {module} package: pip install 'harness[{EXTRA[n]}]'"
                                + (" (WANDB_MODE=offline logs without an account)" if n == "wandb" else
                                   ", or pass --report-to none"))


def parse_report_to(text: str) -> list[str]:
    """``tensorboard``, ``wandb``, ``tensorboard,wandb`` or ``none``; an unknown name is an error."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names in ([], ["none"]):
        return []
    bad = [n for n in names if n not in TRACKERS]
    if bad:
        raise TrackingError(f"--report-to: unknown tracker {bad[0]!r}; choose from {', '.join(TRACKERS)} or none")
    return list(dict.fromkeys(names))


__all__ = ["TRACKERS", "TensorBoardTracker", "Tracker", "Trackers", "TrackingError", "WandbTracker",
           "check_installed", "parse_report_to", "scalars_of"]
