"""Checkpoints are written whole, then swapped in: a failure never leaves a half-written or mixed folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness_plugins.recipes.policy import Policy


def test_save_is_atomic_and_replaces_a_previous_checkpoint(tiny_llama: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    p = Policy({"pretrained": str(tiny_llama)})
    out = tmp_path / "step-000001"
    p.save(out)
    first = {f.name: f.read_bytes() for f in out.iterdir()}
    assert "config.json" in first and any(n.endswith(".safetensors") for n in first)
    (out / "stale-file").write_text("from an older training")
    p.save(out)  # retraining into the same folder replaces it whole
    assert not (out / "stale-file").exists() and {f.name for f in out.iterdir()} == set(first)

    def boom(self, target, state_dict):  # a full disk in the middle of writing
        (target / "config.json").write_text("{")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Policy, "_write", boom)
    with pytest.raises(OSError, match="No space left"):
        p.save(out)
    assert {f.name: f.read_bytes() for f in out.iterdir()} == first  # the previous checkpoint is intact
    assert [f.name for f in tmp_path.iterdir()] == ["step-000001"]  # and no temporary folder is left behind
