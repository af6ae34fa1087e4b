"""SFT on the paper's own data format: LLaVA-style records ("conversations", "image") read with the
datasets library from a file or a folder, images attached where the "<image>" placeholder stood."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from harness_plugins.recipes.data import DataError, llava_records, record_examples
from tests.recipes.conftest import make_job


def _records(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (200, 0, 0)).save(folder / "red.png")
    recs = [{"id": "a", "image": "red.png", "conversations": [
                {"from": "human", "value": "<image>\nWhich color is this card?"},
                {"from": "gpt", "value": '{"color": "red"}'}]},
            {"id": "b", "image": None, "conversations": [
                {"from": "human", "value": "Cards: 1, 2, 3, 4. Make 24."},
                {"from": "gpt", "value": '{"formula": "1*2*3*4=24"}'}]}]
    path = folder / "sft.json"
    path.write_text(json.dumps(recs))
    return path


def test_records_become_examples_in_epochs(tmp_path: Path) -> None:
    path = _records(tmp_path / "data")
    stream = llava_records(path, seed=0)
    first = [next(stream) for _ in range(4)]  # two epochs of two records
    assert sorted(ex.answer for ex in first[:2]) == sorted(ex.answer for ex in first[2:])
    by_answer = {ex.answer: ex for ex in first}
    card = by_answer['{"color": "red"}']
    (msg,) = card.messages
    assert msg.role == "user" and msg.text == "Which color is this card?" and len(msg.images) == 1
    assert msg.images[0].size == (40, 30) and not card.revision
    assert next(llava_records(tmp_path / "data", seed=0)).answer in by_answer  # a folder works too


@pytest.mark.parametrize(("record", "message"), [
    ({"conversations": "hi"}, "non-empty list"),
    ({"conversations": [{"from": "gpt", "value": "x"}]}, "no question before it"),
    ({"conversations": [{"from": "robot", "value": "x"}]}, "expected human or gpt"),
    ({"image": "missing.png", "conversations": [{"from": "human", "value": "<image>q"},
                                                {"from": "gpt", "value": "a"}]}, "not found"),
    ({"conversations": [{"from": "human", "value": "<image>q"}, {"from": "gpt", "value": "a"}]}, "placeholders"),
    ({"conversations": [{"from": "human", "value": "q"}]}, "no answer"),
])
def test_bad_records_name_the_record(tmp_path: Path, record: dict, message: str) -> None:
    with pytest.raises(DataError, match=message) as err:
        record_examples(record, "data.json record 7", tmp_path)
    assert "data.json record 7" in str(err.value)


def test_not_json_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match=r"bad\.json"):
        next(llava_records(bad, seed=0))


def test_sft_recipe_trains_on_records(registry, tiny_qwen2_vl: Path, tmp_path: Path) -> None:
    path = _records(tmp_path / "data")
    out = registry.recipe("sft").run(make_job(
        registry, recipe="sft", model=tiny_qwen2_vl, task="gp-vl", runs=tmp_path / "runs", steps=2,
        recipe_args={"data": str(path), "batch_size": 2, "checkpoints": 1, "evaluate": False, "log_every": 0}))
    assert out["data"] == str(path) and out["trained_tokens"] > 0 and out["final_loss"] > 0
