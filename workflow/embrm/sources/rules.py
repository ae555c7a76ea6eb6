"""What the world and text rules need to know about the configured worlds (used by the .smk files).

Rules match only the world names of their sources (a wildcard constraint per rule), so exactly one
rule can make each world file.
"""

from __future__ import annotations

from ..tree import fields, names_pattern
from . import TEXT_SOURCES, check_worlds, input_files


class WorldRules:
    def __init__(self, plan):
        self.plan = plan
        self.worlds = plan.config["worlds"]
        check_worlds(self.worlds)

    def pattern(self, *sources: str) -> str:
        return names_pattern(n for n, s in self.worlds.items() if s["source"] in sources)

    @property
    def built(self) -> str:
        """Worlds made in one job by ``embrm world``."""
        return self.pattern("synthetic", "npy", "preferences")

    @property
    def text(self) -> str:
        return self.pattern(*TEXT_SOURCES)

    def spec(self, wildcards) -> dict:
        """The world's config entry (``wildcards``: a job's wildcards or grid names)."""
        return self.worlds[fields(wildcards)["world"]]

    def source_files(self, wildcards) -> list[str]:
        """User files the world is read from: a change reruns the jobs that read them."""
        return input_files(self.spec(wildcards))

    def threads(self, wildcards) -> int:
        return int(self.spec(wildcards).get("threads", 1))

    def gpus(self, section: str):
        """GPU request of a text job: none when its model is pinned to the CPU."""

        def count(wildcards) -> int:
            return 0 if self.spec(wildcards)[section].get("device", "auto") == "cpu" else 1

        return count
