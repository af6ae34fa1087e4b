"""Every tiny architecture builds offline, reloads through the hf backend and generates, batched and alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image

from harness.types import GenParams, Message, Request
from harness_plugins.hf.backend import HFBackend
from harness_plugins.hf.tiny import ARCHS, TINY_INFO_FILE, VISION_ARCHS, make_tiny

GREEDY = GenParams(temperature=0.0, max_tokens=8)


def _request(i: int, images: list[Image.Image]) -> Request:
    text = f"Episode {i}: what are the four cards? Answer with a formula." + " Think." * i
    return Request((Message.make("system", "You play 24."), Message.make("user", text, images)), 1000 + i, 0)


def _requests(vision: bool) -> list[Request]:
    red = Image.new("RGB", (120, 80), (200, 20, 20))
    green = Image.new("RGBA", (40, 70), (20, 200, 20, 255))  # non-RGB input is converted
    if not vision:
        return [_request(i, []) for i in range(4)]
    return [_request(0, [red]), _request(1, [green]), _request(2, [red]), _request(3, [red, green]),
            _request(4, [])]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {arch: make_tiny(arch, root / arch) for arch in ARCHS}


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_builds_reloads_and_generates(arch: str, built: dict[str, Path]) -> None:
    path = built[arch]
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size < 3_000_000, f"{arch} is {size} bytes"
    assert json.loads((path / TINY_INFO_FILE).read_text())["arch"] == arch
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()

    backend = HFBackend(str(path), max_batch_size=8)
    try:
        vision = arch in VISION_ARCHS
        assert backend.is_vision == vision
        reqs = _requests(vision)
        batched = backend.generate(reqs, GREEDY)
        alone = [backend.generate([r], GREEDY)[0] for r in reqs]
        assert len(batched) == len(reqs)
        for b, a in zip(batched, alone, strict=True):
            # left padding is right: the same prompt gives the same greedy answer and counts in any batch
            assert (b.text, b.prompt_tokens, b.completion_tokens) == (a.text, a.prompt_tokens, a.completion_tokens)
            assert b.error is None
            assert 10 < b.prompt_tokens < 2000
            assert 1 <= b.completion_tokens <= GREEDY.max_tokens
        # a longer prompt has more prompt tokens
        assert batched[2].prompt_tokens > batched[0].prompt_tokens
        if vision and arch != "mllama":  # placeholders are expanded per image patch group (mllama: one token)
            assert batched[3].prompt_tokens > batched[2].prompt_tokens + 1
        # image placeholder tokens are kept out of sampling
        if vision:
            image_id = getattr(backend.processor, "image_token_id", None) or backend.config.image_token_id
            assert image_id in backend.suppress_ids
        assert not set(backend.eos_ids) & set(backend.suppress_ids)
    finally:
        backend.close()


def test_same_seed_same_model(tmp_path: Path) -> None:
    a = make_tiny("qwen2", tmp_path / "a", seed=3)
    b = make_tiny("qwen2", tmp_path / "b", seed=3)
    c = make_tiny("qwen2", tmp_path / "c", seed=4)
    weights = [(p / "model.safetensors").read_bytes() for p in (a, b, c)]
    assert weights[0] == weights[1] != weights[2]
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()


def test_unknown_arch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="qwen2-vl"):
        make_tiny("gpt-17", tmp_path)
