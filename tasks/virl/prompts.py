"""What the model reads each rail step: a fresh prompt with the task, the whole instruction, the action space, and
the observation/action history up to now.

The built-in templates keep the paper's structure and placeholders - ``[Task Description]``, ``[Instruction]``
``{instruction}``, (virl-vl) the observation format, ``[Action space]`` ``{action_space}``, ``[Observations and
actions sequence]`` ``{obs_act_seq}``, ``[Output]`` with the fields ``current observation``, ``current
instruction`` and ``action`` - in harness's own words. ``prompt=example`` ends with a request to answer with the
JSON only, as the paper's API evaluations do. ``prompt_file=PATH`` takes a user's template (a text file, or a
Python module of prompt constants such as the paper's ``prompt_lib/prompts.py``, read and never executed;
``prompt=NAME`` picks one, by default ``Q_VIRL_L`` / ``Q_VIRL_VL``).

The history is built as the paper's env builds it: ``O_i: <observation>`` / ``A_i: <action>`` lines for the
steps walked, then the current ``O_n`` and an empty ``A_n``. On virl-vl the current line reads ``You observe an
image of 4 views;`` (plus the intersection remark), while the earlier lines keep their full text observations,
landmark names included - the paper's quirk, kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness import templates

PLACEHOLDERS = ("instruction", "action_space", "obs_act_seq")
PAPER_PROMPT_NAMES = {False: "Q_VIRL_L", True: "Q_VIRL_VL"}
COMPASS = ("north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest")
RELATIVE = ("left", "right", "slightly left", "slightly right")

_HEAD = """
[Task Description]
You are a skilled navigator following a route through a city, {where} You are also given what you observed and \
did so far, as text. First work out which sentence of the instruction comes next, then choose the action to take \
from your current observation and that sentence.

[Instruction]
{{instruction}}
"""
_GRID = """
[Observation format]
The image is a 2x2 grid of street views around you, headed:
[front, right
 back, left]
Check whether any landmark the instruction names can be seen in the grid.
"""
_TAIL = """
[Action space]
{action_space}

[Observations and actions sequence]
{obs_act_seq}

[Output]
{{
  "current observation": your latest observation{from_where},
  "current instruction": the sentence of the instruction to carry out now, after reading all of it,
  "action": the action to take, one from the action space,
}}
"""
_EXAMPLE = "\nReply with the JSON object only.\n"


def builtin_template(vision: bool, example: bool) -> str:
    where = ("sentence by sentence, while looking at the street views around you." if vision
             else "sentence by sentence.")
    head = _HEAD.format(where=where)
    tail = _TAIL.replace("{from_where}", " in the street view grid" if vision else " in the sequence")
    return head + (_GRID if vision else "") + tail + (_EXAMPLE if example else "")


def action_space_text(absolute: bool) -> str:
    dirs = COMPASS if absolute else RELATIVE
    return ('"forward()": move one step forward\n'
            f'"turn_direction(x)": turn to face x, where x is one of {list(dirs)}\n'
            '"stop()": you have arrived; the navigation is over')


def history(observations: Sequence[str], actions: Sequence[str], vision: bool) -> str:
    """The paper's ``get_observation_action_sequence``."""
    out = [f"O_{i + 1}: {o}\nA_{i + 1}: {a}\n" for i, (a, o) in enumerate(zip(actions, observations, strict=False))]
    if len(observations) > len(actions):
        n = len(observations)
        if vision:
            inter = "You observe an intersection" if "You observe an intersection" in observations[-1] else ""
            out.append(f"O_{n}: You observe an image of 4 views; {inter}\nA_{n}: \n")
        else:
            out.append(f"O_{n}: {observations[-1]}\nA_{n}: \n")
    return "".join(out)


def make_template(vision: bool, prompt: str | None = None, prompt_file: str | None = None) -> str:
    """A checked template. Raises :class:`harness.templates.TemplateError` with the reason."""
    return templates.choose_template(prompt, prompt_file, lambda example: builtin_template(vision, example),
                                     (PAPER_PROMPT_NAMES[vision],), PLACEHOLDERS)[0]
