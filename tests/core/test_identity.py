"""A run's identity covers what the model is: a changed checkpoint never reuses old episodes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.cli import main
from harness.fingerprint import checkpoint_fingerprint, identify_model
from harness.runner import TRAINING_INFO_FILE
from harness.training import default_out_dir
from harness.types import BackendSpec


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _ckpt(root: Path, weights: bytes = b"w1") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "model.safetensors").write_bytes(weights)
    return root


def test_fingerprint_follows_content_not_the_path(tmp_path: Path) -> None:
    a = _ckpt(tmp_path / "a")
    fp = checkpoint_fingerprint(a)
    assert checkpoint_fingerprint(_ckpt(tmp_path / "b")) == fp  # same files elsewhere: same model
    (a / TRAINING_INFO_FILE).write_text("{}")  # rewritten by every evaluation: not part of the model
    (a / ".cache").mkdir()
    (a / ".cache" / "x").write_text("download metadata")
    assert checkpoint_fingerprint(a) == fp
    (a / "model.safetensors").write_bytes(b"w2")
    assert checkpoint_fingerprint(a) != fp


def test_cached_digests_notice_a_rewrite_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    a = _ckpt(tmp_path / "a", b"AAAA")
    fp = checkpoint_fingerprint(a)
    st = (a / "model.safetensors").stat()
    (a / "model.safetensors").write_bytes(b"BBBB")
    os.utime(a / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns))  # cp -p would do this
    assert checkpoint_fingerprint(a) != fp


def test_identify_uses_the_backend_hook_or_a_local_directory(tmp_path: Path) -> None:
    a = _ckpt(tmp_path / "a")
    plain = BackendSpec("x", "", lambda args: None)  # type: ignore[arg-type,return-value]
    assert identify_model(plain, {"pretrained": str(a)}) == {"checkpoint_sha256": checkpoint_fingerprint(a)}
    assert identify_model(plain, {"model": "gpt-4o"}) is None  # a remote model is known by its name only
    hooked = BackendSpec("y", "", lambda args: None, identify=lambda args: {"revision": "abc"})  # type: ignore
    assert identify_model(hooked, {"pretrained": str(a)}) == {"revision": "abc"}


def _eval(capsys, *argv: str) -> int:
    try:
        main(["--plugin", "harness_toy.plugin", "eval", "-m", "oracle", "-t", "toy-add", "-n", "3", *argv])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    capsys.readouterr()
    return code


def test_a_changed_checkpoint_is_a_new_run(capsys, tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path / "ckpt")
    args = ("--model-args", f"pretrained={ckpt}", "-o", str(tmp_path / "runs"))
    assert _eval(capsys, *args) == 0
    assert _eval(capsys, *args, "--resume") == 0
    assert len(list((tmp_path / "runs").glob("*/run.json"))) == 1  # same weights: the same run, resumed
    (ckpt / "model.safetensors").write_bytes(b"retrained")
    assert _eval(capsys, *args, "--resume") == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/run.json")]
    assert len(records) == 2, "new weights never reuse the old weights' episodes"
    assert len({r["model"]["identity"]["checkpoint_sha256"] for r in records}) == 2


def test_default_training_folders_never_collide(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    kw = dict(recipe="rl", task="gp-l", split="id", seed=0, steps=10, budget=None, recipe_args={}, verify_iter=None)
    a = _ckpt(tmp_path / "sft-a" / "step-000200", b"a")
    b = _ckpt(tmp_path / "sft-b" / "step-000200", b"b")
    da = default_out_dir(out, model_args={"pretrained": str(a)}, model_identity={"checkpoint_sha256": "1"}, **kw)
    db = default_out_dir(out, model_args={"pretrained": str(b)}, model_identity={"checkpoint_sha256": "2"}, **kw)
    assert da != db and da.parent == out / "train" and "sft-a-step-000200" in da.name
    # other recipe arguments make other weights: another folder too
    dc = default_out_dir(out, model_args={"pretrained": str(a)}, model_identity={"checkpoint_sha256": "1"},
                         **{**kw, "recipe_args": {"lr": 1e-4}})
    assert dc != da
    assert default_out_dir(out, model_args={"pretrained": str(a)}, model_identity={"checkpoint_sha256": "1"},
                           **kw) == da  # the same command: the same folder
