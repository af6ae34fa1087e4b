"""The ``sft`` recipe: supervised fine-tuning on the task oracle's transcripts or on the paper's SFT data.

A step is one optimiser step over ``batch_size`` examples, split evenly over the processes, each process
accumulating its share over micro-batches of ``micro_batch``. Examples come from the task's oracle
(single-turn by default, as the paper's SFT data; ``revision_frac`` > 0 adds episodes that start with a
wrong answer and the verifier's feedback, see :mod:`harness_plugins.recipes.data`) or, with ``data=PATH``, from
LLaVA-style records (the paper's SFT data format). The loss is the mean cross-entropy over the answer
tokens of the whole batch (the answer and its end-of-turn token); prompts are context only.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from harness.types import TrainJob
from harness_plugins.recipes.config import SFTArgs, parse_args
from harness_plugins.recipes.data import Example, expert_stream, llava_records
from harness_plugins.recipes.trainer import Trainer, log, metrics_line

DEFAULT_LR_FULL = 1e-5
DEFAULT_LR_LORA = 1e-4


def examples(job: TrainJob, args: SFTArgs) -> Iterator[Example]:
    if args.data:
        return llava_records(args.data, seed=job.seed, image_folder=args.image_folder or None)
    return expert_stream(job.task, job.split, seed=job.seed, verify_iter=job.verify_iter,
                         revision_frac=args.revision_frac, max_wrong=args.max_wrong, dataset_size=args.dataset_size)


def run(job: TrainJob) -> Mapping[str, Any]:
    args = parse_args(SFTArgs, job.recipe_args, "sft")
    if job.steps is None and job.budget_flops is None:
        raise ValueError("give --steps N or --budget FLOPS")
    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun / accelerate launch
    if args.batch_size % world:
        raise ValueError(f"batch_size ({args.batch_size}) must be a multiple of the number of processes ({world})")
    per_process = args.batch_size // world
    micro = min(args.micro_batch, per_process)
    tr = Trainer(job, args, lr=args.lr_or(DEFAULT_LR_FULL, DEFAULT_LR_LORA), micro_batches=math.ceil(
        per_process / micro), micro_batch_size=micro)
    policy = tr.policy
    rank = tr.acc.process_index
    if tr.world != world:
        raise RuntimeError(f"WORLD_SIZE={world} but accelerate runs {tr.world} processes")
    stream = examples(job, args)
    t0 = time.perf_counter()
    losses: list[float] = []
    while True:
        # every process takes its own equal slice of the global batch from the same deterministic stream
        batch = list(itertools.islice(stream, args.batch_size))[rank::world]
        targets = [policy.completion_ids(ex.answer) for ex in batch]
        n_target = tr.sum([sum(len(t) for t in targets)])[0]  # answer tokens of the whole batch
        chunks = [range(lo, min(lo + micro, len(batch))) for lo in range(0, len(batch), micro)]
        total = [0.0]

        def loss_of(i: int, chunks: list[range] = chunks, targets: list[list[int]] = targets,
                    batch: list[Example] = batch, total: list[float] = total, n_target: float = n_target) -> Any:
            idx = chunks[i]
            enc = policy.encode([batch[j].messages for j in idx], [targets[j] for j in idx])
            with tr.autocast():
                logp, _ = tr.model(enc.inputs, enc.n_completion)
            tr.count(trained=enc.tokens, trained_flops=policy.flops.train(enc.passes, frozen_base=args.lora))
            nll = -(logp * enc.mask).sum()
            total[0] += float(nll.detach())
            # gradient syncs average over processes: x world makes the result the whole batch's mean
            return nll * world / max(1.0, n_target)

        tr.micro_steps(len(chunks), loss_of)
        tr.end_update()
        losses.append(tr.sum(total)[0] / max(1.0, n_target))
        if args.log_every and (tr.step + 1) % args.log_every == 0 and tr.main:
            log.info(metrics_line(tr.step + 1, {"loss": sum(losses[-args.log_every:]) / args.log_every,
                                                "s": time.perf_counter() - t0}))
        seen = (tr.step + 1) * args.batch_size
        if tr.end_step({"loss": losses[-1], "examples_seen": seen}, examples_seen=seen, loss=losses[-1]):
            break
    tr.finish()
    return tr.summary(final_loss=losses[-1] if losses else None, wall_s=time.perf_counter() - t0,
                      data=args.data or "oracle")


__all__ = ["DEFAULT_LR_FULL", "DEFAULT_LR_LORA", "examples", "run"]
