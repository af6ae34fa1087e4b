"""Run states, exit codes, arguments checked before a run exists, hostile answers, history truncation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import orjson
import pytest

from harness.checks import ConfigError
from harness.cli import main
from harness.runner import (
    MAX_RECORDED_ANSWER,
    EvalConfig,
    RecordWarning,
    RunExistsError,
    RunFailed,
    RunInterrupted,
    Runner,
)
from harness.types import GenParams
from harness_plugins.baselines import OracleBackend
from tests.core.helpers import ScriptedBackend

PLUGINS = ["--plugin", "harness_toy.plugin", "--plugin", "tests.core.helpers"]


def _cfg(**kw):
    base = dict(task="toy-add", split="id", model="m", backend="scripted", episodes=12, seed=3, batch_size=4)
    base.update(kw)
    return EvalConfig(**base)


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        main([*PLUGINS, *argv])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, " ".join(cap.err.split())


def _record(root: Path) -> dict:
    (path,) = root.glob("*/run.json")
    return orjson.loads(path.read_bytes())


# ------------------------------------------------------------------------------------- states and exit codes


def test_every_episode_failed_exits_1_and_counts_failures_as_unsolved(capsys, tmp_path) -> None:
    code, out, _ = _cli(capsys, "eval", "-m", "scripted", "--model-args", "mode=fail", "-t", "toy-add", "-n", "8",
                          "-o", str(tmp_path))
    assert code == 1
    rec = _record(tmp_path)
    assert rec["status"] == "failed" and rec["episodes_failed"] == 8
    sr = rec["metrics"]["success_rate"]
    assert sr["n"] == 8 and sr["value"] == 0.0 and sr["ci_low"] == 0.0, "failures are in the denominator"
    text = " ".join(out.split())
    assert "nan" not in text.lower() and "0.0% [0.0," in text and "8 failed" in text
    assert "counted as unsolved" in text and "--resume" in rec["advice"]


def test_success_rate_counts_failed_episodes(toy, tmp_path) -> None:
    from tests.core.helpers import FlakyOracle

    res = Runner(toy, FlakyOracle(0.0), _cfg(episodes=40), tmp_path / "f").run()
    sr, failed = res.record["metrics"]["success_rate"], res.record["episodes_failed"]
    assert 0 < failed < 40
    assert sr["n"] == 40 and sr["value"] == pytest.approx((40 - failed) / 40)


def test_error_before_the_first_episode_is_failed_with_honest_advice(capsys, tmp_path) -> None:
    args = ("eval", "-m", "scripted", "--model-args", "mode=crash", "-t", "toy-add", "-n", "8", "-o", str(tmp_path))
    code, _, err = _cli(capsys, *args)
    assert code == 1 and "the model server went away" in err
    rec = _record(tmp_path)
    assert rec["status"] == "failed" and "RuntimeError" in rec["error"]
    assert "nothing was recorded" in rec["advice"] and "--resume" not in rec["advice"]
    assert "nothing was recorded" in err
    # nothing was recorded, so the same command may simply run again (no --resume needed)
    code, _, err = _cli(capsys, *args)
    assert code == 1 and "already exists" not in err


def test_error_mid_run_keeps_episodes_and_advises_resume(toy, tmp_path) -> None:
    backend = ScriptedBackend("crash", after=2)
    with pytest.raises(RunFailed) as info:
        Runner(toy, backend, _cfg(), tmp_path / "r").run()
    rec = info.value.result.record
    assert rec["status"] == "failed" and rec["episodes_ok"] > 0 and "--resume" in rec["advice"]
    assert orjson.loads((tmp_path / "r" / "run.json").read_bytes())["status"] == "failed"
    res = Runner(toy, OracleBackend(), _cfg(), tmp_path / "r").run(resume=True)
    assert res.record["status"] == "complete" and res.record["episodes_ok"] == 12 and res.record["advice"] is None


def test_ctrl_c_is_recorded_as_interrupted_and_exits_130(capsys, tmp_path) -> None:
    code, _, err = _cli(capsys, "eval", "-m", "scripted", "--model-args", "mode=interrupt,after=1", "-t", "toy-add",
                        "-n", "12", "--batch-size", "2", "-o", str(tmp_path))
    assert code == 130
    rec = _record(tmp_path)
    assert rec["status"] == "interrupted" and rec["episodes_ok"] == 2
    assert "interrupted after 2 of 12 episodes" in err and "--resume" in err


def test_runner_raises_run_interrupted_with_the_saved_record(toy, tmp_path) -> None:
    with pytest.raises(KeyboardInterrupt) as info:  # still a KeyboardInterrupt for callers that expect one
        Runner(toy, ScriptedBackend("interrupt", after=1), _cfg(), tmp_path / "i").run()
    assert isinstance(info.value, RunInterrupted) and info.value.result.record["status"] == "interrupted"


def test_resume_with_fewer_episodes_is_refused(capsys, tmp_path) -> None:
    base = ("eval", "-m", "oracle", "-t", "toy-add", "-o", str(tmp_path))
    assert _cli(capsys, *base, "-n", "10")[0] == 0
    code, _, err = _cli(capsys, *base, "-n", "4", "--resume")
    assert code == 2 and "would shrink it" in err and "--episodes 10" in err
    assert _record(tmp_path)["episodes"] == 10
    assert _cli(capsys, *base, "-n", "12", "--resume")[0] == 0


# --------------------------------------------------------------------------- checked before a run dir exists


@pytest.mark.parametrize(("extra", "needle"), [
    (["--gen-args", "temperature=hot"], "temperature' must be a number"),
    (["--gen-args", "temperature=-1"], "temperature' must be >= 0"),
    (["--gen-args", "max_tokens=-5"], "max_tokens' must be >= 1"),
    (["--gen-args", "top_p=NaN"], "top_p' must be a finite number"),
    (["--task-args", "high=NaN"], "task arg 'high': nan is not a finite number"),
    (["--task-args", "high=Infinity"], "task arg 'high': inf is not a finite number"),
    (["--task-args", f"high={2**70}"], "task arg 'high': the integer"),
    (["--model-args", f"x={2**64}"], "model arg 'x'"),
    (["--seed", str(2**64)], "seed must be <="),
    (["--task-args", "high=abc"], "rejected its arguments"),
])
def test_bad_arguments_fail_before_any_run_directory(capsys, tmp_path, extra, needle) -> None:
    code, _, err = _cli(capsys, "eval", "-m", "oracle", "-t", "toy-add", "-n", "3", "-o", str(tmp_path), *extra)
    assert code == 2 and needle in err, err
    assert not tmp_path.exists() or not any(tmp_path.iterdir()), "no run directory for a run that cannot start"


def test_gen_params_are_validated() -> None:
    for bad in ({"temperature": "hot"}, {"temperature": -1}, {"max_tokens": -5}, {"max_tokens": 2.5},
                {"top_p": 0}, {"temperature": math.inf}, {"seed": 2**64}, {"max_tokens": True}):
        with pytest.raises(ConfigError):
            GenParams(**bad)
    assert GenParams(temperature=1).temperature == 1.0


def test_nan_configs_never_share_a_directory() -> None:
    with pytest.raises(ConfigError, match="task arg 'x'"):
        _cfg(task_args={"x": float("nan")})
    with pytest.raises(ConfigError, match="model arg 'k'"):
        _cfg(model_args={"k": {"deep": [1, float("inf")]}})


def test_non_finite_reward_is_an_episode_error_and_the_run_stays_resumable(toy, tmp_path) -> None:
    class NaNEnv:
        def __init__(self, env):
            self.env = env

        def __getattr__(self, name):
            return getattr(self.env, name)

        def step(self, action):
            obs, _, term, trunc, info = self.env.step(action)
            return obs, float("nan"), term, trunc, info

    from dataclasses import replace

    task = replace(toy, make_env=lambda *a, **k: NaNEnv(toy.make_env(*a, **k)))
    res = Runner(task, OracleBackend(), _cfg(episodes=4, backend="oracle"), tmp_path / "n").run()
    assert res.record["episodes_failed"] == 4
    assert "non-finite reward" in next(iter(res.record["failure_reasons"]))
    res = Runner(toy, OracleBackend(), _cfg(episodes=4, backend="oracle"), tmp_path / "n").run(resume=True)
    assert res.record["status"] == "complete"


# ------------------------------------------------------------------------------------------ hostile answers


def test_lone_surrogate_answer_is_recorded_and_resumable(toy, tmp_path) -> None:
    res = Runner(toy, ScriptedBackend("surrogate"), _cfg(), tmp_path / "s").run()
    assert res.record["episodes_ok"] == 12
    lines = (tmp_path / "s" / "samples.jsonl").read_bytes().splitlines()
    assert len(lines) == 12 and "\ufffd" in orjson.loads(lines[0])["turns"][0]["answer"]
    res = Runner(toy, ScriptedBackend("surrogate"), _cfg(episodes=14), tmp_path / "s").run(resume=True)
    assert res.record["episodes_ok"] == 14


def test_huge_answer_is_not_resent_in_full(toy, tmp_path) -> None:
    backend = ScriptedBackend("huge", size=10_000_000)
    Runner(toy, backend, _cfg(episodes=2, verify_iter=3), tmp_path / "h").run()
    later = [r for r in backend.seen if r.turn == 1]
    assert later, "the huge first answer was wrong, so a second turn was asked"
    history = later[0].messages[1].text
    assert history.startswith("z" * 100) and len(history) < MAX_RECORDED_ANSWER + 100
    assert "more characters cut" in history
    turn = orjson.loads((tmp_path / "h" / "samples.jsonl").read_bytes().splitlines()[0])["turns"][0]
    assert len(turn["answer"]) == MAX_RECORDED_ANSWER and turn["answer_truncated_from"] == 10_000_000


def test_task_can_lower_the_answer_cap(toy, tmp_path) -> None:
    from dataclasses import replace

    backend = ScriptedBackend("huge", size=5000)
    Runner(replace(toy, max_answer_chars=100), backend, _cfg(episodes=1, verify_iter=2), tmp_path / "c").run()
    second = next(r for r in backend.seen if r.turn == 1)
    assert second.messages[1].text.startswith("z" * 100 + "\n[... 4900 more characters cut]")


# ----------------------------------------------------------------------------------- damaged samples.jsonl


def test_wrong_sample_lines_never_poison_a_resume(toy, tmp_path) -> None:
    run_dir = tmp_path / "w"
    full = Runner(toy, OracleBackend(), _cfg(backend="oracle"), tmp_path / "ref").run()
    Runner(toy, OracleBackend(), _cfg(backend="oracle", episodes=6), run_dir).run()
    with (run_dir / "samples.jsonl").open("ab") as f:
        f.write(b'{"index": 7, "status": "ok"}\n')  # well-formed JSON, not a record
        f.write(b'{"index": -1, "status": "ok", "success": true}\n')
        good = orjson.loads((run_dir / "samples.jsonl").read_bytes().splitlines()[0])
        f.write(orjson.dumps({**good, "index": 8}) + b"\n")  # episode 0's record claiming to be episode 8
    with pytest.warns(RecordWarning, match="3 line"):
        res = Runner(toy, OracleBackend(), _cfg(backend="oracle"), run_dir).run(resume=True)
    assert res.record["metrics"] == full.record["metrics"] and res.record["status"] == "complete"
    assert len((run_dir / "samples.rejected.jsonl").read_bytes().splitlines()) == 3, "kept aside, not lost"
    # and the next resume is clean
    res = Runner(toy, OracleBackend(), _cfg(backend="oracle"), run_dir).run(resume=True)
    assert res.record["metrics"] == full.record["metrics"]


def test_corrupt_run_json_is_a_clear_error(toy, tmp_path) -> None:
    run_dir = tmp_path / "c"
    Runner(toy, OracleBackend(), _cfg(backend="oracle", episodes=3), run_dir).run()
    (run_dir / "run.json").write_text('{"run_id": 5}')
    with pytest.raises(RunExistsError, match=r"run\.json cannot be trusted"):
        Runner(toy, OracleBackend(), _cfg(backend="oracle", episodes=3), run_dir).run(resume=True)


def test_json_output_of_a_failed_run_is_still_printed(capsys, tmp_path) -> None:
    code, out, _ = _cli(capsys, "eval", "-m", "scripted", "--model-args", "mode=fail", "-t", "toy-add", "-n", "2",
                        "-o", str(tmp_path), "--json")
    assert code == 1 and json.loads(out)["status"] == "failed"
