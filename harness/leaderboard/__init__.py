"""Leaderboards: board definitions (TOML), aggregation from the run index, rendering, comparison.

A board names its columns (task, split, metric) and its rows (a model, or model + recipe + compute). Each
cell is filled from one run picked by the board's selection rule among the matching indexed runs; the
cell keeps that run's value, 95% interval, episode count and where the run lives, so ``compare`` can go
back to its episodes for a paired test. See ``leaderboards/sft-vs-rl.toml`` for a complete example.

The code lives in four modules, each importing only the ones before it: ``schema`` (Board, Column,
RowSpec, parse/load/find a board), ``aggregate`` (fill a board from runs: BoardTable, Row, Cell),
``render`` (table/md/csv/json/html, publish, read a published table back) and ``compare`` (deltas and
significance between two tables). Everything is re-exported here, so ``from harness import leaderboard``
is all a caller needs.
"""

from __future__ import annotations

from harness.leaderboard.aggregate import BoardTable, Cell, Row, aggregate
from harness.leaderboard.compare import (
    Comparison,
    Delta,
    compare,
    compare_cells,
    comparison_legend,
    comparison_to_json,
    comparison_to_markdown,
    comparison_to_rich,
    fmt_delta,
    mcnemar_exact,
    paired_bootstrap,
    paired_values,
)
from harness.leaderboard.render import (
    DATA_MARKER,
    default_publish_path,
    describe_table,
    fmt_cell,
    fmt_value,
    publish,
    read_table,
    render,
    to_csv,
    to_html,
    to_json,
    to_markdown,
    to_rich,
)
from harness.leaderboard.schema import (
    FIELD_PATHS,
    SELECT_RULES,
    Board,
    BoardError,
    Column,
    RowSpec,
    board_dirs,
    find_board,
    load_board,
    parse_board,
)

__all__ = ["DATA_MARKER", "FIELD_PATHS", "SELECT_RULES", "Board", "BoardError", "BoardTable", "Cell", "Column",
           "Comparison", "Delta", "Row", "RowSpec", "aggregate", "board_dirs", "compare", "compare_cells",
           "comparison_legend", "comparison_to_json", "comparison_to_markdown", "comparison_to_rich",
           "default_publish_path", "describe_table", "find_board", "fmt_cell", "fmt_delta", "fmt_value",
           "load_board", "mcnemar_exact", "paired_bootstrap", "paired_values", "parse_board", "publish",
           "read_table", "render", "to_csv", "to_html", "to_json", "to_markdown", "to_rich"]
