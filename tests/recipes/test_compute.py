"""FLOPs accounting: the 6ND estimate against torch's own FLOP counter on a real forward + backward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.compute import FlopsMeter, count_params, estimate_flops


def test_meter_arithmetic() -> None:
    m = FlopsMeter(n_params=1000)
    m.add_trained(10)
    m.add_rollout(5)
    m.add_forward(3)
    assert m.flops == 6 * 1000 * 10 + 2 * 1000 * (5 + 3)
    assert estimate_flops(1000, 10, 5) == 6 * 1000 * 10 + 2 * 1000 * 5
    assert m.as_dict()["trained_tokens"] == 10


def test_count_params_skips_lookup_tables_but_keeps_the_head() -> None:
    emb = torch.nn.Embedding(100, 8)
    model = torch.nn.Sequential(emb, torch.nn.Linear(8, 8))
    assert count_params(model) == 8 * 8 + 8  # the table is a gather, not a matmul

    class Tied(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(100, 8)
            self.body = torch.nn.Linear(8, 8, bias=False)
            self.head = torch.nn.Linear(8, 100, bias=False)
            self.head.weight = self.emb.weight

        def get_output_embeddings(self) -> torch.nn.Module:
            return self.head

    assert count_params(Tied()) == 64 + 800  # tied head counted once, as a matmul


@pytest.mark.parametrize("arch", ["llama", "qwen2-vl", "qwen2.5-vl", "llava", "mllama"])
def test_flops_model_matches_torch_flop_counter(arch: str, tmp_path: Path) -> None:
    """FlopsModel against torch's own counter on the recipes' own passes: a PPO training pass (log-probs of
    a completion with logits_to_keep, the value head, backward) and a rollout (hf generate with a KV cache),
    for a text model and each VLM family (vision tower per patch or tile, projector, Mllama's
    cross-attention). Eager attention: the CPU SDPA kernel is not in FlopCounterMode's table."""
    from PIL import Image
    from torch.utils.flop_counter import FlopCounterMode

    from harness.types import Message
    from harness_plugins.hf.tiny import make_tiny
    from harness_plugins.recipes.policy import Policy

    p = Policy({"pretrained": str(make_tiny(arch, tmp_path / arch)), "attn_implementation": "eager"},
               value_head=True)
    images = [Image.new("RGB", (96, 64), (0, 120, 0))] if arch != "llama" else []
    convs = [[Message.make("user", "Which cards are these? Answer in JSON.", images)]] * 2
    enc = p.encode(convs, [p.completion_ids('{"cards": ["5", "K"], "formula": "5*10"}')] * 2)
    with FlopCounterMode(display=False) as counter:
        logp, values = p.module(enc.inputs, enc.n_completion, want_values=True)
        (-(logp * enc.mask).sum() + values.sum()).backward()
    measured = counter.get_total_flops()
    assert abs(p.flops.train(enc.passes, values=True) - measured) / measured < 0.05
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ids, prompt_tokens = p.generate(convs[:1], max_new_tokens=12, temperature=1.0, seed=0)
    measured = counter.get_total_flops()
    estimate = p.flops.generate(prompt_tokens[0], len(ids[0]), p.images_of(convs[0]))
    assert abs(estimate - measured) / measured < 0.05
    # the 6ND rule this replaced books the head on every token and leaves attention and vision out
    assert p.flops.head > 0 and p.flops.width > 0 and (p.flops.vision is not None) == bool(images)


def test_modules_that_do_not_run_are_not_counted(tmp_path: Path) -> None:
    from harness.compute import Pass
    from harness_plugins.hf.tiny import make_tiny
    from harness_plugins.recipes.policy import Policy

    p = Policy({"pretrained": str(make_tiny("mllama", tmp_path / "m"))})
    text_only = p.flops.forward([Pass(20, 5)])
    assert text_only == 2.0 * (p.flops.body * 20 + p.flops.head * 5) + 4.0 * p.flops.width * 400
    assert p.flops.vision is not None and p.flops.vision.cross_rest > 0  # only paid with images
