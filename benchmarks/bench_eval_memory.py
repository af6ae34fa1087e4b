"""Memory of an eval against its number of episodes: peak RSS and episodes/s of gp-l oracle runs.

Each size runs in a fresh subprocess pinned to one core, through the command line a user types
(``harness eval --model oracle --task gp-l -n N``, the progress callback included), writing samples.jsonl
into a temporary runs root. Peak RSS is the child's own ``ru_maxrss``; the rate is episodes over the
run's recorded wall time (the episode loop and the final metrics), and over the whole process too.
Target: peak RSS at 100,000 episodes within 1.3x of 10,000 (results are streamed, nothing is kept per
finished episode). Then each run is extended by a tenth with ``--resume`` in another fresh process, which
indexes and compacts the recorded samples first: its peak RSS is reported too.

    python benchmarks/bench_eval_memory.py [--sizes 10000,100000] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(episodes: int, batch_size: int, runs: str, resume: bool = False) -> dict[str, float]:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import io
    from contextlib import redirect_stdout

    from harness.cli import main

    t0 = time.perf_counter()
    buf = io.StringIO()
    with redirect_stdout(buf):
        try:
            main(["eval", "--model", "oracle", "--task", "gp-l", "--split", "id", "-n", str(episodes),
                  "--batch-size", str(batch_size), "--output", runs, "--json", *(["--resume"] if resume else [])])
        except SystemExit as exc:
            if exc.code:
                raise
    wall = time.perf_counter() - t0
    record = json.loads(buf.getvalue())
    assert record["metrics"]["success_rate"]["value"] == 1.0, "the oracle must solve every episode"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if resume:  # the record's wall time adds the earlier session's: only the process wall says what this took
        return {"episodes": episodes, "resume": True, "peak_rss_mb": rss, "process_wall_s": wall}
    return {"episodes": episodes, "resume": False, "peak_rss_mb": rss, "run_wall_s": record["wall_time_s"],
            "episodes_per_s": episodes / record["wall_time_s"], "process_wall_s": wall,
            "episodes_per_s_process": episodes / wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--child", type=int, metavar="EPISODES")
    ap.add_argument("--runs")
    ap.add_argument("--resume", action="store_true")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.batch_size, a.runs, a.resume)))
        return
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for n in (int(s) for s in a.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            for episodes, resume in ((n, False), (n + n // 10, True)):
                cmd = [sys.executable, __file__, "--child", str(episodes), "--batch-size", str(a.batch_size),
                       "--runs", tmp, *(["--resume"] if resume else [])]
                res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
                if res.returncode:
                    sys.exit(f"child for {episodes} episodes failed:\n{res.stderr[-3000:]}")
                rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
    fresh = [r for r in rows if not r["resume"]]
    if len(fresh) >= 2:
        print(json.dumps({"rss_ratio_last_to_first": fresh[-1]["peak_rss_mb"] / fresh[0]["peak_rss_mb"],
                          "target": 1.3}))


if __name__ == "__main__":
    main()
