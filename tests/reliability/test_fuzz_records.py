"""Files read from disk are untrusted: run records and board files, damaged or hostile, never crash a command.

Hypothesis writes run records (``run.json``, ``samples.jsonl`` lines) and board files (TOML boards and
published JSON tables): a valid file with fields replaced by random JSON or TOML values, random JSON, random
bytes, and valid files cut short. Each goes through what a user's command does with it: the index
(rebuild, query), ``harness runs list``, a board filled from the runs and rendered in every format, a resume
reading the samples, ``compare`` reading a published table. The only exceptions allowed are the ones that
carry a message for the user (``RecordError`` reports, ``BoardError``). CI runs a modest number of
examples; ``HARNESS_FUZZ_FILES=10000`` (benchmarks/fuzz_records.sh) runs 10,000 files per target.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from harness import index, store
from harness import leaderboard as lb
from harness.cli_boards import runs_list
from tests.leaderboard.helpers import make_run, pattern

EXAMPLES = int(os.environ.get("HARNESS_FUZZ_FILES", "100"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
COUNT = {"run records": 0, "board files": 0, "records indexed": 0, "boards loaded": 0, "tables read": 0}

# ------------------------------------------------------------------------------------------- values

_big_ints = st.integers(-(2**70), 2**70) | st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**300])
_floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e300, -1e300, 5e-324, -0.0])
_leaf = st.none() | st.booleans() | _big_ints | _floats | st.text(max_size=20) | st.sampled_from(
    ["[/]", "x[/]y", "[bold red]", "\x1b[31m", "\u202e", "<script>", "{", "{flops:99999999999}", "*", "gpt*"])
_json = st.recursive(_leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                     max_leaves=12)

RECORD_PATHS = ["run_id", "task", "split", "distribution", "status", "seed", "episodes", "episodes_ok",
                "episodes_failed", "created", "finished", "wall_time_s", "model", "model.name", "model.backend",
                "model.args", "model.identity", "metrics", "metrics.success_rate", "metrics.success_rate.value",
                "metrics.success_rate.ci_low", "metrics.success_rate.n", "metrics.first_try", "training",
                "training.recipe", "training.flops", "training.step", "training.root_model", "failure_reasons",
                "identity", "gen", "tokens", "advice", "error", "versions"]
SAMPLE_PATHS = ["index", "status", "episode_seed", "success", "reward", "turns", "metrics", "metrics.first_try",
                "details", "tokens", "tokens.prompt", "tokens.completion", "error"]


def _set(obj: dict[str, Any], dotted: str, value: Any, delete: bool) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        nxt = obj.get(p)
        if not isinstance(nxt, dict):
            nxt = obj[p] = {}
        obj = nxt
    if delete:
        obj.pop(last, None)
    else:
        obj[last] = value


def _encode(obj: Any) -> bytes:
    """JSON for any generated value (integers beyond 64 bits included, which orjson refuses)."""
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def damaged(draw: st.DrawFn, valid: dict[str, Any], paths: list[str]) -> bytes:
    kind = draw(st.sampled_from(["mutate", "mutate", "mutate", "random", "bytes", "cut"]))
    if kind == "random":
        return _encode(draw(_json))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "cut":
        text = _encode(valid)
        return text[:draw(st.integers(0, len(text)))]
    obj = json.loads(json.dumps(valid))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths) | st.text(min_size=1, max_size=6))
        _set(obj, path, draw(_json), draw(st.booleans()))
    return _encode(obj)


# ------------------------------------------------------------------------------------------ run records


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    make_run(root, model="good", run_id="good", successes=pattern(6, 3))
    make_run(root, model="other", run_id="fuzzed", successes=pattern(6, 2))
    return root


BOARD = lb.parse_board({"columns": [{"task": "gp-l", "split": "id"}, {"task": "gp-l", "split": "id",
                                                                        "metric": "first_try"}],
                        "rows": [{"label": "{model} {recipe}", "expand": ["model", "recipe"]},
                                 {"label": "by flops {flops:.3g}", "expand": "flops", "recipe": "*"},
                                 {"label": "seed", "where": {"seed": 0}}],
                        "status": ["complete", "failed", "running", "interrupted"]})


def _render_all(table: lb.BoardTable) -> None:
    for fmt in ("md", "csv", "json", "html"):
        text = lb.render(table, fmt)
        assert "\x1b" not in text
    Console(file=io.StringIO(), width=200).print(lb.to_rich(table))


def test_fuzzed_run_records_never_crash(root: Path) -> None:
    good_record = orjson.loads((root / "good" / "run.json").read_bytes())
    good_sample = orjson.loads((root / "good" / "samples.jsonl").read_bytes().splitlines()[0])

    @SETTINGS
    @given(record=damaged(good_record, RECORD_PATHS),
           samples=st.lists(damaged(good_sample, SAMPLE_PATHS), max_size=4))
    def check(record: bytes, samples: list[bytes]) -> None:
        COUNT["run records"] += 1
        (root / "fuzzed" / "run.json").write_bytes(record)
        (root / "fuzzed" / "samples.jsonl").write_bytes(b"\n".join(samples))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = index.rebuild(root)
            runs = index.query(root, do_sync=False)
        assert "good" in {r.run_id for r in runs}
        COUNT["records indexed"] += not report.skipped
        assert all(Path(p).name == "fuzzed" for p, _ in report.skipped)
        buf = io.StringIO()
        with _stdout(buf):
            runs_list(output=root, task=None, split=None, model=None, status=None, as_json=False)
            runs_list(output=root, task=None, split=None, model=None, status=None, as_json=True)
        table = lb.aggregate(BOARD, runs, source=str(root))
        _render_all(table)
        scan = store.scan_samples(root / "fuzzed" / "samples.jsonl")
        for rec in scan.records.values():
            assert store.sample_problem(rec) is None
        a = lb.Cell(0.5, 0.4, 0.6, 6, run_dir=str(root / "good"), seed=0)
        b = lb.Cell(0.5, 0.4, 0.6, 6, run_dir=str(root / "fuzzed"), seed=0)
        for metric in ("success_rate", "mean_reward", "first_try"):
            lb.compare_cells(a, b, BOARD.columns[0], "row")
            lb.paired_values(a, b, metric)

    check()


class _stdout:
    """Route stdout and stderr (rich reads them at print time) to a buffer."""

    def __init__(self, buf: io.StringIO) -> None:
        import contextlib

        self._cms = (contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf))

    def __enter__(self) -> None:
        for cm in self._cms:
            cm.__enter__()

    def __exit__(self, *exc: Any) -> None:
        for cm in reversed(self._cms):
            cm.__exit__(*exc)


# ------------------------------------------------------------------------------------------- board files


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    return '""'


def _toml(doc: dict[str, Any]) -> str:
    return "\n".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in doc.items() if v is not None) + "\n"


VALID_BOARD = {"name": "fz", "title": "Fuzz", "select": "latest", "alpha": 0.05, "status": ["complete"],
               "columns": [{"task": "gp-l", "split": "id", "label": "L", "format": "pct"},
                           {"task": "gp-l", "split": "id", "metric": "first_try", "seed": 0}],
               "rows": [{"label": "{model}", "expand": "model"}, {"label": "R {flops:.2g}", "expand": ["flops"],
                                                                   "recipe": "*", "flops": [0, 1e30]},
                        {"label": "M", "model": "good", "where": {"seed": 0}}]}
BOARD_PATHS = ["name", "title", "description", "select", "status", "alpha", "metric", "format", "columns", "rows",
               "columns.0", "columns.0.task", "columns.0.split", "columns.0.metric", "columns.0.label",
               "columns.0.format", "columns.0.distribution", "columns.0.seed", "columns.0.where", "rows.0",
               "rows.0.label", "rows.0.model", "rows.0.expand", "rows.0.series", "rows.0.select", "rows.1.flops",
               "rows.1.label", "rows.2.where", "rows.2.seed", "rows.2.recipe", "rows.1.group"]
_toml_leaf = _leaf | st.sampled_from([math.inf, -math.inf, math.nan, "{flops:>1000000000}", "{model!x}"])
_toml_json = st.recursive(_toml_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.text(max_size=6), c, max_size=3), max_leaves=8)


def _set_path(doc: Any, dotted: str, value: Any, delete: bool) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        if isinstance(doc, list):
            if not doc:
                return
            doc = doc[int(p) % len(doc)] if p.isdigit() else doc[0]
        elif isinstance(doc, dict):
            doc = doc.setdefault(p, {})
        else:
            return
    if isinstance(doc, list) and last.isdigit() and doc:
        doc[int(last) % len(doc)] = value
    elif isinstance(doc, dict):
        if delete:
            doc.pop(last, None)
        else:
            doc[last] = value


@st.composite
def board_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["mutate", "mutate", "mutate", "text", "bytes", "cut"]))
    if kind == "text":
        return draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    text = _toml(VALID_BOARD).encode()
    if kind == "cut":
        return text[:draw(st.integers(0, len(text)))]
    doc = json.loads(json.dumps(VALID_BOARD))
    for _ in range(draw(st.integers(1, 4))):
        _set_path(doc, draw(st.sampled_from(BOARD_PATHS) | st.text(min_size=1, max_size=5)), draw(_toml_json),
                  draw(st.booleans()))
    return _toml(doc).encode("utf-8", "surrogatepass")


def test_fuzzed_board_files_never_crash(root: Path) -> None:
    index.rebuild(root)
    runs = index.query(root)
    good = lb.aggregate(lb.parse_board(VALID_BOARD), runs)
    published = json.loads(lb.to_json(good))
    work = Path(tempfile.mkdtemp(prefix="fuzz-boards-"))

    @SETTINGS
    @given(board=board_files(), table=damaged(published, ["name", "title", "columns", "rows", "columns.0",
                                                           "rows.0", "select", "source", "description"]),
           cell=_json)
    def check(board: bytes, table: bytes, cell: Any) -> None:
        COUNT["board files"] += 1
        (work / "b.toml").write_bytes(board)
        try:
            spec = lb.load_board(work / "b.toml")
        except lb.BoardError:
            pass
        else:
            COUNT["boards loaded"] += 1
            filled = lb.aggregate(spec, runs)
            _render_all(filled)
            lb.compare(filled, good) if {c.key for c in filled.columns} & {c.key for c in good.columns} else None
        doc = json.loads(json.dumps(published))
        if doc["rows"] and doc["rows"][0]["cells"]:
            key = next(iter(doc["rows"][0]["cells"]))
            doc["rows"][0]["cells"][key] = cell
        for payload in (table, _encode(doc)):
            (work / "t.json").write_bytes(payload)
            try:
                read = lb.read_table(work / "t.json")
            except lb.BoardError:
                continue
            COUNT["tables read"] += 1
            _render_all(read)
            try:
                cmp = lb.compare(read, good)
            except lb.BoardError:
                continue
            lb.comparison_to_markdown(cmp)
            lb.comparison_to_json(cmp)
            Console(file=io.StringIO(), width=200).print(lb.comparison_to_rich(cmp))

    check()


def test_report_counts() -> None:
    """Printed with -s by benchmarks/fuzz_records.sh: how many files each target generated."""
    print(f"\nfuzzed files: {COUNT}")
