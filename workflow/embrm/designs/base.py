"""What every pairing design declares: its name, its settings, its capacity and how it draws."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Design(ABC):
    """Which responses get compared. A design is registered under :attr:`name` (a value of
    ``grid.designs`` and a path component of every run)."""

    # True: the pairs are chosen per run, in rounds, from a model (the workflow's `active` rule);
    # False: :meth:`draw` deals one cell's pairs for every annotator and head.
    active: bool = False

    @property
    @abstractmethod
    def name(self) -> str:
        """The design's name: letters, digits and ``-`` (``same-random``)."""

    @property
    @abstractmethod
    def settings(self) -> dict[str, str]:
        """The design as summary columns (``prompt_pairing``, ``candidates``): what figures and
        statistics group runs by."""

    @abstractmethod
    def capacity(self, prompts: int, responses: int) -> int:
        """The most distinct pairs the design deals on ``prompts`` × ``responses``."""

    @abstractmethod
    def draw(
        self, rewards: np.ndarray, n: int, rng: np.random.Generator, *, key: str = "quantity"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices ``(a, b)`` of ``n`` distinct pairs of the ``(P, K)`` ``rewards``, ``a``
        shown first; more than :meth:`capacity` is a ConfigError naming ``key``.

        The first ``m`` pairs of a draw of ``n`` must be distributed as a draw of ``m``: a cell
        of ``m`` pairs takes the first ``m`` of its design's largest quantity (common random
        numbers, :func:`embrm.designs.make_pairs`)."""

    @property
    def heldout(self) -> str:
        """The registered design that draws the run's held-out test pairs (itself by default)."""
        return self.name

    def __repr__(self) -> str:
        return f"<design {self.name}>"
