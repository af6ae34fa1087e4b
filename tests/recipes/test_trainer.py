"""The trainer's numerics: fp32 master weights keep the paper's tiny learning rate, bf16 autocast really
runs, pure bf16 warns, gradient checkpointing really checkpoints (training mode, dropout off), and the
cosine schedule follows CosineAnnealingLR."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch

from harness.types import Message, SplitSpec, TaskSpec, TrainJob
from harness_plugins.recipes.config import SFTArgs
from harness_plugins.recipes.policy import Policy, zero_dropout

TASK = TaskSpec("unused", "", "text", (SplitSpec("id", ""),), lambda *a, **k: None)


def _job(model: Path, tmp_path: Path, steps: int = 1) -> TrainJob:
    return TrainJob(recipe="sft", model=str(model), model_args={"pretrained": str(model)}, task=TASK, split="id",
                    out_dir=str(tmp_path), evaluate=lambda d, i: [], seed=0, steps=steps)


def _sft_step(tr) -> None:
    p = tr.policy
    convs = [[Message.make("user", "What is 2 + 3?")], [Message.make("user", "Say hi.")]]
    targets = [p.completion_ids("5"), p.completion_ids("hi there")]

    def loss(_: int):
        enc = p.encode(convs, targets)
        with tr.autocast():
            logp, _ = tr.model(enc.inputs, enc.n_completion)
        return -(logp * enc.mask).sum() / enc.mask.sum()

    tr.micro_steps(1, loss)


def _changed(before: dict, module: torch.nn.Module) -> float:
    after = {n: q.detach() for n, q in module.named_parameters()}
    changed = sum(int((after[n] != b).sum()) for n, b in before.items())
    return changed / sum(b.numel() for b in before.values())


def test_fp32_master_weights_take_a_1e6_step_under_bf16_autocast(tiny_llama: Path, tmp_path: Path) -> None:
    from harness_plugins.recipes.trainer import Trainer

    tr = Trainer(_job(tiny_llama, tmp_path), SFTArgs(lr=1e-6, precision="bf16-mixed", grad_clip=0), lr=1e-6)
    lm = tr.policy.module.lm
    assert {q.dtype for q in lm.parameters()} == {torch.float32}
    seen = []
    hook = lm.lm_head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    before = {n: q.detach().clone() for n, q in lm.named_parameters()}
    _sft_step(tr)
    hook.remove()
    assert seen == [torch.bfloat16]  # the matmuls ran in bf16
    assert _changed(before, lm) > 0.9  # ... and Adam's 1e-6 steps landed in the fp32 weights


def test_pure_bf16_warns_and_loses_small_steps(tiny_llama: Path, tmp_path: Path, caplog) -> None:
    from harness_plugins.recipes.trainer import Trainer

    with caplog.at_level(logging.WARNING, logger="harness.recipes"):
        tr = Trainer(_job(tiny_llama, tmp_path), SFTArgs(lr=1e-6, precision="bf16", grad_clip=0), lr=1e-6)
    assert "precision=bf16 at lr 1e-06" in caplog.text and "bf16-mixed" in caplog.text
    lm = tr.policy.module.lm
    assert {q.dtype for q in lm.parameters()} == {torch.bfloat16}
    before = {n: q.detach().clone() for n, q in lm.named_parameters()}
    _sft_step(tr)
    assert _changed(before, lm) < 0.1  # what the warning is about


def _saved_bytes(policy: Policy) -> int:
    """Bytes autograd keeps for the backward pass of one forward (outside checkpointed regions, which
    keep nothing but their inputs)."""
    total = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        total[0] += t.numel() * t.element_size()
        return t

    convs = [[Message.make("user", "A question long enough to make activations count " * 4)]] * 4
    enc = policy.encode(convs, [policy.completion_ids("an answer of a few tokens")] * 4)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logp, _ = policy.module(enc.inputs, enc.n_completion)
    (-logp.sum()).backward()
    return total[0]


def test_gradient_checkpointing_saves_fewer_activations(tiny_llama: Path) -> None:
    plain = Policy({"pretrained": str(tiny_llama)}, disable_dropout=True)
    ckpt = Policy({"pretrained": str(tiny_llama)}, gradient_checkpointing=True, disable_dropout=True)
    assert ckpt.module.training and ckpt.module.lm.training  # transformers checkpoints in training mode only
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in ckpt.module.lm.modules()
              if isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing]
    assert len(layers) == ckpt.backend.config.num_hidden_layers
    without, with_ = _saved_bytes(plain), _saved_bytes(ckpt)
    assert with_ < 0.6 * without, (with_, without)
    # the same function either way: checkpointing changes memory, not numbers
    convs = [[Message.make("user", "2 + 2?")]]
    a, b = (p.encode(convs, [p.completion_ids("4")]) for p in (plain, ckpt))
    assert torch.allclose(plain.module(a.inputs, a.n_completion)[0], ckpt.module(b.inputs, b.n_completion)[0],
                          atol=1e-5)


def test_training_mode_without_dropout_matches_eval_mode(tmp_path: Path) -> None:
    """PPO's ratios compare the model with itself: zero_dropout makes training mode deterministic."""
    from harness_plugins.hf.tiny import make_tiny

    path = make_tiny("llama", tmp_path / "drop")
    import json

    cfg = json.loads((path / "config.json").read_text())
    cfg["attention_dropout"] = 0.5
    (path / "config.json").write_text(json.dumps(cfg))
    p = Policy({"pretrained": str(path)}, disable_dropout=False)
    convs = [[Message.make("user", "2 + 2?")]]
    enc = p.encode(convs, [p.completion_ids("4 is the answer")])
    with torch.no_grad():
        noisy = [p.module(enc.inputs, enc.n_completion)[0] for _ in range(2)]
    assert not torch.allclose(noisy[0], noisy[1])  # the test model really has dropout
    assert zero_dropout(p.module) > 0
    with torch.no_grad():
        train = p.module(enc.inputs, enc.n_completion)[0]
        with p.eval_mode():
            evaluated = p.module(enc.inputs, enc.n_completion)[0]
    assert p.module.training and torch.allclose(train, evaluated, atol=1e-6)


def test_cosine_schedule_matches_torch(tiny_llama: Path, tmp_path: Path) -> None:
    from harness_plugins.recipes.trainer import Trainer

    args = SFTArgs(lr=1e-3, lr_schedule="cosine", lr_decay_steps=10, min_lr=1e-5)
    tr = Trainer(_job(tiny_llama, tmp_path, steps=4), args, lr=1e-3)
    lrs = []
    for _ in range(12):
        lrs.append(tr.opt.param_groups[0]["lr"])
        tr.end_update()
    want = [1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * min(k, 10) / 10)) / 2 for k in range(12)]
    assert lrs == pytest.approx(want, rel=1e-9)


def test_an_fsdp_config_that_accelerate_drops_on_cpu_is_named(tiny_llama: Path, tmp_path: Path, caplog,
                                                              monkeypatch) -> None:
    """accelerate launch sets ACCELERATE_USE_FSDP from the user's config, and then (on a machine without
    GPUs) runs plain data parallel: the user is told that nothing is sharded."""
    from harness_plugins.recipes.trainer import Trainer

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with caplog.at_level(logging.WARNING, logger="harness.recipes"):
        Trainer(_job(tiny_llama, tmp_path), SFTArgs(grad_clip=0), lr=1e-3)
    assert any("asks for FSDP" in r.getMessage() and "not sharded" in r.getMessage() for r in caplog.records)
