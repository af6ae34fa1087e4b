"""`harness train` drives the recipes: args reach the recipe, checkpoints are evaluated and recorded."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cli import main


def _train(*argv: str) -> int:
    try:
        main(["--plugin", "harness_toy.plugin", "train", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_harness_train_sft_on_toy_add(tiny_llama: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    code = _train("--recipe", "sft", "--model", str(tiny_llama), "--task", "toy-add", "--steps", "2",
                  "--out", str(tmp_path / "ckpt"), "--output", str(runs), "--eval-episodes", "2",
                  "--max-tokens", "4", "--recipe-args", "checkpoints=1,batch_size=2,log_every=0")
    assert code == 0
    assert (tmp_path / "ckpt").is_dir()
    records = [json.loads(p.read_text()) for p in runs.glob("toy-add_*/run.json")]
    assert {r["split"] for r in records} == {"id", "ood"}
    assert all(r["training"]["recipe"] == "sft" and r["training"]["step"] == 2 for r in records)


def test_unknown_recipe_arg_is_a_clean_error(tiny_llama: Path, tmp_path: Path, capsys) -> None:
    code = _train("--recipe", "rl", "--model", str(tiny_llama), "--task", "toy-add", "--steps", "1",
                  "--out", str(tmp_path / "x"), "--output", str(tmp_path / "runs"), "--recipe-args", "gama=0.9")
    assert code != 0
    cap = capsys.readouterr()
    assert "unknown recipe args" in (cap.out + cap.err).replace("\n", "")


def test_retraining_into_the_same_folder_never_reuses_old_episodes(tiny_llama: Path, tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    base = ("--recipe", "sft", "--model", str(tiny_llama), "--task", "toy-add", "--steps", "2", "--out",
            str(tmp_path / "ckpt"), "--output", str(runs), "--eval-episodes", "2", "--eval-splits", "id",
            "--max-tokens", "4")
    assert _train(*base, "--recipe-args", "checkpoints=1,batch_size=2,log_every=0,lr=1e-3") == 0
    assert _train(*base, "--recipe-args", "checkpoints=1,batch_size=2,log_every=0,lr=3e-2") == 0
    records = [json.loads(p.read_text()) for p in runs.glob("toy-add_id_*/run.json")]
    assert len(records) == 2, "the retrained checkpoint got its own run, not the old one's episodes"
    assert len({r["model"]["identity"]["checkpoint_sha256"] for r in records}) == 2
    assert all(r["model"]["name"] == str(tmp_path / "ckpt" / "step-000002") for r in records)
