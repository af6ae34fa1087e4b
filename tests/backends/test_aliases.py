"""Model aliases: the first-party ones, and a user's own from the config file."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from harness.plugins import PluginError, Registry, load_registry


def _registry() -> Registry:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_registry()


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CONFIG", str(tmp_path / "absent.toml"))


@pytest.mark.parametrize(("alias", "backend", "args"), [
    ("llama-3.2-vision", "hf", {"pretrained": "meta-llama/Llama-3.2-11B-Vision-Instruct"}),
    ("qwen2-vl-7b", "hf", {"pretrained": "Qwen/Qwen2-VL-7B-Instruct"}),
    ("qwen2-vl-2b", "hf", {"pretrained": "Qwen/Qwen2-VL-2B-Instruct"}),
    ("qwen2.5-vl-7b", "hf", {"pretrained": "Qwen/Qwen2.5-VL-7B-Instruct"}),
    ("llama-3.2-1b", "hf", {"pretrained": "meta-llama/Llama-3.2-1B-Instruct"}),
    ("gpt-4o", "openai", {"model": "gpt-4o"}),
])
def test_first_party_aliases(alias: str, backend: str, args: dict[str, str]) -> None:
    reg = _registry()
    entry = reg.models[alias]
    assert entry.backend == backend and dict(entry.model_args) == args and entry.description
    if backend in reg.backends:  # openai is another plugin; resolution needs it installed
        spec, resolved, how = reg.resolve_model(alias)
        assert spec.name == backend and resolved == args and how == f"alias -> {backend}"


def test_vision_aliases_mention_vllm_except_mllama() -> None:
    reg = _registry()
    assert "vllm" in reg.models["qwen2-vl-7b"].description
    assert "vllm" in reg.models["llama-3.2-vision"].description.lower()  # says why there is none
    assert "llama-3.2-vision-vllm" not in reg.models
    vl = reg.models["qwen2.5-vl-7b-vllm"]
    assert vl.backend == "vllm" and vl.model_args["model"] == "Qwen/Qwen2.5-VL-7B-Instruct"


def test_user_config_alias_to_a_local_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[models.my-tiny]\nbackend = "hf"\npretrained = "/data/tiny"\nmax_batch_size = 4\n\n'
                   '[models.qwen2-vl-7b]\nbackend = "hf"\npretrained = "/mnt/qwen2-vl-7b"\n')
    monkeypatch.setenv("HARNESS_CONFIG", str(cfg))
    reg = _registry()
    spec, args, _ = reg.resolve_model("my-tiny")
    assert spec.name == "hf" and args == {"pretrained": "/data/tiny", "max_batch_size": 4}
    assert reg.resolve_model("qwen2-vl-7b")[1] == {"pretrained": "/mnt/qwen2-vl-7b"}  # the user's wins


def test_unknown_model_lists_aliases() -> None:
    with pytest.raises(PluginError, match="qwen2-vl-7b"):
        _registry().resolve_model("no-such-model-anywhere")
