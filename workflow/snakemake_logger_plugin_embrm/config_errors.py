"""Which config file Snakemake could not read, and where.

Snakemake reads ``--configfile`` while parsing its command line, before the Snakefile runs, and
reports a YAML syntax error as ``Config file is not valid JSON or YAML`` (no file, no line), an
empty file as ``Config file must be given as JSON or YAML with keys at top level`` (no file) and a
missing file or a directory as a Python traceback. Its error event carries only that text and the exception's
class name, so the logger finds the config files on the command line and reads them again with
embrm's reader, which names the file and the line.
"""

from __future__ import annotations

from embrm.config import read_config
from embrm.errors import ConfigError

NOT_YAML = "Config file is not valid JSON or YAML"
NOT_MAPPING = "Config file must be given as JSON or YAML with keys at top level"
UNREADABLE = ("FileNotFoundError", "IsADirectoryError")
OPTIONS = ("--configfile", "--configfiles")


def config_files(argv: list[str]) -> list[str]:
    """The values of ``--configfile``/``--configfiles`` (each takes one or more files)."""
    files, taking = [], False
    for arg in argv:
        name, equals, value = arg.partition("=")
        if name in OPTIONS:
            taking = not equals
            if equals:
                files.append(value)
        elif taking and not arg.startswith("-"):
            files.append(arg)
        else:
            taking = False
    return files


def explain(message: str, exception: str | None, argv: list[str]) -> str | None:
    """embrm's account of a config file error that Snakemake reported, or None if not one."""
    files = config_files(argv) or ["config.yaml"]
    unreadable = exception in UNREADABLE and (
        "configfile" in message or any(path in message for path in files)
    )
    if NOT_YAML in message or NOT_MAPPING in message or unreadable:
        problems = []
        for path in files:
            try:
                read_config(path)
            except ConfigError as error:
                problems.append(f"error: {error}")
        return "\n".join(problems) or None
    return None
