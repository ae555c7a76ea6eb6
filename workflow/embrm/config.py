"""Configuration: the validated config (schema, then the checks across keys), its files and
experiment names, and :class:`Plan`, every run it asks for.

The schema (:func:`embrm.schema.build`: ``workflow/schemas/config.schema.yaml`` completed from
the registries) is the single description of every key, applied by
:func:`embrm.schema.validated`; the grid values of annotator and head entries are
:mod:`embrm.grid`'s. Errors name the key path (``grid.quantities[1]``) and what was expected.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from .errors import ConfigError
from .grid import GRID_AXES, NAME_PATTERN, expand_annotators, expand_heads
from .schema import validated
from .shared_results import check_experiment_name


def validate(config: Mapping) -> dict:
    """Return a validated deep copy of ``config`` with defaults filled in, or raise ConfigError:
    the schema first, then the rules across keys it cannot state."""
    config = validated(config)
    _check_references(config)
    _check_looks(config)
    return config


def looks(config: Mapping) -> list[int] | None:
    """``findings.looks`` of a validated config: numbers of seeds per sequential look, or None."""
    return (config.get("findings") or {}).get("looks")


def _check_looks(config: dict) -> None:
    """Sequential looks (embrm.findings.sequential): increasing, within grid.seeds."""
    planned = looks(config)
    if planned is None:
        return
    if (config.get("execution") or {}).get("jobs") == "cell":
        raise ConfigError(
            "config key 'execution.jobs': cell jobs run every run of a cell, but 'findings.looks' "
            "runs only the runs its open parts need at each look; set execution.jobs: run (or "
            "auto, which keeps fine jobs with looks) or drop findings.looks"
        )
    seeds = config["grid"]["seeds"]
    for i in range(1, len(planned)):
        if planned[i] <= planned[i - 1]:
            raise ConfigError(
                f"config key 'findings.looks[{i}]': {planned[i]} seeds after {planned[i - 1]}; "
                "expected increasing numbers of seeds, one per look"
            )
    if planned[-1] > len(seeds):
        raise ConfigError(
            f"config key 'findings.looks[{len(planned) - 1}]': the last look asks for "
            f"{planned[-1]} seeds but grid.seeds lists {len(seeds)}; list at least that many "
            "seeds (look k runs the first looks[k] of grid.seeds)"
        )


def _check_references(config: dict) -> None:
    expand_heads(config)  # every head of every sweep is built-checked by its type's rules
    blocks = [("grid", config["grid"])] + [
        (f"extra_grids[{i}]", block) for i, block in enumerate(config["extra_grids"])
    ]
    for where, block in blocks:
        for axis, section in (
            ("worlds", "worlds"),
            ("annotators", "annotators"),
            ("heads", "heads"),
        ):
            for i, name in enumerate(block.get(axis, [])):
                if name not in config[section]:
                    raise ConfigError(
                        f"config key '{where}.{axis}[{i}]': '{name}' is not defined under "
                        f"'{section}' (defined: {sorted(config[section])})"
                    )


DEFAULT_CONFIG = "config.yaml"
DEFAULT_EXPERIMENT = "default"


def experiment_name(config_path: str | Path | None) -> str:
    """The experiment a config file names when its `experiment` key is null: the file's stem,
    except that the workflow's own config.yaml is the `default` experiment."""
    stem = Path(config_path or DEFAULT_CONFIG).stem
    return DEFAULT_EXPERIMENT if stem == Path(DEFAULT_CONFIG).stem else stem


def name_experiment(config: dict, config_path: str | Path | None) -> dict:
    """Fill the null names of a validated config: `experiment` from the file, then the MLflow
    experiment (`tracking.experiment`) from `experiment`."""
    if not config.get("experiment"):
        name = experiment_name(config_path)
        if not re.fullmatch(NAME_PATTERN, name):
            raise ConfigError(
                f"the file name gives the experiment name {name!r}, which is not a valid name "
                "(letters, digits and _.+-); set config key 'experiment'"
            )
        config["experiment"] = name
        check_experiment_name(name, "the file name gives the experiment name")
    else:
        check_experiment_name(config["experiment"], "config key 'experiment'")
    tracking = config.setdefault("tracking", {})
    if not tracking.get("experiment"):
        tracking["experiment"] = config["experiment"]
    return config


def read_yaml(path: str | Path):
    """A YAML file's content; a missing file or a syntax error names the file (and line)."""
    try:
        with open(path) as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a YAML config file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None


REQUIRED_KEYS = ("worlds", "annotators", "heads", "grid")


def read_config(path: str | Path) -> dict:
    """A config file's mapping; an empty file or one that holds no mapping names the file
    (Snakemake's own reader says neither which file nor what it expected)."""
    content = read_yaml(path)
    if content is None:
        raise ConfigError(
            f"{path}: the config file is empty; expected a mapping with at least the keys "
            f"{', '.join(REQUIRED_KEYS)}"
        )
    if not isinstance(content, Mapping):
        raise ConfigError(
            f"{path}: expected a mapping of config keys at the top level, found "
            f"{type(content).__name__} {str(content)[:60]!r}"
        )
    return dict(content)


def load(path: str | Path) -> dict:
    """A config file validated, defaults and names filled in; every error names the file."""
    content = read_config(path)
    try:
        return name_experiment(validate(content), path)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


@dataclass(frozen=True, order=True)
class Run:
    """One grid cell: a head trained on one annotated pair set with one seed."""

    world: str
    design: str
    n: int
    seed: int
    annotator: str
    head: str

    @property
    def pairs_dir(self) -> str:
        """The cell's path under each stage's folder (:data:`embrm.tree.CELL`)."""
        from .tree import cell

        return cell(self)

    @property
    def run_dir(self) -> str:
        """The run's path under each stage's folder (:data:`embrm.tree.RUN`)."""
        from .tree import run

        return run(self)

    @property
    def design_settings(self) -> dict[str, str]:
        """The design's settings columns (``prompt_pairing``, ``candidates``), from its registry."""
        from .designs import get

        return get(self.design).settings

    def as_dict(self) -> dict:
        return asdict(self)


class Plan:
    """The validated config and every run it asks for."""

    def __init__(self, config: Mapping, source: str | Path | None = None):
        """``source``: the config file, which names the experiment when its key is null."""
        self.config = name_experiment(validate(config), source)
        self.annotator_labels = expand_annotators(self.config)
        self.annotator_specs = {
            label: spec
            for labels in self.annotator_labels.values()
            for label, spec in labels.items()
        }
        self.head_names = expand_heads(self.config)
        self.head_specs = {
            name: spec for names in self.head_names.values() for name, spec in names.items()
        }
        self.head_entries = {
            name: entry for entry, names in self.head_names.items() for name in names
        }
        self.runs = self._expand()
        self._check_annotators()
        self._check_capacity()

    def _check_annotators(self) -> None:
        """Build every annotator once: cross-parameter rules fail here, before any job runs."""
        from .annotators import make_annotator

        for entry, labels in self.annotator_labels.items():
            for spec in labels.values():
                make_annotator(spec, where=f"annotators.{entry}")

    def _check_capacity(self) -> None:
        """Refuse more pairs than a design can deal on a synthetic world (sizes known from config);
        other sources are checked before any job by :mod:`embrm.preflight`."""
        self.check_capacity(
            {
                world: (
                    spec["train_prompts"],
                    spec["train_responses"],
                    f"worlds.{world}.train_prompts/train_responses",
                )
                for world, spec in self.config["worlds"].items()
                if spec["source"] == "synthetic"
            }
        )

    def check_capacity(self, sizes: Mapping[str, tuple[int, int, str]]) -> None:
        """``sizes``: world -> (train prompts, responses per prompt, where the sizes come from)."""
        from .designs import get

        for where, block in [
            ("grid", {}),
            *((f"extra_grids[{i}]", b) for i, b in enumerate(self.config["extra_grids"])),
        ]:
            axes = {axis: block.get(axis, self.config["grid"][axis]) for axis in GRID_AXES}
            source = where if "quantities" in block else "grid"
            for world in axes["worlds"]:
                if world not in sizes:
                    continue
                prompts, responses, origin = sizes[world]
                for design in axes["designs"]:
                    limit = get(design).capacity(prompts, responses)
                    for i, n in enumerate(axes["quantities"]):
                        if n > limit:
                            raise ConfigError(
                                f"config key '{source}.quantities[{i}]': {n} pairs requested "
                                f"but design '{design}' on world '{world}' ({prompts} train "
                                f"prompts × {responses} responses, {origin}) allows at most "
                                f"{limit} distinct pairs"
                                + (f" (in {where})" if source != where else "")
                            )

    def _expand(self) -> list[Run]:
        cells: set[Run] = set()
        for block in [{}, *self.config["extra_grids"]]:
            axes = {axis: block.get(axis, self.config["grid"][axis]) for axis in GRID_AXES}
            labels = [
                label for entry in axes["annotators"] for label in self.annotator_labels[entry]
            ]
            heads = [name for entry in axes["heads"] for name in self.head_names[entry]]
            for world, design, n, seed, annotator, head in itertools.product(
                axes["worlds"],
                axes["designs"],
                axes["quantities"],
                axes["seeds"],
                dict.fromkeys(labels),
                dict.fromkeys(heads),
            ):
                cells.add(Run(world, design, n, seed, annotator, head))
        return sorted(cells)

    def world_spec(self, world: str) -> dict:
        return self.config["worlds"][world]

    def head_spec(self, head: str) -> dict:
        """``type``, ``members`` and ``params`` of a head by its run name (a sweep's value)."""
        return copy.deepcopy(self.head_specs[head])

    def head_key(self, head: str) -> str:
        """The config key a head's settings come from: ``heads.<entry>``."""
        return f"heads.{self.head_entries[head]}"

    def annotator_spec(self, label: str) -> dict:
        return self.annotator_specs[label]

    def largest_quantity(self, world: str, design: str) -> int:
        """The most pairs any run of ``design`` on ``world`` asks for: every cell of the design
        draws that many and keeps its first n, so smaller quantities are prefixes of larger ones
        (common random numbers, :func:`embrm.designs.make_pairs`)."""
        return max(run.n for run in self.runs if run.world == world and run.design == design)

    def unique(self, attribute: str) -> list:
        return sorted({getattr(run, attribute) for run in self.runs}, key=str)

    @property
    def scores_per_cell(self) -> bool:
        """training.scoring: whether one job per cell scores the test set for every model of the
        cell (cell), rather than each train job for its own model (run)."""
        return self.config["training"]["scoring"] == "cell"

    @property
    def logs_runs_from_jobs(self) -> bool:
        """tracking.mode: jobs (tracking enabled): each evaluate job logs its own run to MLflow,
        rather than the end-of-workflow sync logging every run."""
        tracking = self.config["tracking"]
        return tracking["enabled"] and tracking["mode"] == "jobs"
