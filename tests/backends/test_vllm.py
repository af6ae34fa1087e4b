"""The vllm backend. The conversion and argument pieces run everywhere; the engine test needs vllm and a GPU."""

from __future__ import annotations

import base64
import importlib.util
import io
import warnings
from pathlib import Path

import pytest
from PIL import Image

from harness.plugins import load_registry
from harness.types import GenParams, Message, Request
from harness_plugins.vllm_backend.backend import (
    VLLMUnavailableError,
    check_available,
    create,
    request_seed,
    sampling_kwargs,
    split_model_args,
    to_chat_messages,
)


def _gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


HAVE_VLLM = importlib.util.find_spec("vllm") is not None


def _request(turn: int = 0) -> Request:
    im = Image.new("RGBA", (2000, 500), (255, 0, 0, 255))
    return Request((Message.make("system", "Be brief."), Message.make("user", "Which card?", [im]),
                    Message.make("assistant", "A"), Message.make("user", "Wrong.")), 42, turn)


def test_split_model_args_converts_engine_args_and_keeps_own() -> None:
    own, engine = split_model_args({
        "pretrained": "/ckpt", "tensor_parallel_size": "2", "gpu_memory_utilization": "0.8",
        "limit_mm_per_prompt": '{"image": 2}', "enforce_eager": "true", "dtype": "bfloat16",
        "max_model_len": 4096, "max_image_size": "512", "something_new": "x"})
    assert own == {"model": "/ckpt", "max_image_size": 512, "image_format": "pil", "chat_template": None}
    assert engine == {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.8, "limit_mm_per_prompt": {"image": 2},
                      "enforce_eager": True, "dtype": "bfloat16", "max_model_len": 4096, "something_new": "x"}
    # a dict from an alias (or a JSON --model-args) passes through as is
    assert split_model_args({"model": "m", "limit_mm_per_prompt": {"image": 4}})[1] == {
        "limit_mm_per_prompt": {"image": 4}}


def test_split_model_args_errors() -> None:
    with pytest.raises(ValueError, match="needs model="):
        split_model_args({"dtype": "auto"})
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        split_model_args({"model": "m", "tensor_parallel_size": "two"})
    with pytest.raises(ValueError, match="limit_mm_per_prompt"):
        split_model_args({"model": "m", "limit_mm_per_prompt": "{image: 2"})
    with pytest.raises(ValueError, match="image_format"):
        split_model_args({"model": "m", "image_format": "jpeg"})


def test_messages_as_pil_parts() -> None:
    msgs = to_chat_messages(_request(), max_image_size=1000)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[0]["content"] == "Be brief." and msgs[3]["content"] == "Wrong."
    image_part, text_part = msgs[1]["content"]
    assert image_part["type"] == "image_pil" and image_part["image_pil"].size == (1000, 250)
    assert image_part["image_pil"].mode == "RGB"
    assert text_part == {"type": "text", "text": "Which card?"}


def test_messages_as_data_urls() -> None:
    msgs = to_chat_messages(_request(), max_image_size=100, image_format="data_url")
    url = msgs[1]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (100, 25)


def test_sampling_params() -> None:
    greedy = sampling_kwargs(GenParams(max_tokens=64), _request())
    assert greedy["temperature"] == 0.0 and greedy["max_tokens"] == 64 and "top_p" not in greedy
    hot = sampling_kwargs(GenParams(temperature=0.7, top_p=0.9, seed=3), _request())
    assert hot["temperature"] == 0.7 and hot["top_p"] == 0.9
    # seeds depend on run seed, episode and turn, and fit in 31 bits
    seeds = {request_seed(GenParams(seed=s), _request(t)) for s in (0, 1) for t in (0, 1)}
    assert len(seeds) == 4 and all(0 <= s < 2**31 for s in seeds)
    assert request_seed(GenParams(seed=1), _request()) == request_seed(GenParams(seed=1), _request())


def test_plugin_registers_backend_and_aliases() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = load_registry()
    spec = reg.backend("vllm")
    assert spec.extra == "vllm"
    assert reg.models["qwen2-vl-7b-vllm"].backend == "vllm"


@pytest.mark.skipif(HAVE_VLLM and _gpu(), reason="vllm and a GPU are present: nothing to refuse")
def test_selecting_vllm_without_it_names_extra_and_gpu() -> None:
    with pytest.raises(VLLMUnavailableError) as err:
        create({"model": "Qwen/Qwen2-VL-2B-Instruct"})
    assert isinstance(err.value, ImportError)  # the CLI adds the install hint for ImportErrors
    assert "harness[vllm]" in str(err.value) and "GPU" in str(err.value)


@pytest.mark.gpu
@pytest.mark.slow
def test_vllm_engine_with_tiny_qwen2_vl(tmp_path: Path) -> None:
    pytest.importorskip("vllm", reason="vllm is not installed (GPU machines: pip install 'harness[vllm]')")
    if not _gpu():
        pytest.skip("vllm needs a CUDA GPU")
    check_available()
    from harness_plugins.hf.tiny import make_tiny

    path = make_tiny("qwen2-vl", tmp_path / "qwen2-vl")
    backend = create({"model": str(path), "max_model_len": 2048, "gpu_memory_utilization": 0.2,
                      "enforce_eager": True, "limit_mm_per_prompt": {"image": 2}})
    try:
        reqs = [_request(t) for t in range(3)]
        out = backend.generate(reqs, GenParams(max_tokens=8))
        assert len(out) == 3 and all(c.prompt_tokens > 10 and 1 <= c.completion_tokens <= 8 for c in out)
        again = backend.generate(reqs[:1], GenParams(max_tokens=8))
        assert again[0].text == out[0].text
    finally:
        backend.close()


def test_parallel_plan_one_process_and_torchrun() -> None:
    from harness_plugins.vllm_backend.backend import parallel_plan

    engine, dp = parallel_plan({"tensor_parallel_size": 4}, world=1, rank=0)
    assert engine == {"tensor_parallel_size": 4} and dp is None  # TP passes straight through to vllm.LLM
    with pytest.raises(ValueError, match="torchrun --nproc_per_node 4"):
        parallel_plan({"tensor_parallel_size": 2, "data_parallel_size": 2}, world=1, rank=0)
    # 8 processes, TP 2: four engines (data parallel 4), each pair plays one share, its first process records
    plans = [parallel_plan({"tensor_parallel_size": 2}, world=8, rank=r) for r in range(8)]
    assert all(e["distributed_executor_backend"] == "external_launcher" and e["data_parallel_size"] == 4
               for e, _ in plans)
    assert [dp for _, dp in plans] == [(0, 4, True), (0, 4, False), (1, 4, True), (1, 4, False),
                                       (2, 4, True), (2, 4, False), (3, 4, True), (3, 4, False)]
    with pytest.raises(ValueError, match="must equal the number of processes"):
        parallel_plan({"tensor_parallel_size": 3}, world=8, rank=0)


def test_runner_shares_follow_the_backend() -> None:
    from harness.distributed import Group

    class TP:
        data_parallel = (1, 4, False)

    g = Group(rank=3, world=8, share=3, shares=8).for_backend(TP())
    assert (g.share, g.shares, g.records) == (1, 4, False) and g.mine(list(range(10))) == [1, 5, 9]
    assert Group(0, 2, 0, 2).for_backend(object()).mine([0, 1, 2, 3, 4]) == [0, 2, 4]
