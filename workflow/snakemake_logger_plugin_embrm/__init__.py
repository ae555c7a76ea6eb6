"""Snakemake's ``--logger embrm``: the rich progress display with an estimate of the time left,
the running jobs' own progress under it, and config file errors with file and line.

snakemake-logger-plugin-rich draws an overall bar and one bar per rule with the elapsed time; this
adds rich's own remaining-time column (from the rate at which each bar's jobs have finished), so
the console shows how long the experiment still needs. Under the bars, each running job that logs
progress lines (embrm.progress: epochs of training, texts embedded with their ETA, …) shows its
latest one, read from the job's log file (follow.py). A config file Snakemake could not read is
named with the line of the error (config_errors.py). Everything else is the rich plugin's.
"""

import sys

from rich.console import Group
from rich.progress import TimeRemainingColumn
from rich.text import Text
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_logger_plugin_rich import LogHandler as RichLogHandler

from .config_errors import explain
from .follow import JobLogs, describe

# Jobs listed under the bars at most (the oldest first); the rest are counted.
SHOWN_JOBS = 8


class JobProgress:
    """Renderable: the latest progress line of each running job, read when the display redraws."""

    def __init__(self, logs: JobLogs):
        self.logs = logs

    def __rich_console__(self, console, options):
        try:
            self.logs.poll()
            steps = self.logs.steps()
        except Exception:  # a display problem must never stop the workflow
            steps = []
        for rule, step in steps[:SHOWN_JOBS]:
            yield Text(f" {describe(rule, step)}", style="dim", no_wrap=True, overflow="ellipsis")
        if len(steps) > SHOWN_JOBS:
            yield Text(f" … and {len(steps) - SHOWN_JOBS} more running jobs", style="dim")


class LogHandler(RichLogHandler):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.progress.columns = (
            *self.progress.columns,
            TimeRemainingColumn(compact=True, elapsed_when_finished=True),
        )
        self.job_logs = JobLogs()
        self.live_display.update(Group(self.live_display.renderable, JobProgress(self.job_logs)))

    def emit(self, record):
        try:
            handled = self._embrm_event(record)
        except Exception:  # following logs is extra; the rich display goes on
            handled = False
        if not handled:
            super().emit(record)

    def _embrm_event(self, record) -> bool:
        """Track running jobs; explain config file errors. True when the record is done with."""
        event = getattr(record, "event", None)
        if event == LogEvent.JOB_INFO and not self.settings.dryrun:
            self.job_logs.start(
                getattr(record, "jobid", 0),
                getattr(record, "rule_name", ""),
                getattr(record, "log", None),
            )
        elif event == LogEvent.JOB_FINISHED:
            self.job_logs.stop(getattr(record, "job_id", None))
        elif event == LogEvent.JOB_ERROR:
            self.job_logs.stop(getattr(record, "jobid", None))
        elif event == LogEvent.ERROR:
            account = explain(record.getMessage(), getattr(record, "exception", None), sys.argv)
            if account is None:
                return False
            if getattr(record, "exception", None) == "FileNotFoundError":
                # Snakemake's traceback says no more than this line; --verbose keeps it.
                if self.settings.verbose:
                    super().emit(record)
            else:
                super().emit(record)
            self.console.print(Text(account, style="red"), soft_wrap=True)
            return True
        return False
