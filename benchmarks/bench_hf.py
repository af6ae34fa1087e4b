"""hf backend: one batched generate of 16 requests against a batch-1 loop over the same 16 requests.

Same tiny random Qwen2-VL (harness_plugins.hf.tiny), same prompts (a 448x224 card-table image and a GeneralPoints-
sized instruction each), greedy decoding, CPU. At this size the model's arithmetic is negligible: a decoding
step costs about the same for 1 row as for 16, so what dominates is the per-step Python overhead of
``generate`` (logits processors, cache bookkeeping) and, per request, the processor (PIL resize and
normalise, chat template, tokenizer). Batching amortises the first; the second it cannot.

    HF_HUB_OFFLINE=1 python benchmarks/bench_hf.py [--batch 16] [--max-tokens 32] [--repeats 3] [--threads 1]

Measured on 2 shared CPU cores, 1 torch thread: 4.1-4.5x at max_tokens 32 (processor about 25% of the
batched call, prefill of 16 x 247 tokens another 25%), about 10x at max_tokens 128, where decoding steps
dominate and batching amortises them. With 2 threads on busy shared cores, timings vary by 10x run to run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from PIL import Image, ImageDraw

from harness.types import Completion, GenParams, Message, Request
from harness_plugins.hf.backend import HFBackend
from harness_plugins.hf.tiny import make_tiny

PROMPT = ("You are an expert 24 points card game player. You will receive a set of 4 cards. Note that 'J', "
          "'Q', and 'K' count as '10', and each card must be used once. Your goal is to output a formula "
          "that evaluates to 24 using numbers from the cards and operators such as '+', '-', '*', '/', '(', "
          "')', and '='. Your output should be in the following json format: {\"cards\": [x, y, z, w], "
          "\"number\": [a, b, c, d], \"formula\": 'an equation that equals 24'}. Episode {i}.")


def _image(i: int) -> Image.Image:
    im = Image.new("RGB", (448, 224), (30, 120, 60))
    d = ImageDraw.Draw(im)
    for k in range(4):
        d.rectangle((10 + 110 * k, 20, 100 + 110 * k, 200), fill=(250, 250, 250), outline=(0, 0, 0))
        d.text((30 + 110 * k, 40), str((i + k) % 13 + 1), fill=(200, 0, 0))
    return im


def _requests(n: int) -> list[Request]:
    return [Request((Message.make("user", PROMPT.replace("{i}", str(i)), [_image(i)]),), i, 0) for i in range(n)]


def _timed(fn: object, repeats: int) -> tuple[float, list[Completion]]:
    times, out = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--arch", default="qwen2-vl")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: stable figures on shared cores, where a descheduled second "
                         "thread stalls every batched op)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        path = make_tiny(args.arch, Path(tmp) / args.arch)
        backend = HFBackend(str(path), max_batch_size=args.batch, device="cpu")
        reqs = _requests(args.batch)
        params = GenParams(max_tokens=args.max_tokens)
        backend.generate(reqs[:2], params)  # warm-up

        t_batch, batched = _timed(lambda: backend.generate(reqs, params), args.repeats)
        t_loop, single = _timed(lambda: [backend.generate([r], params)[0] for r in reqs], args.repeats)

        t0 = time.perf_counter()
        for r in reqs:  # what the processor alone costs per request (not batchable work)
            msgs, ims = backend._conversation(r)
            backend._encode([backend._prompt(msgs)], [ims])
        t_proc = time.perf_counter() - t0
        backend.close()

    same = sum(a.text == b.text for a, b in zip(batched, single, strict=True))
    toks = sum(c.completion_tokens for c in batched)
    print(f"hf backend, tiny {args.arch}, CPU ({torch.get_num_threads()} torch threads, "
          f"{os.cpu_count()} cores), batch {args.batch}, max_tokens {args.max_tokens}, "
          f"median of {args.repeats}")
    print(f"  prompt tokens/request: {batched[0].prompt_tokens}; completion tokens total: {toks}")
    print(f"  batched (1 call of {args.batch}): {t_batch:.3f} s  ({toks / t_batch:.0f} tok/s)")
    print(f"  batch-1 loop ({args.batch} calls): {t_loop:.3f} s  ({toks / t_loop:.0f} tok/s)")
    print(f"  speed-up: {t_loop / t_batch:.1f}x; identical greedy answers: {same}/{len(reqs)}")
    print(f"  processor alone, {args.batch} requests one by one: {t_proc:.3f} s")


if __name__ == "__main__":
    main()
