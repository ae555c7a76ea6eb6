"""What a figure declares: its name and number, what it needs from the grid and the check of
that on a table of run settings, how it is drawn, and its caption in the report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Figure:
    name: str
    number: int
    title: str
    needs: str  # what the grid must provide, in words; the note when the figure is skipped
    drawable: Callable[[pd.DataFrame], bool]  # checks `needs` on a table of run settings
    draw: Callable[[pd.DataFrame, dict], object]  # (summary, head palette) -> matplotlib figure
    caption: str  # shown in the Snakemake report: what the figure shows and how to read it

    @property
    def label(self) -> str:
        return f"{self.number}. {self.title}"


# The captions of the Best-of-N figures end with what the gain is.
BON_CAPTION = (
    "The Best-of-N gain is the golden reward of the response a head picks among N sampled test "
    "responses of a prompt minus the mean golden reward of that prompt's responses (what a "
    "random pick earns), averaged over test prompts and over the draws of N responses; it is in "
    "the world's golden-reward units. Higher is better; 0 is no better than random."
)
