from __future__ import annotations

from pathlib import Path

import pytest

from harness import leaderboard as lb
from harness import plot
from tests.leaderboard.helpers import make_run, pattern


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for i, flops in enumerate((1e15, 2e15, 4e15)):
        for recipe, k_id, k_ood in (("sft", 12 + 3 * i, 8 - 2 * i), ("rl", 10 + 3 * i, 8 + 3 * i)):
            make_run(root, model="ckpt", recipe=recipe, flops=flops, successes=pattern(20, k_id))
            make_run(root, split="ood-rule", model="ckpt", recipe=recipe, flops=flops, successes=pattern(20, k_ood))
            make_run(root, task="virl-l", model="ckpt", recipe=recipe, flops=flops, successes=pattern(20, k_id))
    make_run(root, model="oracle", successes=[True] * 20)
    return root


def test_compute_plot_writes_png_and_svg(tmp_path: Path, root: Path) -> None:
    table = plot.compute_table(root)
    assert [c.key for c in table.columns] == ["gp-l/id/success_rate", "gp-l/ood-rule/success_rate",
                                              "virl-l/id/success_rate"]
    points = plot.compute_points(table)
    assert {p.series for p in points} == {"SFT", "RL"} and len(points) == 18
    assert {p.distribution for p in points if p.column.split == "ood-rule"} == {"ood"}
    paths = plot.plot_compute(table, tmp_path / "out" / "compute")
    assert [p.name for p in paths] == ["compute.png", "compute.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = paths[1].read_text()
    assert "<svg" in svg and "ood-rule" in svg and "gp-l" in svg


def test_compute_plot_from_board_and_column_bars(tmp_path: Path, root: Path) -> None:
    board = lb.load_board(lb.find_board("sft-vs-rl"))
    table = plot.compute_table(root, board)
    (png,) = plot.plot_compute(table, tmp_path / "c.png", log_x=True)
    assert png.stat().st_size > 1000
    bars = plot.plot_column(table, "gp-l/ood-rule", tmp_path / "bars.svg")
    assert bars[0].read_text().count("<svg") == 1
    single = plot.plot_column(table, "GP-L ID", tmp_path / "one", kind="compute")
    assert all(p.exists() for p in single)
    with pytest.raises(plot.PlotError, match="no column"):
        plot.plot_column(table, "nope", tmp_path / "x.png")


def test_nothing_to_plot_is_a_clear_error(tmp_path: Path) -> None:
    make_run(tmp_path, model="oracle", successes=[True])
    with pytest.raises(plot.PlotError, match="training FLOPs"):
        plot.plot_compute(plot.compute_table(tmp_path), tmp_path / "x")


def test_compute_series_follow_the_root_model(tmp_path: Path) -> None:
    """Checkpoints are models of their own; series group them by the model their training started from."""
    for root_model in ("qwen", "llama"):
        for recipe, flops in (("sft", 1e15), ("sft", 2e15), ("rl", 1e15)):
            ckpt = f"ckpt/{root_model}/{recipe}/{flops:g}"
            make_run(tmp_path, model=ckpt, recipe=recipe, flops=flops, successes=[True, False],
                     extra={"training": {"recipe": recipe, "flops": flops, "root_model": root_model}})
    points = plot.compute_points(plot.compute_table(tmp_path))
    assert sorted({p.series for p in points}) == ["llama rl", "llama sft", "qwen rl", "qwen sft"]
    assert sorted(p.x for p in points if p.series == "qwen sft") == [1e15, 2e15]


def test_wilson_bounds_never_land_on_the_wrong_side() -> None:
    from harness.metrics import wilson

    for n in range(1, 3001):
        for hits in {0, n, 1, n - 1, n // 2}:
            m = wilson(hits, n)
            assert 0.0 <= m.ci_low <= m.value <= m.ci_high <= 1.0, (hits, n, m)


@pytest.mark.parametrize("k", [0, 20])
def test_plot_column_at_0_and_100_percent(tmp_path: Path, k: int) -> None:
    for n in (7, 20, 33, 1000):  # sizes at which rounding put the old bounds a hair past 0 or 1
        make_run(tmp_path / "runs", model=f"m{n}", successes=pattern(n, n * k // 20))
    board = lb.parse_board({"columns": [{"task": "gp-l", "split": "id"}],
                            "rows": [{"label": "{model}", "expand": "model"}]})
    table = lb.aggregate(board, tmp_path / "runs")
    (svg,) = plot.plot_column(table, "1", tmp_path / "b.svg")
    assert svg.read_text().count("<svg") == 1


def test_plot_labels_are_not_mathtext(tmp_path: Path) -> None:
    make_run(tmp_path / "runs", model="$\\frac{$", successes=pattern(4, 2))
    board = lb.parse_board({"title": "$x^$", "columns": [{"task": "gp-l", "split": "id", "label": "$\\sqrt{$"}],
                            "rows": [{"label": "{model}", "expand": "model"}]})
    (png,) = plot.plot_column(lb.aggregate(board, tmp_path / "runs"), "1", tmp_path / "b.png")
    assert png.stat().st_size > 1000


def _overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of visible x tick labels whose drawn boxes overlap, in every panel."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    bad = []
    for ax in fig.axes:
        x0, x1 = ax.get_xlim()
        labels = [t for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True)
                  if t.get_visible() and t.get_text() and x0 <= t.get_position()[0] <= x1]
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
        for i, (a, ba) in enumerate(boxes):
            bad += [(a, b) for b, bb in boxes[i + 1:] if ba.overlaps(bb)]
    return bad


# the first two collided with matplotlib's own log labels (2x10^13 over 3x10^13; 1.2x10^15 ... 1.9x10^15)
@pytest.mark.parametrize("span", [(7.67e12, 3.89e13), (1.2e15, 1.9e15), (3e14, 9e14), (1e10, 1e18)])
def test_log_x_tick_labels_never_collide(tmp_path: Path, span: tuple[float, float]) -> None:
    lo, hi = span
    flops = [lo * (hi / lo) ** (i / 7) for i in range(8)]
    for f in flops:
        for task in ("gp-l", "gp-vl", "virl-l", "virl-vl"):  # four panels side by side, as on sft-vs-rl
            make_run(tmp_path, task=task, model="ckpt", recipe="sft", flops=f, successes=pattern(20, 10))
    fig = plot.compute_figure(plot.compute_table(tmp_path), log_x=True)
    ax = fig.axes[0]
    x0, x1 = ax.get_xlim()
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and x0 <= t.get_position()[0] <= x1]
    assert 2 <= len(shown) <= 6, shown
    assert not _overlaps(fig)


def test_recipes_keep_their_colours_across_plots(tmp_path: Path, root: Path) -> None:
    """SFT and RL are always drawn in the same colours, whatever else is on the plot and in what order."""
    both = plot.compute_figure(plot.compute_table(root))
    only_rl = tmp_path / "rl"
    make_run(only_rl, model="ckpt", recipe="rl", flops=1e15, successes=pattern(20, 3))
    make_run(only_rl, model="ckpt", recipe="rl", flops=2e15, successes=pattern(20, 5))
    alone = plot.compute_figure(plot.compute_table(only_rl))

    def colours(fig) -> dict[str, str]:
        from matplotlib.colors import to_hex

        return {line.get_label(): to_hex(line.get_color()) for line in fig.legends[0].get_lines()}

    assert colours(both)["SFT"] == plot.RECIPE_COLOURS["sft"] and colours(both)["RL"] == plot.RECIPE_COLOURS["rl"]
    assert colours(alone)["RL"] == plot.RECIPE_COLOURS["rl"]  # RL alone is not recoloured as the first series
