"""GeneralPoints speed: oracle episodes/s through the real Runner, and the checker against sympy.

    python benchmarks/bench_generalpoints.py [--episodes-l 50000] [--episodes-vl 2000] [--answers 3000]

Pinned to one core (``os.sched_setaffinity``) so figures compare across machines with different core
counts. Targets: gp-l >= 20,000 episodes/s, gp-vl >= 500 episodes/s at 1200x1200, checker >= 50x sympy.
Runs write samples.jsonl into a temporary directory, as a real run would.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.runner import EvalConfig, Runner
from harness_plugins.baselines import OracleBackend
from harness_tasks.generalpoints.plugin import harness_tasks
from harness_tasks.generalpoints.verifier import Judge, read_answer


def bench_runner(task: str, episodes: int, batch_size: int, task_args: dict[str, object] | None = None) -> float:
    spec = {t.name: t for t in harness_tasks()}[task]
    cfg = EvalConfig(task=task, split="id", model="oracle", backend="oracle", episodes=episodes,
                     batch_size=batch_size, task_args=task_args or {})
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(spec, OracleBackend(), cfg, Path(tmp) / "run")
        t0 = time.perf_counter()
        res = runner.run()
        dt = time.perf_counter() - t0
    assert res.metrics["success_rate"].value == 1.0, "the oracle must solve every episode"
    return episodes / dt


def _answers(n: int) -> list[tuple[Judge, str, tuple[int, ...]]]:
    """Oracle answers and random well-formed answers over many hands (about half are correct)."""
    env = {t.name: t for t in harness_tasks()}["gp-l"].make_env("id")
    rng = random.Random(0)
    out = []
    for i in range(n):
        env.reset(seed=i)
        text = env.expert_action() if i % 2 else env.random_action(rng)
        values = tuple(env.problem.values)  # type: ignore[attr-defined]  # the dealt Hand
        out.append((Judge(values, [str(v) for v in values], 24, check_cards=False), text, values))
    return out


_NUM = re.compile(r"\d+")


def sympy_check(text: str, values: tuple[int, ...], target: int = 24) -> bool:
    """The same acceptance test written the usual way: the formula (read as the paper reads it) parsed with
    sympy (exact rationals)."""
    formula = read_answer(text).formula
    return isinstance(formula, str) and sympy_formula_check(formula, values, target)


def sympy_formula_check(formula: str, values: tuple[int, ...], target: int = 24) -> bool:
    import sympy
    from sympy.parsing.sympy_parser import parse_expr

    try:
        lhs = formula.split("=")[0]
        if " " in lhs or sorted(int(x) for x in _NUM.findall(lhs)) != sorted(values):
            return False
        return bool(sympy.simplify(parse_expr(lhs, evaluate=True) - target) == 0)
    except Exception:
        return False


def bench_checker(n: int, repeat: int = 1) -> dict[str, float]:
    """Answers/s of our checker and of sympy on the same answers, in process CPU time (the machine may be
    shared), best of ``repeat`` passes for each side. Our formula memo is cleared before every pass, so
    repeats count only as often as they occur naturally (the oracle's answers repeat when a value multiset
    recurs). Whole answers include reading the fields."""
    answers = _answers(n)
    formulas = [read_answer(text).formula for _, text, _ in answers]
    sympy_check(answers[0][1], answers[0][2])  # import sympy outside the timed loops
    out: dict[str, float] = {}
    verdicts: dict[str, list[bool]] = {}
    for label, ours_fn, theirs_fn in (
        ("answer", lambda i: answers[i][0](answers[i][1]).verdict == "success",
         lambda i: sympy_check(answers[i][1], answers[i][2])),
        ("formula", lambda i: answers[i][0].judge_formula(formulas[i]).verdict == "success",
         lambda i: sympy_formula_check(formulas[i], answers[i][2])),
    ):
        for name, fn in (("checker", ours_fn), ("sympy", theirs_fn)):
            best = 0.0
            for _ in range(repeat):  # best of N for both sides: the machine may be shared
                t0 = time.process_time()
                results = [fn(i) for i in range(n)]
                best = max(best, n / (time.process_time() - t0))
            out[f"{label}: {name}"] = best
            verdicts[name] = results
        assert verdicts["checker"] == verdicts["sympy"], "the checker and sympy disagree"
    return out


def _best(fn: Callable[[], float], repeat: int) -> float:
    return max(fn() for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes-l", type=int, default=50_000)
    ap.add_argument("--episodes-vl", type=int, default=2_000)
    ap.add_argument("--answers", type=int, default=3_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs (the machine may be shared)")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rows = []
    for bs in (64, 256):
        rows.append((f"gp-l  oracle episodes/s (batch {bs}, wall)",
                     _best(lambda bs=bs: bench_runner("gp-l", args.episodes_l, bs), args.repeat), 20_000))
    for bs in (64, 256):
        rows.append((f"gp-vl oracle episodes/s (batch {bs}, 1200x1200, wall)",
                     _best(lambda bs=bs: bench_runner("gp-vl", args.episodes_vl, bs), args.repeat), 500))
    checker = bench_checker(args.answers, args.repeat)
    print(f"{'measure':52s} {'value':>12s} {'target':>10s}")
    for name, value, target in rows:
        ok = "ok" if value >= target else "MISSED"
        print(f"{name:52s} {value:12,.0f} {'>= ' + format(target, ','):>10s}  {ok}")
    for label in ("answer", "formula"):
        ours, theirs = checker[f"{label}: checker"], checker[f"{label}: sympy"]
        print(f"{'checker ' + label + 's/s (CPU time)':52s} {ours:12,.0f}")
        print(f"{'sympy ' + label + 's/s (CPU time)':52s} {theirs:12,.0f}")
        verdict = "ok" if ours / theirs >= 50 else "MISSED"
        print(f"{'speed-up over sympy, ' + label + 's':52s} {ours / theirs:11,.0f}x {'>= 50x':>10s}  {verdict}")


if __name__ == "__main__":
    main()
