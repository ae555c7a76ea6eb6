"""One format for a long job's progress lines, so the console can show them.

A job logs to its own file (``results/<experiment>/logs/…``); ``--logger embrm`` follows the log
files of the running jobs and shows each one's latest progress line under the bars. The line is
human-readable and matched by :func:`parse`::

    progress bt-mlp: epoch 3 of at most 50; train loss 0.6801, val loss 0.6931 (0.1 s)
    progress embedding test: texts 640 of 2000, ETA 0:01:52; 12.0/s

``at most`` marks a bound the job may stop before (early stopping); ``ETA`` is optional.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

log = logging.getLogger("embrm")

_LINE = re.compile(
    r"(?:^|[\s:])progress (?P<task>[^:\n]+): (?P<unit>[^\d\s][^\d\n]*?) (?P<done>\d+) of "
    r"(?P<at_most>at most )?(?P<total>\d+)(?:, ETA (?P<eta>\d+:\d\d:\d\d|-))?"
    r"(?:; (?P<details>[^\n]*))?$"
)


@dataclass(frozen=True)
class Step:
    """How far one task has come: ``done`` of ``total`` ``unit`` (epochs, texts, rounds)."""

    task: str
    unit: str
    done: int
    total: int
    at_most: bool = False
    eta_seconds: float | None = None
    details: str = ""

    @property
    def eta(self) -> str | None:
        if self.eta_seconds is None:
            return None
        if not math.isfinite(self.eta_seconds):
            return "-"
        seconds = max(0, round(self.eta_seconds))
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def __str__(self) -> str:
        bound = "at most " if self.at_most else ""
        text = f"progress {self.task}: {self.unit} {self.done} of {bound}{self.total}"
        if self.eta is not None:
            text += f", ETA {self.eta}"
        return text + (f"; {self.details}" if self.details else "")


def report(
    task: str,
    unit: str,
    done: int,
    total: int,
    *,
    at_most: bool = False,
    eta_seconds: float | None = None,
    details: str = "",
) -> None:
    """Log one progress line (INFO, to the job's log)."""
    log.info("%s", Step(task, unit, int(done), int(total), at_most, eta_seconds, details))


def parse(line: str) -> Step | None:
    """The progress step in one log line (after any timestamp prefix), or None."""
    found = _LINE.search(line.rstrip("\r\n"))
    if found is None:
        return None
    eta = found["eta"]
    if eta is None:
        eta_seconds = None
    elif eta == "-":
        eta_seconds = math.inf
    else:
        hours, minutes, seconds = map(int, eta.split(":"))
        eta_seconds = float(hours * 3600 + minutes * 60 + seconds)
    return Step(
        task=found["task"],
        unit=found["unit"],
        done=int(found["done"]),
        total=int(found["total"]),
        at_most=bool(found["at_most"]),
        eta_seconds=eta_seconds,
        details=found["details"] or "",
    )
