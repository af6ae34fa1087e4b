"""Evaluation over several processes: ``torchrun --nproc_per_node N -m harness.cli eval ...`` or ``accelerate
launch -m harness.cli eval ...``.

Every process runs the same command: it plans the same runs, loads its own copy of the model on its own
device (``LOCAL_RANK``), and plays its share of each run's episodes (episode ``i`` goes to share
``i mod S``). The main process (rank 0) holds the run's lock, decides what is left to play exactly as one
process would (resume, overwrite, identity and shrink checks), and records into samples.jsonl; the others
append to ``samples.part-<rank>.jsonl`` beside it. When every process has played its share, the main
process folds the part files into samples.jsonl and writes run.json: one run, with the episodes, seeds
and metrics of a one-process run. A part file left by a killed run is folded in when the run is resumed,
by one process or many (:meth:`harness.runner.Runner.run`).

Processes coordinate through a gloo process group that carries only small Python objects (the list of
episodes to play, each process's outcome, the final record); no model data crosses processes. A backend
that is itself parallel across processes (vLLM's tensor parallelism under torchrun) says which share each
process plays through a ``data_parallel`` attribute ``(share, shares, records)``: the processes of one
tensor-parallel group play the same episodes in step, and only one of them records them.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

PART_PREFIX = "samples.part-"
# A collective waits for the slowest process's whole share of a run: hours, not gloo's 30 minutes. A process
# that dies is noticed by the launcher (torchrun stops the others), not by this timeout.
TIMEOUT = datetime.timedelta(days=7)


class PeerError(RuntimeError):
    """Another process of the evaluation failed (the message names the process and the error)."""


@dataclass(frozen=True)
class Group:
    """This process's place in a multi-process evaluation."""

    rank: int
    world: int
    share: int  # which share of each run's episodes this process plays
    shares: int
    records: bool = True  # False: a peer in a tensor-parallel group; its leader records the same episodes

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mine(self, todo: Sequence[int]) -> list[int]:
        return list(todo[self.share::self.shares])

    def broadcast(self, obj: Any = None) -> Any:
        """``obj`` from the main process, on every process."""
        import torch.distributed as dist

        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def for_backend(self, backend: Any) -> Group:
        """The shares a backend asks for (``backend.data_parallel``), else one share per process."""
        dp = getattr(backend, "data_parallel", None)
        if dp is None:
            return self
        share, shares, records = dp
        if not (isinstance(share, int) and isinstance(shares, int) and 0 <= share < shares <= self.world):
            raise ValueError(f"backend reported data_parallel={dp!r} for {self.world} processes")
        if self.main and not (share == 0 and records):
            raise ValueError("the main process must play and record share 0")
        return replace(self, share=share, shares=shares, records=bool(records))


def world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def from_env() -> Group | None:
    """The process group torchrun / accelerate launch started this process in (None: one process). Creates
    the gloo group when the launcher did not."""
    world = world_size()
    if world <= 1:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=TIMEOUT)
    rank, world = dist.get_rank(), dist.get_world_size()
    return Group(rank, world, rank, world)


def local_device_index() -> int | None:
    """The GPU a launched process should use (``LOCAL_RANK``, modulo the GPUs it sees), or None."""
    local = os.environ.get("LOCAL_RANK")
    if local is None or world_size() <= 1:
        return None
    try:
        import torch

        n = torch.cuda.device_count()
    except Exception:
        return None
    return int(local) % n if n else None


def outcome(stop: BaseException | None) -> dict[str, str] | None:
    """How a process's share ended, as plain data for the others: None (played), interrupt or error."""
    if stop is None:
        return None
    if isinstance(stop, KeyboardInterrupt):
        return {"kind": "interrupt"}
    return {"kind": "error", "message": f"{type(stop).__name__}: {stop}"[:2000]}


def combined(stops: Sequence[dict[str, str] | None]) -> BaseException | None:
    """One stop for the run from every process's outcome: an interrupt anywhere wins, then the first error."""
    if any(s and s["kind"] == "interrupt" for s in stops):
        return KeyboardInterrupt()
    for rank, s in enumerate(stops):
        if s:
            return PeerError(f"process {rank}: {s['message']}")
    return None


__all__ = ["PART_PREFIX", "Group", "PeerError", "combined", "from_env", "local_device_index", "outcome",
           "world_size"]
