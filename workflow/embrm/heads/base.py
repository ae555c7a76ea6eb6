"""The reward-head contract, modelled on scikit-learn estimators.

A head stores its hyperparameters in ``__init__`` (validated against the type's ``defaults``);
``fit`` learns from annotated pairs and returns ``self``; ``predict_reward`` maps embeddings of any
leading shape ``(..., D)`` to rewards, reading memory-mapped input in chunks; ``get_params`` is what
gets logged; ``save``/``load`` use safe formats only (JSON plus safetensors or a LightGBM text
model, never pickle). Heavy libraries are imported inside methods so that choosing a head never
costs another head's import time.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..costs import Compute, HeadCost, Shapes, network_cost
from ..errors import ConfigError, DataError
from ..io import release_pages

# Prediction reads this many bytes of float32 embeddings per chunk (rows = bytes / (4·D)), so
# memory stays bounded at any D while blocks stay large enough for efficient matrix products.
PREDICT_CHUNK_BYTES = 64 * 2**20
PREDICT_CHUNK_ROWS = (1024, 65_536)  # lower and upper bound on rows per chunk
DEVICES = ("auto", "cpu", "cuda")
# The parameters of a head whose training procedure is a recipe (RewardHead.RECIPE; schema
# fragments, RewardHead.PARAMS). The components themselves are added per head family from
# heads.recipe.
PROTOCOL_PARAMS = {  # "protocol" lists heads.recipe.PROTOCOLS (tested; imported lazily here)
    "protocol": {
        "enum": ["embrm", "study"],
        "description": "preset of every training component: embrm's own procedure or the "
        "authors' released one, quirks included; a component set explicitly overrides it "
        "(docs/heads.md)",
    },
    "study_member": {
        "minimum": 0,
        "description": "seeding released: the released member whose seed and split are used",
    },
}
FORMAT_VERSION = 1
# Passes over the pairs charged to a head type that declares no cost (RewardHead.estimate).
DEFAULT_FIT_PASSES = 100


@dataclass
class PairData:
    """Annotated pairs over a flat (N, D) embedding array; ``label`` is 1 when ``a`` won.

    ``source`` names the embedding file and ``pairs_source`` the file(s) the pairs and labels came
    from; both appear in every error message about bad input.
    """

    embeddings: np.ndarray
    a: np.ndarray
    b: np.ndarray
    label: np.ndarray
    source: str = "embeddings"
    pairs_source: str = "pairs"

    def __post_init__(self):
        self.source, self.pairs_source = str(self.source), str(self.pairs_source)
        if self.embeddings.ndim != 2:
            raise DataError(
                f"{self.source}: expected a flat (N, D) embedding array, got shape "
                f"{self.embeddings.shape}"
            )
        if self.embeddings.shape[1] == 0:
            raise DataError(f"{self.source}: embeddings have dimension 0")
        self.a, self.b = np.asarray(self.a), np.asarray(self.b)
        self.label = np.asarray(self.label)
        if not (self.a.ndim == self.b.ndim == self.label.ndim == 1):
            raise DataError(f"{self.pairs_source}: pair indices and labels must be 1-D arrays")
        if self.a.size == 0:
            raise DataError(
                f"{self.pairs_source}: no annotated pairs to train on (empty training set)"
            )
        if not (self.a.size == self.b.size == self.label.size):
            raise DataError(
                f"{self.pairs_source}: {self.a.size} first responses, {self.b.size} second "
                f"responses and {self.label.size} labels; they must match"
            )
        for name, index in (("a", self.a), ("b", self.b)):
            if not np.issubdtype(index.dtype, np.integer):
                raise DataError(f"{self.pairs_source}: pair indices '{name}' are not integers")
            low, high = int(index.min()), int(index.max())
            if low < 0 or high >= self.embeddings.shape[0]:
                raise DataError(
                    f"{self.pairs_source}: pair index '{name}' out of range [{low}, {high}] for "
                    f"{self.source} with {self.embeddings.shape[0]} responses"
                )
        if not np.isin(self.label, (0, 1)).all():
            raise DataError(f"{self.pairs_source}: labels must be 0 or 1 (1 = first response won)")

    @property
    def dim(self) -> int:
        return self.embeddings.shape[-1]

    @property
    def size(self) -> int:
        return self.a.size

    def compact(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Load only the rows the pairs touch, as float32: (rows, a_local, b_local)."""
        used, inverse = np.unique(np.concatenate([self.a, self.b]), return_inverse=True)
        rows = np.asarray(self.embeddings[used], dtype=np.float32)
        release_pages(self.embeddings)
        bad = ~np.isfinite(rows).all(axis=1)
        if bad.any():
            raise DataError(
                f"{self.source}: embeddings of annotated responses contain NaN or inf "
                f"(first at flat row {int(used[np.argmax(bad)])}, {int(bad.sum())} rows in all)"
            )
        return rows, inverse[: self.a.size], inverse[self.a.size :]

    def split(self, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Sorted pair indices for training and validation (the validation share is ``fraction``).

        At least one pair always stays in training.
        """
        order = rng.permutation(self.a.size)
        n_val = min(round(fraction * self.a.size), self.a.size - 1)
        return np.sort(order[n_val:]), np.sort(order[:n_val])


def winners_losers(
    a: np.ndarray, b: np.ndarray, label: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The pointwise view of pairs: (winner indices, loser indices) by the annotators' labels."""
    won = label > 0
    return np.where(won, a, b), np.where(won, b, a)


def pair_accuracy(margin: np.ndarray) -> float:
    """Share of pairs ordered like their labels, given margins r̂(winner) − r̂(loser); ties count ½."""
    if margin.size == 0:
        return float("nan")
    return float(np.mean(np.where(margin == 0, 0.5, margin > 0)))


def bce_with_logits_np(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-example binary cross-entropy from logits, in float64 (numerically stable)."""
    z = logits.astype(np.float64)
    return np.maximum(z, 0.0) - z * target + np.log1p(np.exp(-np.abs(z)))


def bce_np(prob: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-example binary cross-entropy of probabilities, logs clamped at −100 as torch's BCELoss
    does (a saturated sigmoid costs 100, not infinity)."""
    p = prob.astype(np.float64)
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), -100.0)
        log_q = np.maximum(np.log1p(-p), -100.0)
    return -(target * log_p + (1 - target) * log_q)


def mean64(values: np.ndarray) -> float:
    """A float64 mean whose summation order depends on nothing but the array."""
    return float(np.sum(values, dtype=np.float64) / max(values.size, 1))


def _type_error(where: str, key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"config key '{where}.{key}': expected {expected}, got {value!r}")


def _check_type(value: Any, default: Any, where: str, key: str) -> None:
    """Hyperparameters take the type of their default (an int is accepted where a float is)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _type_error(where, key, "true or false", value)
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(where, key, "an integer", value)
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise _type_error(where, key, "a number", value)
    elif isinstance(default, list):
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
        ):
            raise _type_error(where, key, "a list of positive integers", value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise _type_error(where, key, "a string", value)


def _default_schema(default: Any) -> dict:
    """The JSON-schema type a hyperparameter's default implies (what :func:`_check_type` accepts)."""
    if isinstance(default, bool):
        return {"type": "boolean"}
    if isinstance(default, int):
        return {"type": "integer"}
    if isinstance(default, float):
        return {"type": "number"}
    if isinstance(default, list):
        return {"type": "array", "items": {"type": "integer", "minimum": 1}}
    if isinstance(default, str):
        return {"type": "string"}
    return {}


def require(condition: bool, where: str, key: str, message: str) -> None:
    """Raise a ConfigError naming ``where.key`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"config key '{where}.{key}': {message}")


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
    # (embrm.heads.heads_schema) and the generic tests (tests/test_heads.py) are derived from
    # these, so adding a head touches neither.
    # JSON-schema refinements per parameter (description, enum, ...), merged over the type its
    # default gives (see :meth:`param_schema`); ranges stay in :meth:`_check_values`.
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
        if cls.RECIPE:
            from .recipe import components_for, param_fragments

            cls.defaults = {**cls.defaults, **dict.fromkeys(components_for(cls.RECIPE))}
            cls.PARAMS = {**cls.PARAMS, **param_fragments(cls.RECIPE)}

    @classmethod
    def param_schema(cls) -> dict[str, dict]:
        """One JSON-schema fragment per hyperparameter: the type of its default (as
        :func:`_check_type` reads it) refined by ``PARAMS``, with the default in the description.

        Fragments carry no ``default`` key: filling defaults stays with the class, so a
        validated config holds only what its file says.
        """
        out = {}
        for key, default in cls.defaults.items():
            fragment = {**_default_schema(default), **cls.PARAMS.get(key, {})}
            text = fragment.get("description", "").rstrip(". ")
            if default is not None:  # None: a training component, whose default is a preset's
                text = f"{text}. Default: {json.dumps(default)}".lstrip(". ")
            fragment["description"] = text
            out[key] = fragment
        return out

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
        """Validate hyperparameter overrides; errors name ``where.<key>``."""
        if not isinstance(params, Mapping):
            raise ConfigError(f"config key '{where}': expected a mapping of hyperparameters")
        unknown = set(params) - set(cls.defaults)
        if unknown:
            raise ConfigError(
                f"config key '{where}': unknown hyperparameters {sorted(unknown)} for head type "
                f"'{cls.type_name}'; expected some of {sorted(cls.defaults)}"
            )
        for key, value in params.items():
            _check_type(value, cls.defaults[key], where, key)
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
        """Range checks of a complete parameter set; subclasses extend with :func:`require`."""
        if "val_fraction" in params:
            require(0 <= params["val_fraction"] < 1, where, "val_fraction", "must be in [0, 1)")

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


def predict_together(
    heads: Sequence[RewardHead],
    embeddings: np.ndarray,
    *,
    source: str | Path | None = None,
    seconds: list[float] | None = None,
) -> np.ndarray:
    """(len(heads), ...) rewards of several fitted heads from one chunked pass over ``embeddings``.

    Each chunk is read from the (memory-mapped) array, converted to float32 and checked for NaN
    and inf once, then handed to every head, so scoring many models costs one read of the test
    set. All heads must have been trained on the same dimension. When given, ``seconds`` receives
    each head's own scoring time (the shared read is not in it).
    """
    if not heads:
        raise ValueError("predict_together needs at least one head")
    first = heads[0]
    for head in heads:
        head._check_fitted()
        if head.dim_ != first.dim_:
            raise ValueError(
                f"heads trained on different dimensions ({first.dim_} and {head.dim_}) cannot "
                "share a pass over one embedding array"
            )
        head._prepare_predict()
    rows = int(np.prod(embeddings.shape[:-1]))
    out = np.empty((len(heads), rows), dtype=np.float32)
    spent = [0.0] * len(heads)
    for start, block in iter_chunks(embeddings, first.dim_, source, first.type_name):
        for i, head in enumerate(heads):
            started = time.perf_counter()
            out[i, start : start + block.shape[0]] = head._predict_block(block)
            spent[i] += time.perf_counter() - started
    if seconds is not None:
        seconds[:] = spent
    return out.reshape((len(heads), *embeddings.shape[:-1]))


def iter_chunks(embeddings: np.ndarray, dim: int, source, head: str):
    """Yield ``(first_row, float32 block)`` over the rows of (..., D) embeddings.

    Checks the dimension and that every value is finite; errors name ``source`` (the file).
    """
    name = str(source) if source is not None else "embeddings"
    if embeddings.ndim < 1 or embeddings.shape[-1] != dim:
        found = embeddings.shape[-1] if embeddings.ndim else "none"
        raise DataError(
            f"{name}: embedding dimension {found} does not match the {dim} this {head} head "
            f"was trained on"
        )
    flat = embeddings.reshape(-1, dim)
    low, high = PREDICT_CHUNK_ROWS
    step = int(np.clip(PREDICT_CHUNK_BYTES // (4 * dim), low, high))
    for start in range(0, flat.shape[0], step):
        # A writable float32 copy: reads the memory map once and suits every library.
        source_rows = flat[start : start + step]
        block = np.array(source_rows, dtype=np.float32)
        release_pages(source_rows)  # a pass over a memory map must not pile up resident pages
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            raise DataError(
                f"{name}: embeddings contain NaN or inf (first at flat row "
                f"{start + int(np.argmax(bad))})"
            )
        yield start, block


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible to torch, else ``cpu``; ``cuda`` must exist."""
    if device not in DEVICES:
        raise ConfigError(
            f"config key 'training.device': unknown device {device!r}; expected one of {DEVICES}"
        )
    if device == "cpu":
        return "cpu"
    available = cuda_available()
    if device == "cuda" and not available:
        raise ConfigError(
            "config key 'training.device': 'cuda' requested but torch sees no CUDA device "
            "(use 'auto' to fall back to the CPU)"
        )
    return "cuda" if available else "cpu"
