"""Active annotation designs: choose which pairs to label next from the current reward model.

An active design is ``<pool>-<rule>``: the candidate pool (``same``: two responses of one prompt;
``cross``: responses of two different prompts) and the selection rule:

- ``activerandom``: a uniformly random batch of the pool, drawn in the same rounds (the baseline);
- ``levelset``: the candidates with the smallest predicted |Δr̂| (the model is least sure);
- ``dopt``: the greedy batch that most increases log det of the last-layer Fisher information;
- ``pastdopt``: the same, with the information of the pairs already labelled added.

One module per rule (:mod:`.random_rule`, :mod:`.levelset`, :mod:`.dopt`, :mod:`.pastdopt`), the
candidate pool in :mod:`.pool`, the features the rules read in :mod:`.features`, the round protocol
in :mod:`.rounds` and the annotation budget planner in :mod:`.budget`. See docs/active.md.
"""

from __future__ import annotations

from ..errors import ConfigError
from . import dopt, levelset, pastdopt, random_rule

POOLS = ("same", "cross")
RULES = {
    "activerandom": random_rule,
    "levelset": levelset,
    "dopt": dopt,
    "pastdopt": pastdopt,
}
DESIGNS = tuple(f"{pool}-{rule}" for pool in POOLS for rule in RULES)


def is_active(design: str) -> bool:
    return design in DESIGNS


def parse(design: str) -> tuple[str, str]:
    """``"cross-dopt"`` -> ``("cross", "dopt")``; a ConfigError for anything else."""
    if design not in DESIGNS:
        raise ConfigError(
            f"config key 'grid.designs': '{design}' is not an active design; expected one of "
            f"{DESIGNS}"
        )
    pool, rule = design.split("-", 1)
    return pool, rule
