"""The analysis plan the findings follow: ``docs/analysis-plan.md``, read, never restated.

The plan document is the one place for every number a verdict depends on (smallest effect of
interest, margins, error level, power, the designs claims 1 and 2 cover, and the same for worlds
without a golden reward): its fenced ``yaml``
block headed ``# analysis plan`` is parsed here, and the document's SHA-256 is written beside
every verdict, so a findings table names the exact plan it was decided under.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

PLAN_PATH = Path(__file__).resolve().parents[3] / "docs" / "analysis-plan.md"
_BLOCK = re.compile(r"```yaml\n(# analysis plan.*?)```", re.DOTALL)
REQUIRED = (
    "version",
    "metric",
    "alpha",
    "power",
    "error_threshold",
    "sesoi",
    "match_margin",
    "never_negative_margin",
    "slope_sesoi",
    "claims_1_2_designs",
    "max_seeds",
    "spread_upper_bound",
    "preference_metric",
    "preference_sesoi",
    "preference_match_margin",
    "preference_designs",
    "spending",
    "futility_power",
)


@dataclass(frozen=True)
class Plan:
    version: str
    sha256: str
    metric: str
    alpha: float  # two-sided; every one-sided decision is taken at alpha / 2
    power: float
    error_threshold: float
    sesoi: float  # smallest effect of interest of a "beats" part, share of the oracle's gain
    match_margin: float  # "matches or beats": within this of the reference
    never_negative_margin: float  # "never negative": no head loses more than this
    slope_sesoi: float  # claim 4: gain (share of oracle) per reward unit of |Δr|
    claims_1_2_designs: tuple[str, ...]
    max_seeds: int
    spread_upper_bound: float  # one-sided confidence of the spread's bound used for planning
    # Worlds without a golden reward: held-out preference accuracy, in percentage points
    preference_metric: str
    preference_sesoi: float  # smallest effect of interest of a "beats" part, percentage points
    preference_match_margin: float  # "matches or beats" on accuracy, percentage points
    preference_designs: tuple[str, ...]
    spending: str  # sequential looks: the alpha-spending function (findings/sequential.py)
    futility_power: float  # sequential looks: conditional power below which a part stops

    @property
    def confidence(self) -> float:
        return 1 - self.alpha

    @property
    def label(self) -> str:
        return f"analysis plan {self.version} (sha256 {self.sha256[:12]})"


def parse(text: str, source: str = str(PLAN_PATH)) -> Plan:
    """The plan's numbers from the document's text; a clear error naming what is missing."""
    import yaml

    match = _BLOCK.search(text)
    if not match:
        raise ValueError(f"{source}: no ```yaml block starting with '# analysis plan'")
    values = yaml.safe_load(match.group(1)) or {}
    missing = [k for k in REQUIRED if k not in values]
    if missing:
        raise ValueError(f"{source}: the plan block lacks {', '.join(missing)}")
    sha = hashlib.sha256(text.encode()).hexdigest()
    return Plan(
        version=str(values["version"]),
        sha256=sha,
        metric=str(values["metric"]),
        alpha=float(values["alpha"]),
        power=float(values["power"]),
        error_threshold=float(values["error_threshold"]),
        sesoi=float(values["sesoi"]),
        match_margin=float(values["match_margin"]),
        never_negative_margin=float(values["never_negative_margin"]),
        slope_sesoi=float(values["slope_sesoi"]),
        claims_1_2_designs=tuple(str(d) for d in values["claims_1_2_designs"]),
        max_seeds=int(values["max_seeds"]),
        spread_upper_bound=float(values["spread_upper_bound"]),
        preference_metric=str(values["preference_metric"]),
        preference_sesoi=float(values["preference_sesoi"]),
        preference_match_margin=float(values["preference_match_margin"]),
        preference_designs=tuple(str(d) for d in values["preference_designs"]),
        spending=str(values["spending"]),
        futility_power=float(values["futility_power"]),
    )


@functools.cache
def load(path: str | Path = PLAN_PATH) -> Plan:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the analysis plan the findings follow is missing")
    return parse(path.read_text(encoding="utf-8"), str(path))
