from __future__ import annotations

import json

import pytest

from harness.cli import main, parse_kv


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        main(["--plugin", "harness_toy.plugin", *argv])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_parse_kv_values() -> None:
    assert parse_kv("a=1,b=0.5,c=true,d=hello,e=[1,2],f={\"x\":1}", "x") == {
        "a": 1, "b": 0.5, "c": True, "d": "hello", "e": [1, 2], "f": {"x": 1}}
    assert parse_kv('{"pretrained": "/m"}', "x") == {"pretrained": "/m"}


def test_eval_json_and_table(capsys, tmp_path) -> None:
    code, out, _ = _run(capsys, "eval", "--model", "oracle", "--task", "toy-add", "-n", "12", "-o",
                        str(tmp_path), "--json")
    assert code == 0
    rec = json.loads(out)
    assert rec["episodes_ok"] == 12 and rec["model"]["backend"] == "oracle"
    code, out, _ = _run(capsys, "eval", "--model", "random", "--task", "toy-add", "--split", "all", "-n", "5",
                        "-o", str(tmp_path))
    assert code == 0 and "toy-add/id" in out and "toy-add/ood" in out and "success [95% CI]" in out


@pytest.mark.parametrize(("argv", "needle"), [
    (["eval", "--model", "oracle", "--task", "nope"], "valid tasks:"),
    (["eval", "--model", "oracle", "--task", "toy-add", "--split", "zzz"], "valid splits: id, ood (alias big)"),
    (["eval", "--model", "gpt-nope", "--task", "toy-add"], "backends: "),
    (["eval", "--model", "oracle", "--task", "toy-add", "--gen-args", "temp=1"], "valid keys"),
    (["eval", "--model", "oracle", "--task", "toy-add", "--model-args", "novalue"], "expected key=value"),
])
def test_clear_errors(capsys, tmp_path, argv, needle) -> None:
    code, _, err = _run(capsys, *argv, "-o", str(tmp_path))
    assert code == 2
    assert needle in " ".join(err.split())


def test_rerun_without_resume_is_refused(capsys, tmp_path) -> None:
    args = ("eval", "--model", "oracle", "--task", "toy-add", "-n", "3", "-o", str(tmp_path))
    assert _run(capsys, *args)[0] == 0
    code, _, err = _run(capsys, *args)
    assert code == 2 and "--resume" in err
    assert _run(capsys, *args, "--resume")[0] == 0


def test_listings(capsys) -> None:
    code, out, _ = _run(capsys, "tasks", "--json")
    assert code == 0
    toy = next(t for t in json.loads(out) if t["task"] == "toy-add")
    assert [s["name"] for s in toy["splits"]] == ["id", "ood"] and toy["splits"][1]["aliases"] == ["big"]
    code, out, _ = _run(capsys, "plugins", "--json")
    assert code == 0
    names = {p["plugin"]: p for p in json.loads(out)}
    assert names["harness_toy.plugin"]["registered"] == {"tasks": ["toy-add"]}
    assert names["baselines"]["distribution"] == "harness"
    code, out, _ = _run(capsys, "models", "--json")
    assert code == 0
    assert {"oracle", "random"} <= {b["name"] for b in json.loads(out)["backends"]}


def test_error_is_the_last_thing_printed_and_backend_named_once(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("HARNESS_NO_PROGRESS", raising=False)
    try:
        main(["--plugin", "harness_toy.plugin", "--plugin", "tests.core.helpers", "eval", "--model", "scripted",
              "--model-args", "mode=crash,after=1", "--task", "toy-add", "-n", "12", "-o", str(tmp_path)])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and lines[0] == "model 'scripted' (backend scripted)"
    bar = max(i for i, ln in enumerate(lines) if ln.startswith("toy-add/id"))
    first_error = next(i for i, ln in enumerate(lines) if ln.startswith("error:"))
    assert bar < first_error, "the progress bar is closed before the error, never drawn after it"
    assert "the model server went away" in err


def test_version(capsys) -> None:
    import harness

    code, out, _ = _run(capsys, "--version")
    assert code == 0 and out.strip() == f"harness {harness.__version__}"
