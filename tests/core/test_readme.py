from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    test_cmd = ci.strip().splitlines()[-1]
    assert test_cmd.startswith("python -m pytest")
    assert test_cmd in readme, "README's test command and .ci/run drifted apart"
    assert "pip install -q torch==2.13.0" in ci and "pip install torch==2.13.0" in readme
