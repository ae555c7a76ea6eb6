"""The reward-head contract, modelled on scikit-learn estimators.

A head stores its hyperparameters in ``__init__`` (validated against the type's declaration,
``defaults`` and ``PARAMS``, by :meth:`RewardHead.check_params`, the same check the config runs);
``fit`` learns from annotated pairs and returns ``self``; ``predict_reward`` maps embeddings of any
leading shape ``(..., D)`` to rewards, reading memory-mapped input in chunks; ``get_params`` is what
gets logged; ``save``/``load`` use safe formats only (JSON plus safetensors or a LightGBM text
model, never pickle). Heavy libraries are imported inside methods so that choosing a head never
costs another head's import time.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..costs import Compute, HeadCost, Shapes, network_cost
from ..errors import ConfigError, DataError

# The heads' shared parts, each in its own module; named here too, where head modules and
# callers have always imported them.
from .device import DEVICES, cuda_available, resolve_device  # noqa: F401
from .losses import bce_np, bce_with_logits_np, mean64  # noqa: F401
from .pairs import PairData, pair_accuracy, winners_losers  # noqa: F401
from .params import check_declared, declaration, require, schema_fragment  # noqa: F401
from .predict import PREDICT_CHUNK_BYTES, PREDICT_CHUNK_ROWS, iter_chunks, predict_together  # noqa: F401

FORMAT_VERSION = 1
# Passes over the pairs charged to a head type that declares no cost (RewardHead.estimate).
DEFAULT_FIT_PASSES = 100


class RewardHead(ABC):
    """Base class; subclasses set ``type_name`` and ``defaults`` and implement the hooks.

    Fitted attributes end in ``_``: ``dim_`` (embedding dimension), ``curves_`` (one dict per epoch
    with ``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy``), ``best_epoch_`` and
    ``device_`` (where the head actually ran).
    """

    type_name: ClassVar[str] = ""
    defaults: ClassVar[dict] = {}
    # Head families whose training components (heads.recipe) this type takes, e.g. ("torch",
    # "bt"); each applicable component becomes a hyperparameter (default None: the protocol's
    # value) and the resolved procedure is ``self.recipe``. Empty: no recipe.
    RECIPE: ClassVar[tuple[str, ...]] = ()

    # -- What a head type declares about itself. The config schema's per-type parameter blocks
    # (embrm.heads.heads_schema), the checks of every head's hyperparameters (check_params, for
    # the config and direct construction alike) and the generic tests (tests/test_heads.py) are
    # derived from these, so adding a head touches none of them.
    # Per parameter: its description and allowed values as JSON-schema keywords (``minimum``,
    # ``exclusiveMinimum``, ``maximum``, ``exclusiveMaximum``, ``enum``), refining the type its
    # default gives; parameters declared in heads.params.SHARED_PARAMS (``lr``, ``val_fraction``,
    # ...) need only what differs. Completed by ``__init_subclass__``.
    PARAMS: ClassVar[dict[str, dict]] = {}
    # Settings that fit the tests' small task (8 dimensions, 1,500 pairs) in about a second.
    TEST_PARAMS: ClassVar[dict] = {}
    # Files :meth:`_save_weights` writes next to ``head.json``.
    SAVED_FILES: ClassVar[tuple[str, ...]] = ()
    # Devices the head trains on: ``cuda`` means it uses a GPU (and fails when none is visible).
    DEVICES: ClassVar[tuple[str, ...]] = ("cpu",)
    # Curve columns the head fills with finite values at every epoch (under its default
    # protocol); a closed-form head may leave losses NaN and declare only what it measures.
    CURVES: ClassVar[tuple[str, ...]] = ("train_loss", "val_loss", "val_accuracy")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = dict(cls.PARAMS)
        if cls.RECIPE:
            from .recipe import components_for, param_fragments

            cls.defaults = {**cls.defaults, **dict.fromkeys(components_for(cls.RECIPE))}
            own = {**own, **param_fragments(cls.RECIPE)}
        cls.PARAMS = declaration(cls.defaults, own)

    @classmethod
    def param_schema(cls) -> dict[str, dict]:
        """One config-schema fragment per hyperparameter: the type of its default, with its
        description, bounds and default in words (:func:`.params.schema_fragment`).

        Fragments carry neither bounds (:meth:`check_params` enforces them) nor a ``default``
        key: filling defaults stays with the class, so a validated config holds only what its
        file says.
        """
        return {
            key: schema_fragment(default, cls.PARAMS.get(key, {}))
            for key, default in cls.defaults.items()
        }

    def __init__(self, *, seed: int = 0, device: str = "auto", threads: int = 1, **params):
        self.check_params(params, f"heads.{self.type_name}.params")
        if device not in DEVICES:
            raise ConfigError(
                f"config key 'training.device': unknown device {device!r}; expected one of {DEVICES}"
            )
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(
                f"config key 'training.threads': expected an integer ≥ 1, got {threads!r}"
            )
        self.params = {**self.defaults, **params}
        self.recipe = self.resolve_recipe(self.params, f"heads.{self.type_name}.params")
        self.seed = int(seed)
        self.device = device
        self.threads = threads
        self.curves_: list[dict] = []
        self.dim_: int | None = None
        self.best_epoch_: int | None = None
        self.device_: str | None = None

    @classmethod
    def check_params(cls, params: Mapping, where: str) -> None:
        """Validate hyperparameter overrides; errors name ``where.<key>``.

        The one check of a head's hyperparameters: the config (``embrm.grid.expand_heads``,
        ``where`` = ``heads.<name>.params``) and every construction call it. Names, types and
        bounds come from the declaration (``defaults``, ``PARAMS``); then the recipe's rules
        and the type's cross-parameter rules (:meth:`_check_values`).
        """
        check_declared(params, cls.defaults, cls.PARAMS, where, cls.type_name)
        merged = {**cls.defaults, **params}
        cls.resolve_recipe(merged, where)
        cls._check_values(merged, where)

    @classmethod
    def resolve_recipe(cls, params: Mapping, where: str):
        """The training procedure (:class:`.recipe.Recipe`) of complete hyperparameters, or None
        for a type without one; errors name the key."""
        if not cls.RECIPE:
            return None
        from .recipe import resolve

        return resolve(cls.RECIPE, params, where, cls.defaults)

    @classmethod
    def _check_values(cls, params: dict, where: str) -> None:
        """Rules across several parameters of a complete parameter set (a single parameter's
        bounds are declared in ``PARAMS``); subclasses extend with :func:`require`."""
        return None  # no such rule is common to every head type

    def get_params(self) -> dict:
        """Everything that determines the fitted model (logged to MLflow as ``head.*``)."""
        # A training component left to its protocol (None) is not logged: head.protocol says it.
        params = {k: v for k, v in self.params.items() if v is not None}
        return {"type": self.type_name, "seed": self.seed, "device": self.device, **params}

    @abstractmethod
    def fit(self, data: PairData) -> RewardHead:
        """Learn from annotated pairs; return ``self``."""

    def _check_fitted(self) -> None:
        if self.dim_ is None:
            raise RuntimeError(f"{self.type_name}: predict_reward called before fit or load")

    def predict_reward(
        self, embeddings: np.ndarray, *, source: str | Path | None = None
    ) -> np.ndarray:
        """Rewards for embeddings of shape (..., D), read in chunks (memory maps stay on disk).

        ``source`` names the array's file in errors (dimension mismatch, NaN or inf).
        """
        return predict_together([self], embeddings, source=source)[0]

    @abstractmethod
    def _prepare_predict(self) -> None:
        """Run once before the chunks (thread settings, evaluation mode)."""

    @abstractmethod
    def _predict_block(self, block: np.ndarray) -> np.ndarray:
        """Rewards for a finite float32 (rows, D) block."""

    # Persistence: hyperparameters in JSON, weights in the subclass's safe format.
    def save(self, directory: str | Path) -> None:
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT_VERSION,
            "params": self.get_params(),
            "dim": self.dim_,
            "best_epoch": self.best_epoch_,
        }
        (directory / "head.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        self._save_weights(directory)

    @staticmethod
    def read_meta(directory: str | Path) -> dict:
        path = Path(directory) / "head.json"
        try:
            meta = json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError(f"{path}: file not found (not a saved head)") from None
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc})") from None
        if meta.get("format") != FORMAT_VERSION or "params" not in meta or "dim" not in meta:
            raise DataError(f"{path}: not a head saved by this version of embrm")
        return meta

    @classmethod
    def load(
        cls, directory: str | Path, *, device: str | None = None, threads: int = 1
    ) -> RewardHead:
        """Rebuild a saved head; ``device`` overrides the saved device setting."""
        directory = Path(directory)
        meta = cls.read_meta(directory)
        params = dict(meta["params"])
        head_type = params.pop("type")
        if head_type != cls.type_name:
            raise DataError(
                f"{directory / 'head.json'}: holds a '{head_type}' head, not '{cls.type_name}'"
            )
        if device is not None:
            params["device"] = device
        head = cls(threads=threads, **params)
        head.dim_ = int(meta["dim"])
        head.best_epoch_ = meta.get("best_epoch")
        head._load_weights(directory)
        return head

    @abstractmethod
    def _save_weights(self, directory: Path) -> None:
        """Write the learned state in a safe format."""

    @abstractmethod
    def _load_weights(self, directory: Path) -> None:
        """Read what :meth:`_save_weights` wrote."""

    # Cost model (embrm.costs, embrm.resources): what one model of this type needs, from which
    # the cluster's memory and wall-time requests are made.
    @classmethod
    def estimate(cls, shapes: Shapes, params: Mapping, pairs: int, compute: Compute) -> HeadCost:
        """Memory and time of one model fitted on ``pairs`` pairs and of its pass over the test
        set; ``params`` holds every hyperparameter (defaults filled in).

        Head types override this with their own arithmetic. A type that does not is charged like
        a linear model on the embeddings fitted in :data:`DEFAULT_FIT_PASSES` passes, which can be
        far off: its requests then only rest on the retry's larger memory and time.
        """
        return network_cost(shapes, pairs, compute, hidden=[], epochs=DEFAULT_FIT_PASSES)
