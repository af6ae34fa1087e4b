"""The openai backend against a real OpenAI-compatible server: ``transformers serve`` on a tiny LLaVA.

The tiny model has random weights, so answers are gibberish; what is checked is the wire: text and image
requests succeed, usage comes back, the image reaches the model (it adds prompt tokens), and a seeded
greedy request is repeatable.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from harness.types import GenParams, Message, Request
from harness_plugins.openai_backend.backend import make_backend

pytest.importorskip("openai")
pytest.importorskip("torch")
pytest.importorskip("fastapi")
tiny = pytest.importorskip("harness_plugins.hf.tiny", reason="the tiny model builder is not available")

# About 8 s (tiny model build + server start ~5 s), under the ~15 s bar for marking it slow.
pytestmark = pytest.mark.timeout(180)


def _transformers_cli() -> str | None:
    beside = Path(sys.executable).with_name("transformers")
    return str(beside) if beside.exists() else shutil.which("transformers")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    cli = _transformers_cli()
    if cli is None:
        pytest.skip("the `transformers` CLI is not installed (pip install 'transformers[serving]')")
    model_dir = tiny.make_tiny("llava", tmp_path_factory.mktemp("tiny") / "llava")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen([cli, "serve", str(model_dir), "--device", "cpu", "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve not ready after 90 s:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1", str(model_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_text_and_image_requests_through_transformers_serve(served: tuple[str, str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    base_url, model = served
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a local server: the placeholder key is used
    be = make_backend({"model": model, "base_url": base_url, "max_retries": 1, "timeout": 60,
                       "max_connections": 2})
    params = GenParams(temperature=0.0, max_tokens=6, seed=3)
    text = Request((Message.make("system", "Answer briefly."), Message.make("user", "What is 2 + 3?")), 1, 0)
    card = Image.new("RGB", (80, 60), (200, 30, 30))
    image = Request((Message.make("user", "What is 2 + 3?", (card,)),), 2, 0)
    bare = Request((Message.make("user", "What is 2 + 3?"),), 3, 0)
    out = be.generate([text, image, bare, text], params)
    be.close()
    assert all(c.error is None for c in out), [c.error for c in out]
    assert all(c.completion_tokens > 0 and c.prompt_tokens > 0 for c in out)
    assert out[0].text == out[3].text  # greedy and seeded: the same request gives the same answer
    assert out[1].prompt_tokens > out[2].prompt_tokens  # the image reached the model as tokens
