"""Peak memory of one training step with and without gradient checkpointing, through the recipes' Policy.

A small random Llama (hidden 256, 8 layers, 8 heads; built offline) trains on a batch of long sequences
(the RL recipe's forward: completion log-probs and the value head, then backward). Each configuration runs
in a fresh subprocess so peak RSS is its own; on a GPU the script reports ``torch.cuda.max_memory_allocated``
too. "saved activations" is what autograd keeps between the forward and the backward pass (measured with
``torch.autograd.graph.saved_tensors_hooks``): what checkpointing is for.

    python benchmarks/bench_memory.py [--batch 4] [--seq 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(out: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness_plugins.hf.tiny import make_tiny

    path = make_tiny("llama", out)  # tokenizer and template from the tiny model, then a bigger body
    cfg = LlamaConfig.from_pretrained(path)
    cfg.update({"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 8, "num_attention_heads": 8,
                "num_key_value_heads": 8, "head_dim": 32})
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def one(path: str, checkpointing: bool, batch: int, seq: int) -> dict:
    import torch

    from harness.types import Message
    from harness_plugins.recipes.policy import Policy

    torch.manual_seed(0)
    p = Policy({"pretrained": path}, gradient_checkpointing=checkpointing, value_head=True, disable_dropout=True)
    words = " ".join(str(i % 10) for i in range(seq))
    convs = [[Message.make("user", words)]] * batch
    enc = p.encode(convs, [p.completion_ids("12 34 56 78")] * batch)
    saved = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[0] += t.numel() * t.element_size()
        return t

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logp, values = p.module(enc.inputs, enc.n_completion, want_values=True)
    (-(logp * enc.mask).sum() + values.sum()).backward()
    out = {"checkpointing": checkpointing, "tokens": int(enc.tokens), "saved_activations_mb": saved[0] / 2 ** 20,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--child", nargs=2, metavar=("PATH", "CKPT"))
    a = ap.parse_args()
    if a.child:
        print(json.dumps(one(a.child[0], a.child[1] == "1", a.batch, a.seq)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = build(Path(tmp) / "llama")
        rows = []
        for ck in (False, True):
            cmd = [sys.executable, __file__, "--batch", str(a.batch), "--seq", str(a.seq), "--child", str(path),
                   "1" if ck else "0"]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ,
                                                                                         "OMP_NUM_THREADS": "1"})
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
