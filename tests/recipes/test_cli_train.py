"""`harness train` drives the recipes: args reach the recipe, checkpoints are evaluated and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    from harness.fingerprint import checkpoint_fingerprint

    for r in records:  # what the weights are and what they came from, with the libraries that ran them
        assert r["training"]["base_checkpoint_sha256"] == checkpoint_fingerprint(tiny_llama)
        assert r["model"]["identity"]["checkpoint_sha256"] == checkpoint_fingerprint(tmp_path / "ckpt" / "step-000002")
        assert {"torch", "transformers", "tokenizers", "accelerate", "peft", "harness", "python"} <= set(r["versions"])
        assert r["model"]["name"] == str(tmp_path / "ckpt" / "step-000002")  # absolute, as every local model


def test_unknown_recipe_arg_is_a_clean_error(tiny_llama: Path, tmp_path: Path, capsys) -> None:
    code = _train("--recipe", "rl", "--model", str(tiny_llama), "--task", "toy-add", "--steps", "1",
                  "--out", str(tmp_path / "x"), "--output", str(tmp_path / "runs"), "--recipe-args", "gama=0.9")
    assert code != 0
    cap = capsys.readouterr()
    assert "unknown recipe args" in (cap.out + cap.err).replace("\n", "")
    assert not (tmp_path / "x" / "tensorboard").exists(), "no empty curve is left by a training that never started"


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


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard event files under ``log_dir``, read back with tensorboard's reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run,) = [p for p in log_dir.iterdir() if p.is_dir()]  # one folder per training launch
    acc = EventAccumulator(str(run))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_training_curves_land_in_tensorboard_by_default(tiny_llama: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    ckpt = tmp_path / "sft"
    assert _train("--recipe", "sft", "--model", str(tiny_llama), "--task", "toy-add", "--steps", "3", "--out",
                  str(ckpt), "--output", str(tmp_path / "runs"), "--recipe-args",
                  "checkpoints=1,batch_size=2,log_every=0,evaluate=false,lr_schedule=cosine,lr=1e-3") == 0
    sft = _scalars(ckpt / "tensorboard")
    for tag in ("train/loss", "train/lr", "train/flops", "train/tokens_per_s", "train/examples_seen"):
        assert [s for s, _ in sft[tag]] == [1, 2, 3], tag
    flops = [v for _, v in sft["train/flops"]]
    assert flops == sorted(flops) and flops[0] > 0
    lrs = [v for _, v in sft["train/lr"]]
    assert lrs[0] == pytest.approx(1e-3) and lrs[2] < lrs[1] < lrs[0]  # the rate each step used: cosine decay
    assert all(v > 0 for _, v in sft["train/tokens_per_s"]) and all(v > 0 for _, v in sft["train/loss"])

    rl = tmp_path / "rl"
    assert _train("--recipe", "rl", "--model", str(tiny_llama), "--task", "toy-add", "--steps", "2", "--out",
                  str(rl), "--output", str(tmp_path / "runs"), "--verify-iter", "1", "--recipe-args",
                  "checkpoints=1,n_envs=2,minibatch=2,micro_batch=2,max_new_tokens=4,log_every=0,"
                  "evaluate=false") == 0
    tags = _scalars(rl / "tensorboard")
    for tag in ("reward", "success", "clipfrac", "approx_kl", "v_loss", "pg_loss", "lr", "tokens_per_s", "flops"):
        assert [s for s, _ in tags[f"train/{tag}"]] == [1, 2], tag
    assert all(v >= 0 for _, v in tags["train/approx_kl"])


def test_report_to_none_and_unknown_trackers(tiny_llama: Path, tmp_path: Path, capsys) -> None:
    ckpt = tmp_path / "ckpt"
    args = ("--recipe", "sft", "--model", str(tiny_llama), "--task", "toy-add", "--steps", "1", "--out", str(ckpt),
            "--output", str(tmp_path / "runs"), "--recipe-args",
            "checkpoints=1,batch_size=2,log_every=0,evaluate=false")
    assert _train(*args, "--report-to", "none") == 0
    assert not (ckpt / "tensorboard").exists()
    assert _train(*args, "--report-to", "tensorbored") == 2
    assert "unknown tracker 'tensorbored'" in capsys.readouterr().err


def test_report_to_wandb_without_the_package_is_one_line_naming_the_extra(tiny_llama: Path, tmp_path: Path,
                                                                          monkeypatch, capsys) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now raises ImportError
    code = _train("--recipe", "sft", "--model", str(tiny_llama), "--task", "toy-add", "--steps", "1", "--out",
                  str(tmp_path / "ckpt"), "--output", str(tmp_path / "runs"), "--report-to", "wandb")
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'harness[wandb]'" in err and "Traceback" not in err
    assert not (tmp_path / "ckpt").exists(), "nothing is trained when the curves cannot be recorded"


def _wandb_history(run_file: Path) -> list[dict[str, str]]:
    """The history rows of an offline W&B run file (a LevelDB-style log of protobuf records, as
    `wandb sync` reads it): 7-byte file header, 32 KiB blocks, each chunk a 7-byte header (crc, length,
    type: 1 full, 2 first, 3 middle, 4 last) and its bytes."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, rows, parts = run_file.read_bytes(), 7, [], b""
    assert data[:4] == b":W&B", "not a W&B run file"
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            continue
        parts = chunk if kind in (1, 2) else parts + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(parts)
            if rec.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): item.value_json for item in rec.history.item})
    return rows


def test_report_to_wandb_offline_logs_the_curves(tiny_llama: Path, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    ckpt = tmp_path / "ckpt"
    assert _train("--recipe", "sft", "--model", str(tiny_llama), "--task", "toy-add", "--steps", "2", "--out",
                  str(ckpt), "--output", str(tmp_path / "runs"), "--report-to", "wandb,tensorboard",
                  "--recipe-args", "checkpoints=1,batch_size=2,log_every=0,evaluate=false") == 0
    (run_file,) = ckpt.glob("wandb/offline-run-*/run-*.wandb")  # offline, under the training folder
    rows = [r for r in _wandb_history(run_file) if "train/loss" in r]
    assert [int(r["_step"]) for r in rows] == [1, 2]
    assert {"train/lr", "train/flops", "train/tokens_per_s"} <= set(rows[0])
    assert (ckpt / "tensorboard").is_dir()
