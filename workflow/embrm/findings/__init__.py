"""Findings: a verdict for each claim of the study, under the written analysis plan.

The package is split by job:

* :mod:`.plan` reads ``docs/analysis-plan.md`` (every margin, error level and design choice a
  verdict depends on; its version and hash go into every findings table);
* :mod:`.claims` declares each part of each claim once, as a per-seed linear contrast of run
  values (a registry: adding a claim is one entry); :mod:`.preference_claims` restates claims 1
  and 2 on held-out preference accuracy for worlds without a golden reward (its own registry);
* :mod:`.resampling` reads the runs' per-test-prompt values and turns them into per-prompt values
  whose mean is the run's metric;
* :mod:`.statistics` is the crossed random-effects interval over seeds and test prompts, the
  verdicts (replicated, contradicted with Holm over a claim's parts, negligible, inconclusive)
  and the planning numbers;
* :mod:`.part` measures one part of a claim (effect, interval, variance components, planning
  numbers) and holds its row; :mod:`.table` applies them to a summary, decides each part and
  claim; :mod:`.pages` writes findings.csv, .md, .rst, .html;
* :mod:`.sequential` spends the level over sequential looks (seeds added until decided) and
  :mod:`.looks` writes one look's findings and the runs its open parts need.
"""

from .claims import BT_REFERENCE, CLAIMS, REGISTRY, Contrast, cross_minus_same
from .pages import grid_meta, html, markdown, rst, write
from .part import COLUMNS, CROSSED, NO_INTERVAL, SEEDS_ONLY
from .plan import PLAN_PATH, Plan, load
from .resampling import (
    PROMPT_METRICS,
    RUN_KEYS,
    prompt_values,
    read_per_prompt,
    resampled_values,
    run_key,
    world_prompt_values,
)
from .statistics import (
    CONTRADICTED,
    INCONCLUSIVE,
    NEGLIGIBLE,
    NONINFERIORITY,
    NOT_TESTED,
    REPLICATED,
    SUPERIORITY,
    crossed_interval,
    holm,
)
from .table import (
    VERDICT_SCORE,
    claim_scores,
    combine,
    findings,
    findings_metrics,
    prepare,
)

METRIC = load().metric

__all__ = [
    "BT_REFERENCE",
    "CLAIMS",
    "COLUMNS",
    "CONTRADICTED",
    "CROSSED",
    "INCONCLUSIVE",
    "METRIC",
    "NEGLIGIBLE",
    "NONINFERIORITY",
    "NOT_TESTED",
    "NO_INTERVAL",
    "PLAN_PATH",
    "PROMPT_METRICS",
    "REGISTRY",
    "REPLICATED",
    "RUN_KEYS",
    "SEEDS_ONLY",
    "SUPERIORITY",
    "VERDICT_SCORE",
    "Contrast",
    "Plan",
    "claim_scores",
    "combine",
    "cross_minus_same",
    "crossed_interval",
    "findings",
    "findings_metrics",
    "grid_meta",
    "holm",
    "html",
    "load",
    "markdown",
    "prepare",
    "prompt_values",
    "read_per_prompt",
    "resampled_values",
    "rst",
    "run_key",
    "world_prompt_values",
    "write",
]
