"""`pip install -e .` alone: every command that needs an optional package says, in one line, which extra
to install; none ends in a traceback. The optional packages are made uninstallable in a fresh process
(``None`` in ``sys.modules``: importing them fails and ``find_spec`` finds nothing, as on a machine without
them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

OPTIONAL = ["torch", "transformers", "huggingface_hub", "accelerate", "peft", "datasets", "tokenizers", "openai",
            "vllm", "matplotlib", "tensorboard", "wandb"]

CHILD = r"""
import contextlib, io, json, sys
for name in json.loads(sys.argv[1]):  # None in sys.modules: `import name` fails and find_spec says "not found"
    sys.modules[name] = None
from harness.cli import main
results = []
for argv in json.loads(sys.argv[2]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:
            code = repr(exc)
    results.append([argv, code, err.getvalue()])
print(json.dumps(results))
"""


def test_commands_without_their_extra_name_it_in_one_line(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    runs = tmp_path / "runs"
    runs.mkdir()
    train = ["train", "--recipe", "sft", "--model", str(ckpt), "--task", "gp-l", "--steps", "1", "--out",
             str(tmp_path / "out"), "--output", str(runs)]
    cases = {  # argv -> the extra its message must name
        ("eval", "--model", "gpt-4o", "--task", "gp-l", "-n", "1", "-o", str(runs)): "openai",
        ("eval", "--model", "qwen2-vl-2b", "--task", "gp-l", "-n", "1", "-o", str(runs)): "hf",
        ("eval", "--model", str(ckpt), "--task", "gp-l", "-n", "1", "-o", str(runs)): "hf",
        ("eval", "--model", "qwen2-vl-7b-vllm", "--task", "gp-l", "-n", "1", "-o", str(runs)): "vllm",
        ("models", "make-tiny", "llama", str(tmp_path / "tiny")): "hf",
        tuple(train): "train",  # its curves go to TensorBoard by default
        (*train, "--report-to", "none"): "train",
        (*train, "--report-to", "wandb"): "wandb",
        ("plot", "compute", "--runs", str(runs)): "plots",
        ("plot", "column", "baselines", "1", "--runs", str(runs)): "plots",
    }
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HARNESS_NO_PROGRESS": "1", "COLUMNS": "2000"}
    env.pop("OPENAI_API_KEY", None)
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(OPTIONAL), json.dumps([list(a) for a in cases])],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for argv, code, err in json.loads(proc.stdout):
        extra = cases[tuple(argv)]
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2, (argv, code, err)
        assert "Traceback" not in err and len(lines) <= 2, (argv, err)  # the model line, then the error
        assert lines[-1].startswith("error:") and f"pip install 'harness[{extra}]'" in lines[-1], (argv, err)
    assert not (tmp_path / "out").exists(), "nothing is trained or written when a package is missing"
