"""The policy: log-probs of sampled ids are the sampler's own, independent of padding; LoRA checkpoints
are saved merged and reload through the hf backend with the trained behaviour; VLMs take images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.types import Message


def _convs() -> list[list[Message]]:
    return [[Message.make("user", "What is 2 + 3?")],
            [Message.make("user", "A longer question, so the batch needs padding: what is 7 * 6?"),
             Message.make("assistant", "40"), Message.make("user", "Wrong, try again.")]]


def test_logprobs_match_generation_and_ignore_padding(tiny_llama: Path) -> None:
    from harness_plugins.recipes.policy import Policy

    p = Policy({"pretrained": str(tiny_llama)})
    convs = _convs()
    ids, prompt_tokens = p.generate(convs, max_new_tokens=6, temperature=1.0, seed=3)
    assert all(ids) and all(n > 0 for n in prompt_tokens)
    with torch.no_grad():
        enc = p.encode(convs, ids)
        batched, _ = p.module(enc.inputs, enc.n_completion)
        for i in range(2):
            one = p.encode([convs[i]], [ids[i]])
            alone, _ = p.module(one.inputs, one.n_completion)
            n = len(ids[i])
            assert torch.allclose(batched[i, :n], alone[0, :n], atol=1e-4)
        # the sampler's distribution: greedy decoding picks each token's argmax
        greedy, _ = p.generate(convs[:1], max_new_tokens=4, temperature=0.0, seed=0)
        enc = p.encode(convs[:1], greedy)
        out = p.module.lm(**enc.inputs)
        n_prompt = enc.inputs["input_ids"].shape[1] - enc.n_completion
        preds = out.logits[0, n_prompt - 1:-1].argmax(-1).tolist()
    assert preds[:len(greedy[0])] == greedy[0]


def test_lora_checkpoint_is_merged_and_loads_as_plain_model(tiny_llama: Path, tmp_path: Path) -> None:
    from harness_plugins.hf.backend import create
    from harness_plugins.recipes.policy import Policy

    p = Policy({"pretrained": str(tiny_llama)}, lora=True, lora_r=4, lora_alpha=8, value_head=True)
    opt = torch.optim.SGD([q for q in p.module.parameters() if q.requires_grad], lr=0.5)
    convs = _convs()
    targets = [p.completion_ids("5"), p.completion_ids("42")]
    for _ in range(3):
        enc = p.encode(convs, targets)
        logp, _ = p.module(enc.inputs, enc.n_completion)
        (-(logp * enc.mask).sum()).backward()
        opt.step()
        opt.zero_grad()
    with torch.no_grad():
        enc = p.encode(convs, targets)
        trained, _ = p.module(enc.inputs, enc.n_completion)
    out = p.save(tmp_path / "ckpt")
    assert (out / "config.json").is_file() and (out / "tokenizer_config.json").is_file()
    assert not (out / "adapter_config.json").exists()
    backend = create({"pretrained": str(out)})  # the evaluator's loader
    names = [n for n, _ in backend.model.named_parameters()]
    assert not any("lora" in n for n in names)
    reloaded = Policy({"pretrained": str(out)})
    with torch.no_grad():
        enc = reloaded.encode(convs, targets)
        again, _ = reloaded.module(enc.inputs, enc.n_completion)
    base = Policy({"pretrained": str(tiny_llama)})
    with torch.no_grad():
        enc = base.encode(convs, targets)
        before, _ = base.module(enc.inputs, enc.n_completion)
    assert torch.allclose(trained, again, atol=1e-4)
    assert not torch.allclose(before, again, atol=1e-3)  # the adapter's training is in the checkpoint


@pytest.mark.parametrize("arch", ["qwen2-vl", "mllama", "llava"])
def test_vision_policy_trains_on_images(arch: str, tiny_qwen2_vl: Path, tmp_path: Path) -> None:
    from PIL import Image

    from harness_plugins.hf.tiny import make_tiny
    from harness_plugins.recipes.policy import Policy

    model = tiny_qwen2_vl if arch == "qwen2-vl" else make_tiny(arch, tmp_path / arch)
    p = Policy({"pretrained": str(model)}, value_head=True)
    img = Image.new("RGB", (64, 48), (0, 128, 0))
    convs = [[Message.make("user", "Which cards?", [img])], [Message.make("user", "Which cards now?", [img])]]
    ids, _ = p.generate(convs, max_new_tokens=4, temperature=1.0, seed=0)
    enc = p.encode(convs, ids)
    assert "pixel_values" in enc.inputs and enc.tokens > sum(len(i) for i in ids) + 8  # image tokens counted
    logp, values = p.module(enc.inputs, enc.n_completion, want_values=True)
    assert values is not None and values.shape == (2,)
    (-(logp * enc.mask).sum() + values.sum()).backward()
    assert p.module.lm.lm_head.weight.grad is not None or any(
        q.grad is not None for q in p.module.lm.parameters())
    p.save(tmp_path / "vl")
    reloaded = Policy({"pretrained": str(tmp_path / "vl")})
    assert reloaded.backend.is_vision
