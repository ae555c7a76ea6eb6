"""What lies directly in ``results/`` beside the experiments' own folders.

Every experiment writes under ``results/<experiment>/``; the one MLflow store that all of them
share lies beside those folders, with SQLite's side files and the lock that serializes its
creation. An experiment named like one of these would write its outputs over the store (or fail
to open it), so the names are reserved: the schema refuses them as ``experiment`` values and
:func:`check_experiment_name` refuses them however the name was found (a config file's stem too).
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

RESULTS_ROOT = "results"
MLFLOW_DB = "mlflow.db"
# Held while the database is created (tracking.backend.open_backend): two experiments that start
# together in a fresh checkout would otherwise both run MLflow's schema migration.
MLFLOW_DB_LOCK = f"{MLFLOW_DB}.lock"
SHARED_NAMES = (
    MLFLOW_DB,
    f"{MLFLOW_DB}-journal",
    f"{MLFLOW_DB}-wal",
    f"{MLFLOW_DB}-shm",
    MLFLOW_DB_LOCK,
)


def mlflow_db(root: str | Path = RESULTS_ROOT) -> Path:
    """The shared MLflow database (absolute: MLflow stores paths verbatim)."""
    return Path(root).resolve() / MLFLOW_DB


def reserved_message(name: str, source: str) -> str:
    return (
        f"{source}: {name!r} is reserved: results/{name} is shared by every experiment "
        f"(the MLflow store and its side files: {', '.join(SHARED_NAMES)}); choose another "
        "experiment name"
    )


def check_experiment_name(name: str, source: str) -> None:
    """Refuse a name that ``results/`` already uses for what experiments share. Compared
    without case: on a case-insensitive file system ``MLflow.db`` is the same file."""
    if name.casefold() in {shared.casefold() for shared in SHARED_NAMES}:
        raise ConfigError(reserved_message(name, source))
