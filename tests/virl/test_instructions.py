"""Milestone text, instruction sentences and relative turn labels as the paper's env builds them."""

from __future__ import annotations

import pytest

from harness_tasks.virl.instructions import (
    Milestone,
    MilestoneError,
    build_instructions,
    milestones_from_dicts,
    parse_heading,
    parse_milestone_text,
    relative_label,
)
from tests.virl.helpers import milestone_text

TEXT = """{
"intersection_idx": "1",
"landmarks": "No landmark nearby",
"distance": "72 meters",
"human_heading": "90",
"to_next_intersection_heading": "25 (northeast)",
}
{
"intersection_idx": "2",
"landmarks": "Starbucks is on your right",
"distance": "33 meters",
"to_next_intersection_heading": "0 (north)",
}
{
"intersection_idx": "3",
"to_next_intersection_heading": "315 (northwest)"
}"""


def test_milestone_text_is_read_like_the_paper() -> None:
    blocks = parse_milestone_text(TEXT)
    assert [b["to_next_intersection_heading"] for b in blocks] == ["25 (northeast)", "0 (north)", "315 (northwest)"]
    assert blocks[1]["landmarks"] == "Starbucks is on your right" and "landmarks" not in blocks[2]
    ms = milestones_from_dicts(blocks)
    assert ms[2].landmarks == "No landmark nearby"  # the default when a block has no landmarks
    assert ms[0] == Milestone("No landmark nearby", 25, "northeast")
    # a value keeps everything after the first ':' and loses its surrounding quotes
    assert parse_milestone_text('{"landmarks": "Cafe: open 24h",\n}') == [{"landmarks": "Cafe: open 24h"}]
    assert parse_milestone_text("[" + milestone_text([{"a": "1"}]) + "]") == [{"a": "1"}]


def test_headings() -> None:
    assert parse_heading("177 (south)") == (177, "south")
    assert parse_heading(" 90 (east) ") == (90, "east")
    for bad in ("177", "south (177)", "17.5 (south)", "9" * 400 + " (north)", "10000 (north)"):
        with pytest.raises(MilestoneError):
            parse_heading(bad)
    with pytest.raises(MilestoneError, match="milestone 0: missing 'to_next_intersection_heading'"):
        milestones_from_dicts([{"landmarks": "x"}])


@pytest.mark.parametrize(("diff", "label"), [(-46, "left"), (-45, "slightly left"), (0, "slightly left"),
                                             (1, "slightly right"), (45, "slightly right"), (46, "right"),
                                             (270, "right"), (-340, "left"), (180, "right")])
def test_relative_labels_use_the_plain_difference(diff: float, label: str) -> None:
    assert relative_label(diff) == label


def test_sentences_and_actions() -> None:
    ms = milestones_from_dicts(parse_milestone_text(TEXT))
    ins = build_instructions(ms, 350)
    assert ins.sentences == (
        "First, turn left to face northeast.",  # 25 - 350 = -325: "left", where a compass says slightly right
        "Move forward until you reach next intersection.",
        "Turn slightly left to face north.",
        "Move forward until you reach next intersection where Starbucks is on your right.",
        "Turn right to face northwest.",  # 315 - 0 = 315
        "Move forward until you reach destination where No landmark nearby.",
    )
    assert ins.text.startswith("1. First, turn left to face northeast.\n2. Move forward") and ins.text.endswith(".\n")
    assert ins.absolute_actions == ("turn_direction(northeast)", "turn_direction(north)",
                                    "turn_direction(northwest)", "stop()")
    assert ins.relative_actions == ("turn_direction(left)", "turn_direction(slightly left)",
                                    "turn_direction(right)", "stop()")
    assert ins.headings == (350, 25, 0, 315)
    assert ins.observations == ("No landmarks nearby", "No landmark nearby", "Starbucks is on your right",
                                "No landmark nearby")
    # only the exact default text drops the "where" clause (the plural is a landmark text like any other)
    plural = build_instructions([Milestone("No landmarks nearby", 0, "north"), Milestone("X", 90, "east")], 0)
    assert plural.sentences[1] == "Move forward until you reach next intersection where No landmarks nearby."
    one = build_instructions([Milestone("Cafe is on your left", 90, "east")], 0)
    assert one.sentences == ("Turn right to face east.", "Move forward until you reach destination where Cafe is on "
                             "your left.")
