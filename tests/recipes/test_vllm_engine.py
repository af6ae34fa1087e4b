"""The colocated vLLM rollout engine, checked on CPU against a stand-in for the vLLM objects it calls
(the real engine needs a CUDA GPU: tests/backends/test_vllm.py -m gpu). What is checked is ours: the
weights we hand over (names a checkpoint would have, LoRA merged, in the engine's dtype, from GPU memory
rather than a file), the order of sleep / wake-up / load / cache reset, and that vLLM gets the trainer's
own prompts and resized images."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from PIL import Image

from harness.types import Message, SplitSpec, TaskSpec, TrainJob
from harness_plugins.recipes.config import RLArgs

TASK = TaskSpec("unused", "", "vision", (SplitSpec("id", ""),), lambda *a, **k: None)


class FakeModel:
    def __init__(self, log: list) -> None:
        self.log, self.loaded = log, {}

    def load_weights(self, weights):
        for name, t in weights:
            self.loaded[name] = t
        self.log.append("load")


class FakeLLM:
    def __init__(self) -> None:
        self.log: list[Any] = []
        self.model = FakeModel(self.log)
        runner = SimpleNamespace(model=self.model)
        self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(driver_worker=SimpleNamespace(
            model_runner=runner)), model_config=SimpleNamespace(dtype=torch.bfloat16))

    def sleep(self, level: int) -> None:
        self.log.append(("sleep", level))

    def wake_up(self, tags=None) -> None:
        self.log.append(("wake", tuple(tags or ())))

    def reset_prefix_cache(self) -> None:
        self.log.append("reset")


def _trainer(model: Path, tmp_path: Path, **args: Any):
    from harness_plugins.recipes.trainer import Trainer

    job = TrainJob(recipe="rl", model=str(model), model_args={"pretrained": str(model), "max_image_size": 32},
                   task=TASK, split="id", out_dir=str(tmp_path), evaluate=lambda d, i: [], steps=1)
    return Trainer(job, RLArgs(**args), lr=1e-5, value_head=True)


@pytest.mark.parametrize("lora", [False, True])
def test_weight_sync_in_memory_with_sleep_and_wake(tiny_qwen2_vl: Path, tmp_path: Path, lora: bool) -> None:
    from harness_plugins.recipes.vllm_engine import VLLMGenerator

    tr = _trainer(tiny_qwen2_vl, tmp_path, lora=lora, lora_r=2, lora_alpha=4)
    fake = FakeLLM()
    gen = VLLMGenerator(tr, llm=fake, sleep_level=1)
    gen.sleep()
    n = gen.sync(tr.policy)
    saved = tr.policy.save(tmp_path / "ckpt")
    from safetensors.torch import load_file

    on_disk = load_file(saved / "model.safetensors")
    tied = {"lm_head.weight"} if getattr(tr.policy.backend.config, "tie_word_embeddings", False) else set()
    assert n == len(fake.model.loaded) and set(fake.model.loaded) - tied == set(on_disk)  # a checkpoint's names
    assert not any("lora" in k or "value_head" in k for k in fake.model.loaded)
    assert {t.dtype for t in fake.model.loaded.values() if t.is_floating_point()} == {torch.bfloat16}
    # the values a saved checkpoint holds (merged LoRA included)
    for k, t in ((k, t) for k, t in fake.model.loaded.items() if k in on_disk):
        assert torch.allclose(t.float(), on_disk[k].float(), atol=1e-2), k
    assert fake.log[0] == ("sleep", 1) and fake.log[1] == ("wake", ("weights",))
    assert fake.log[-2:] == [("wake", ("kv_cache",)), "reset"] and set(fake.log[2:-2]) == {"load"}


def test_vllm_gets_the_trainers_prompts_and_resized_images(tiny_qwen2_vl: Path, tmp_path: Path) -> None:
    from harness_plugins.recipes.vllm_engine import VLLMGenerator

    tr = _trainer(tiny_qwen2_vl, tmp_path)
    gen = VLLMGenerator(tr, llm=FakeLLM())
    img = Image.new("RGB", (200, 100), (0, 90, 0))
    convs = [[Message.make("user", "What cards?", [img])], [Message.make("user", "No image here.")]]
    reqs = gen.requests(convs)
    texts, images = tr.policy.prompts(convs)
    assert reqs[0]["prompt"] == texts[0] and reqs[1] == {"prompt": texts[1]}
    sent = reqs[0]["multi_modal_data"]["image"]
    assert sent.size == images[0][0].size == (32, 16)  # max_image_size applies to both, identically
    enc = tr.policy.backend.inputs([texts[0]], [[sent]])
    assert "pixel_values" in enc  # the same processor input the trainer encodes
