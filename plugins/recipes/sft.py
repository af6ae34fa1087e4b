"""The ``sft`` recipe: supervised fine-tuning on the task oracle's transcripts.

A step is one optimiser step over ``batch_size`` examples (expert answers in context, revisions after
feedback included, see :mod:`plugins.recipes.data`). The loss is the mean cross-entropy over the answer
tokens only (the expert's answer and its end-of-turn token); prompts, earlier wrong answers and feedback
are context. Every token of the sequence is counted in the training FLOPs (6 N D).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from typing import Any

from harness.types import TrainJob
from plugins.recipes.config import SFTArgs, parse_args
from plugins.recipes.data import expert_stream
from plugins.recipes.trainer import Trainer, log, metrics_line

DEFAULT_LR_FULL = 1e-5
DEFAULT_LR_LORA = 1e-4


def run(job: TrainJob) -> Mapping[str, Any]:
    args = parse_args(SFTArgs, job.recipe_args, "sft")
    tr = Trainer(job, args, lr=args.lr_or(DEFAULT_LR_FULL, DEFAULT_LR_LORA))
    policy = tr.policy
    rank, world = tr.acc.process_index, tr.world
    stream = expert_stream(job.task, job.split, seed=job.seed, verify_iter=job.verify_iter,
                           revision_frac=args.revision_frac, max_wrong=args.max_wrong,
                           dataset_size=args.dataset_size)
    t0 = time.perf_counter()
    losses: list[float] = []
    while True:
        # every process takes its own slice of the global batch from the same deterministic stream
        batch = list(itertools.islice(stream, args.batch_size))[rank::world]
        targets = [policy.completion_ids(ex.answer) for ex in batch]
        n_target = sum(len(t) for t in targets)
        total = 0.0
        for lo in range(0, len(batch), args.micro_batch):
            chunk = batch[lo:lo + args.micro_batch]
            enc = policy.encode([ex.messages for ex in chunk], targets[lo:lo + args.micro_batch])
            logp, _ = tr.model(enc.inputs, enc.n_completion)
            # sum over this chunk's answer tokens / all answer tokens of the batch = the batch's mean
            loss = -(logp * enc.mask).sum() / max(1, n_target)
            tr.acc.backward(loss)
            total += float(loss.detach())
            tr.count(trained=enc.tokens)
        tr.optimizer_step()
        losses.append(tr.mean(total))
        if args.log_every and (tr.step + 1) % args.log_every == 0 and tr.main:
            log.info(metrics_line(tr.step + 1, {"loss": sum(losses[-args.log_every:]) / args.log_every,
                                                "s": time.perf_counter() - t0}))
        if tr.end_step(examples_seen=(tr.step + 1) * args.batch_size, loss=losses[-1]):
            break
    return tr.summary(final_loss=losses[-1] if losses else None, wall_s=time.perf_counter() - t0)


__all__ = ["DEFAULT_LR_FULL", "DEFAULT_LR_LORA", "run"]
