"""A workflow stage declared once: its options beside its function.

``@stage(name, help, Option(...), ...)`` on a function of :mod:`embrm.stages` registers it. The
command line (``python -m embrm <name>``: parser and dispatch, :mod:`embrm.cli`) and the rule's
command (:func:`render`, which :class:`embrm.layout.Layout` calls with a job's values) are both
read from the declaration, so an option is added or renamed in one place. The options must be
the function's parameters, checked when the stage is declared.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

KINDS = ("path", "paths", "text", "int", "json", "switch", "models")


@dataclass(frozen=True)
class Option:
    """One option: the function's parameter ``param`` given as ``flag`` on the command line.

    ``kind``: path or text (a string), paths (a list of paths after one flag), int, json (a value
    given as JSON), switch (a flag that is present or not), models (``{name: folder}``, repeated as ``--model name=folder``).
    """

    param: str
    flag: str
    kind: str = "path"
    required: bool = True
    default: Any = None
    help: str | None = None
    choices: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"option {self.flag}: kind {self.kind!r} is not one of {KINDS}")

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


@dataclass(frozen=True)
class Stage:
    name: str
    help: str
    options: tuple[Option, ...]
    function: Callable[..., None]

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        for option in self.options:
            extra: dict[str, Any] = {"help": option.help}
            if option.kind == "switch":
                parser.add_argument(option.flag, action="store_true", **extra)
                continue
            if option.kind == "models":
                extra.update(action="append", metavar="NAME=DIR")
            elif option.kind == "paths":
                extra["nargs"] = "+"
            elif option.kind == "int":
                extra["type"] = int
            elif option.kind == "json":
                extra["type"] = json_arg
            if option.choices:
                extra["choices"] = list(option.choices)
            if option.required:
                extra["required"] = True
            else:
                extra["default"] = option.default
            parser.add_argument(option.flag, **extra)

    def call(self, args: argparse.Namespace) -> None:
        values = {}
        for option in self.options:
            value = getattr(args, option.dest)
            values[option.param] = model_arguments(value) if option.kind == "models" else value
        self.function(**values)


STAGES: dict[str, Stage] = {}


def stage(name: str, help_text: str, *options: Option):
    """Register the decorated function as stage ``name``, run with ``options``."""

    def register(function):
        if name in STAGES:
            raise ValueError(f"stage {name!r} declared twice")
        params = set(inspect.signature(function).parameters)
        declared = [option.param for option in options]
        if set(declared) != params or len(declared) != len(params):
            raise ValueError(
                f"stage {name!r}: options {sorted(declared)} are not the parameters of "
                f"{function.__name__} {sorted(params)}"
            )
        STAGES[name] = Stage(name, help_text, tuple(options), function)
        return function

    return register


def json_arg(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None


def as_json(value: Any) -> str:
    """Settings handed to a job: compact, key-sorted JSON (the same text for the same value)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def render(name: str, values: dict[str, Any]) -> str:
    """The command-line arguments of stage ``name`` for these values (one per option; None or
    a false switch leaves the option out)."""
    declared = STAGES[name]
    missing = {option.param for option in declared.options} ^ set(values)
    if missing:
        raise ValueError(f"stage {name!r}: values for {sorted(missing)} do not match its options")
    words: list[str] = []
    for option in declared.options:
        value = values[option.param]
        if value is None or (option.kind == "switch" and not value):
            continue
        if option.kind == "switch":
            words.append(option.flag)
        elif option.kind == "models":
            for model, folder in value.items():
                words += [option.flag, shlex.quote(f"{model}={folder}")]
        elif option.kind == "paths":
            words += [option.flag, *map(shlex.quote, map(str, value))]
        elif option.kind == "json":
            words += [option.flag, shlex.quote(as_json(value))]
        else:
            words += [option.flag, shlex.quote(str(value))]
    return " ".join(words)


# Names become relative paths under the output directory: no empty, hidden or parent parts.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*(/[A-Za-z0-9][A-Za-z0-9_.+-]*)*")


def model_arguments(values: list[str]) -> dict[str, str]:
    """``["name=dir", ...]`` -> ``{name: dir}``; names must be distinct."""
    models: dict[str, str] = {}
    for value in values:
        name, sep, directory = value.partition("=")
        if not sep or not directory or not MODEL_NAME.fullmatch(name):
            raise ConfigError(
                f"--model: expected NAME=DIR with NAME made of '/'-separated parts of letters, "
                f"digits and _.+- (not starting with a dot), got {value!r}"
            )
        if name in models:
            raise ConfigError(f"--model: name {name!r} given twice")
        models[name] = directory
    return models
