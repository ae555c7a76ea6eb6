"""Snakemake's ``--logger embrm``: the rich progress display with an estimate of the time left.

snakemake-logger-plugin-rich draws an overall bar and one bar per rule with the elapsed time; this
adds rich's own remaining-time column (from the rate at which each bar's jobs have finished), so
the console shows how long the experiment still needs. Everything else is the rich plugin's.
"""

from rich.progress import TimeRemainingColumn
from snakemake_logger_plugin_rich import LogHandler as RichLogHandler


class LogHandler(RichLogHandler):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.progress.columns = (
            *self.progress.columns,
            TimeRemainingColumn(compact=True, elapsed_when_finished=True),
        )
