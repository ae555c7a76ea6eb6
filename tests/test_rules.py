"""The rule files are wiring: commands without shell logic, knowledge in the package."""

from __future__ import annotations

import re

from conftest import REPO

RULE_FILES = [*sorted((REPO / "workflow" / "rules").glob("*.smk")), REPO / "Snakefile"]
# Shell control flow and conditional chaining: decisions belong in the package or in params.
SHELL_LOGIC = re.compile(r"\bif \[|\bthen\b|\bfi\b|\bdo\b.*\bdone\b|&&|\|\||\bcase\b.*\besac\b")


def test_no_rule_holds_shell_logic():
    for path in RULE_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            strings = " ".join(re.findall(r"\"([^\"]*)\"", code))
            assert not SHELL_LOGIC.search(strings), f"{path.name}:{number}: {line.strip()}"


def test_scoring_mode_is_consulted_in_one_helper():
    """training.scoring reaches the rules through Plan.scores_per_cell, read in one place."""
    uses = [
        (path.name, number)
        for path in RULE_FILES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"PLAN\.scores_per_cell|\[\"scoring\"\]|SCORE_PER_CELL", line.split("#", 1)[0])
    ]
    assert len(uses) == 1 and uses[0][0] == "common.smk", uses
