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


def test_no_rule_file_decides_what_the_layout_decides():
    """training.scoring, training.stack and the training settings reach the rules only through
    the layout (embrm/layout.py), which `embrm plan` builds too; the rules read validated values
    from PLAN.config, never Snakemake's raw `config`."""
    decisions = re.compile(
        r"scores_per_cell|\[\"scoring\"\]|\[\"stack\"\]|\[\"device\"\]|\[\"threads\"\]"
        r"|(?<![.\w])config\[\""
    )
    uses = [
        (path.name, number, line.strip())
        for path in RULE_FILES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if decisions.search(line.split("#", 1)[0])
    ]
    # The report's landing page reads the findings from `config` (findings.smk writes it there).
    assert [use[0] for use in uses] == ["findings.smk"], uses
