"""Following the log files of running jobs for their latest progress line (embrm.progress).

The logger hears of a job when it starts (its ``log`` files) and when it ends; between the two the
console's refresh asks for the latest steps. Files are read incrementally, at most every
``every`` seconds, and any problem with a file (not written yet, removed, truncated, unreadable)
only means that job shows nothing for now: following logs never stops the workflow.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from embrm.progress import Step, parse

# A job that logs faster than the console reads only needs its last lines: read at most this much
# of what was appended since the last look.
TAIL_BYTES = 64 * 1024


class LogTail:
    """New complete lines of one growing file, read from where the last call stopped."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.cut = False  # the next complete line lost its start (read skipped ahead)

    def new_lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < self.offset:  # truncated or replaced: start over
                    self.offset, self.partial, self.cut = 0, b"", False
                if size - self.offset > TAIL_BYTES:
                    self.offset, self.partial, self.cut = size - TAIL_BYTES, b"", True
                handle.seek(self.offset)
                data = handle.read(size - self.offset)
        except OSError:
            return []
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()  # an unfinished last line waits for its end
        if self.cut and lines:
            lines.pop(0)
            self.cut = False
        return [line.decode("utf-8", "replace") for line in lines]


@dataclass
class RunningJob:
    rule: str
    tails: list[LogTail]
    latest: Step | None = None
    started: float = field(default_factory=time.monotonic)


class JobLogs:
    """Running jobs and the latest progress step found in each one's log files."""

    def __init__(self, every: float = 1.0, clock=time.monotonic):
        self.every, self.clock = every, clock
        self.jobs: dict[int, RunningJob] = {}
        self.last_poll: float | None = None
        self.lock = threading.Lock()

    def start(self, jobid: int, rule: str, logs) -> None:
        paths = [str(p) for p in (logs or []) if p]
        with self.lock:
            self.jobs[jobid] = RunningJob(rule, [LogTail(p) for p in paths])

    def stop(self, jobid: int) -> None:
        with self.lock:
            self.jobs.pop(jobid, None)

    def poll(self, force: bool = False) -> None:
        """Read what the running jobs' logs gained, unless the last read is under ``every`` old."""
        with self.lock:
            now = self.clock()
            if not force and self.last_poll is not None and now - self.last_poll < self.every:
                return
            self.last_poll = now
            for job in self.jobs.values():
                for tail in job.tails:
                    for line in tail.new_lines():
                        step = parse(line)
                        if step is not None:
                            job.latest = step

    def steps(self) -> list[tuple[str, Step]]:
        """(rule, latest step) of each running job that has reported one, oldest job first."""
        with self.lock:
            jobs = sorted(self.jobs.items(), key=lambda item: (item[1].started, item[0]))
            return [(job.rule, job.latest) for _, job in jobs if job.latest is not None]


def describe(rule: str, step: Step) -> str:
    """One console line: rule, task, how far, time left, and the job's details."""
    bound = "at most " if step.at_most else ""
    text = f"{rule} · {step.task}: {step.unit} {step.done} of {bound}{step.total}"
    if step.eta is not None:
        text += f", ETA {step.eta}"
    return text + (f" · {step.details}" if step.details else "")
