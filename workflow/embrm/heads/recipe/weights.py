"""``weights``: which model training keeps.

``final`` (released): the model as it is when the loop ends (MLP: the last epoch run; clf-lgb:
every round built). ``best`` (embrm): the epoch (round) of the lowest monitored loss (validation,
or training without a validation split); the first such epoch on ties.
"""

from __future__ import annotations

from . import Choices, Component


class Final:
    keep_best = False


class Best:
    keep_best = True


COMPONENT = Component(
    key="weights",
    description="weights kept: 'final' (released) or 'best' on the monitored loss (embrm)",
    families=("torch", "lgb"),
    choices=Choices({"final": Final(), "best": Best()}),
    presets={"study": "final", "embrm": "best"},
)
