"""The rules' conda environment (envs/embrm.yaml) installs what pyproject.toml pins, and embrm.

Conda itself is not needed: the file is read as conda reads it (a pip section whose entries pip
installs from the file's folder).
"""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import REPO
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ENV_FILE = REPO / "envs" / "embrm.yaml"


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def environment() -> tuple[str, list[str]]:
    """(the conda python spec, the pip entries) of the environment file."""
    env = yaml.safe_load(ENV_FILE.read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [entry for d in env["dependencies"] if isinstance(d, dict) for entry in d["pip"]]
    python = next(d for d in conda if re.match(r"python\b", d))
    return python, pip


def pip_requirements(entries: list[str]) -> dict[str, Requirement]:
    """Named requirements of the pip section (options such as --editable left out)."""
    found = {}
    for entry in entries:
        if entry.startswith("-"):
            continue
        requirement = Requirement(entry)
        name = canonicalize_name(requirement.name)
        assert name not in found, f"{ENV_FILE}: {requirement.name} listed twice"
        found[name] = requirement
    return found


def pinned_version(requirement: Requirement) -> str | None:
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator == "==":
        return specs[0].version
    return None


def test_environment_pins_what_pyproject_pins():
    project = pyproject()["project"]
    dependencies = [Requirement(d) for d in project["dependencies"]]
    cpu_pins = {
        canonicalize_name(r.name): pinned_version(r)
        for r in map(Requirement, project["optional-dependencies"]["cpu"])
    }
    env = pip_requirements(environment()[1])
    for dependency in dependencies:
        name = canonicalize_name(dependency.name)
        assert name in env, f"{ENV_FILE}: {dependency.name} (pinned in pyproject.toml) missing"
        version = pinned_version(env[name])
        assert version is not None, f"{ENV_FILE}: {dependency.name} is not pinned with =="
        # A pinned dependency has the same pin; a range (torch) takes the pin of the `cpu`
        # extra that `make` installs, which the range must admit.
        expected = pinned_version(dependency) or cpu_pins.get(name)
        assert version == expected, f"{ENV_FILE}: {dependency.name}=={version}, expected {expected}"
        assert dependency.specifier.contains(version), (dependency, version)
    # Nothing beyond the project's dependencies (besides embrm itself).
    extra = set(env) - {canonicalize_name(d.name) for d in dependencies}
    assert not extra, f"{ENV_FILE}: not dependencies of the project: {sorted(extra)}"


def test_environment_python_meets_requires_python():
    python = environment()[0]
    version = python.split("=", 1)[1].lstrip("=")
    assert SpecifierSet(pyproject()["project"]["requires-python"]).contains(f"{version}.0")


def test_environment_installs_embrm_itself():
    """Every rule runs `python -m embrm`: the environment installs this repository (editable,
    so jobs run the checkout's code). Conda runs pip in the environment file's folder."""
    entries = environment()[1]
    installs = [e for e in entries if e.startswith(("-e ", "--editable "))]
    assert len(installs) == 1, f"{ENV_FILE}: expected one editable install of the repository"
    target = (ENV_FILE.parent / installs[0].split(maxsplit=1)[1]).resolve()
    assert target == REPO
    assert pyproject()["project"]["name"] == "embrm"


def test_rules_use_this_environment():
    """Every rule that runs a job declares this environment (`conda: ENV`)."""
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    env = re.search(r'^ENV = "([^"]+)"', common, re.MULTILINE).group(1)
    assert (REPO / "workflow" / "rules" / env).resolve() == ENV_FILE
    rules = 0
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        blocks = re.split(r"\n(?=[ \t]*rule \w+:)", path.read_text())
        for block in blocks:
            if name := re.match(r"\s*rule (\w+):", block):
                rules += 1
                assert re.search(r"\n\s+conda:\n\s+ENV\n", block), f"{path}: rule {name[1]}"
    assert rules >= 20
