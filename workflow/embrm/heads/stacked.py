"""Training a cell's MLP runs together: stacked weights, one gather and one big product per batch.

The MLP runs of one cell (same world, pairs and seed; different annotators' labels, bt-mlp and
clf-mlp) are small for a GPU one at a time. Here the runs that share a schedule (same head type,
hyperparameters and seed, hence the same train/validation split and the same batch order) are
trained as one stack: every layer's weights are a ``(models, out, in)`` tensor, a batch's
embedding rows are gathered once when the models read the same rows (always for BT: both sides
of the same pairs; for CLF only when the labels agree), and the first layer of all models is a
single matrix product against the concatenated weights. The rest is each run's own fit, model by
model:

- initial weights: ``torch.manual_seed(head.seed)`` then :func:`build_mlp`, as the head's fit does;
- split: ``PairData.split`` with ``np.random.default_rng(head.seed)``;
- batches: one permutation per epoch from a CPU generator seeded with the head's seed;
- losses: the head's own objective (``example_rows``, ``example_losses``, ``validation_loss``);
- Adam: :class:`.torch_common.Adam`'s arithmetic on the stacked tensors (elementwise, so each
  model's update is its own), one step count per stack (all models of a stack step together);
- early stopping per model: a model that stops leaves the stack (it is no longer updated, nor
  computed) and keeps its best epoch's weights, exactly as ``MLPHead.fit`` restores them.

What differs from training the runs one by one is only floating-point rounding: a batched matrix
product may sum in another order than a single one. The tests measure the difference on the CPU.

Only what this module reproduces is accepted: ``bt-mlp`` and ``clf-mlp`` heads with the
hyperparameters in :data:`SUPPORTED_PARAMS`, one member each. Anything else (ensembles, another
training protocol or schedule key) raises a ConfigError naming the key; the workflow then trains
those runs one by one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..costs import MB, network_flops
from ..errors import ConfigError, DataError
from ..progress import report
from .losses import mean64
from .mlp import MLPHead
from .pairs import PairData, pair_accuracy
from .torch_common import SCORE_CHUNK_ROWS, Adam, build_mlp, setup_torch

log = logging.getLogger("embrm")

STACKABLE_TYPES = ("bt-mlp", "clf-mlp")
# The hyperparameters whose meaning this module reproduces (MLPHead's embrm schedule). A head
# with any other key (a new schedule or protocol option) is refused rather than trained wrongly.
SUPPORTED_PARAMS = frozenset(
    {
        "hidden",
        "lr",
        "weight_decay",
        "max_epochs",
        "batch_size",
        "min_steps_per_epoch",
        "val_fraction",
        "patience",
        # Read only by the released seeding, which is refused below; harmless under embrm's.
        "study_member",
    }
)
# The training recipe this module reproduces: embrm's preset, every component (heads.recipe).
SUPPORTED_PROTOCOLS = ("embrm",)


def stacked_model_mb(params: dict, dim: int, pairs: int) -> float:
    """Cost model (embrm.resources): MB that one stacked model adds to a train_cell job: its
    weights, gradients, Adam's two moments and the best copy (five sets), and a batch's
    activations (two responses per pair, the input and two values per hidden unit)."""
    weights = network_flops([dim, *params["hidden"], 1]) / 2
    batch = 2 * min(params["batch_size"], pairs)
    return (weights * 5 + batch * (dim + 2 * sum(params["hidden"]))) * 4 / MB


def stack_refusal(head_type: str, params: dict, members: int, where: str) -> str | None:
    """Why a head cannot be trained stacked (a message naming the config key), or None.

    ``where`` is the head's config path, e.g. ``heads.bt-mlp``; ``params`` its overrides or its
    complete hyperparameters.
    """
    if head_type not in STACKABLE_TYPES:
        return (
            f"config key '{where}.type': stacked training supports {list(STACKABLE_TYPES)}, "
            f"not '{head_type}'"
        )
    if members != 1:
        return (
            f"config key '{where}.members': stacked training supports single models, not "
            f"ensembles of {members}"
        )
    protocol = params.get("protocol", SUPPORTED_PROTOCOLS[0])
    if protocol not in SUPPORTED_PROTOCOLS:
        return (
            f"config key '{where}.params.protocol': stacked training supports the protocols "
            f"{list(SUPPORTED_PROTOCOLS)}, not {protocol!r}"
        )
    from . import head_class

    cls = head_class(head_type)
    components = _components(cls)
    recipe = cls.resolve_recipe({**cls.defaults, **params}, f"{where}.params")
    for key, value in recipe.values.items():
        if value != _embrm_recipe(cls)[key]:
            return (
                f"config key '{where}.params.{key}': stacked training reproduces the "
                f"{protocol} recipe only ({key} '{_embrm_recipe(cls)[key]}'), not {key} '{value}'"
            )
    unknown = sorted(set(params) - SUPPORTED_PARAMS - {"protocol"} - components)
    if unknown:
        return (
            f"config key '{where}.params.{unknown[0]}': stacked training does not reproduce "
            f"this hyperparameter (it supports {sorted(SUPPORTED_PARAMS)})"
        )
    return None


def _components(cls) -> set[str]:
    from .recipe import components_for

    return set(components_for(cls.RECIPE))


def _embrm_recipe(cls) -> dict[str, str]:
    from .recipe import preset

    return preset(SUPPORTED_PROTOCOLS[0], cls.RECIPE)


def check_stackable(head, where: str) -> None:
    """Raise a ConfigError naming the key when ``head`` cannot be trained stacked."""
    if not isinstance(head, MLPHead):
        raise ConfigError(
            f"config key '{where}.type': stacked training supports {list(STACKABLE_TYPES)}, "
            f"not '{head.type_name}'"
        )
    reason = stack_refusal(head.type_name, head.params, 1, where)
    if reason:
        raise ConfigError(reason)


def epoch_batches(head: MLPHead, n_examples: int, shuffler, device) -> list:
    """The example indices of one epoch's batches, drawn as the head's own fit draws them."""
    import torch

    size, _ = MLPHead.epoch_schedule(head.params, n_examples)
    order = torch.randperm(n_examples, generator=shuffler).to(device)
    return [order[start : start + size] for start in range(0, n_examples, size)]


@dataclass
class _Model:
    """One run inside a stack: its head, examples, labels and early-stopping state."""

    head: MLPHead
    name: str
    examples: dict
    rows: object  # every training example's embedding rows (to detect shared gathers)
    val_label: np.ndarray
    best_loss: float = float("inf")
    best_state: dict | None = None
    stale: int = 0
    losses: list = field(default_factory=list)


def _forward(torch, params: list, inputs, shared: bool):
    """(models, rows) scores of a stack. ``inputs``: (rows, D) read by every model when
    ``shared``, else (models, rows, D)."""
    layers = len(params) // 2
    h = inputs
    for layer in range(layers):
        weight, bias = params[2 * layer], params[2 * layer + 1]
        if layer == 0 and shared:
            # One product against every model's first-layer weights at once.
            models, out, dim = weight.shape
            h = torch.addmm(bias.reshape(-1), inputs, weight.reshape(models * out, dim).t())
            h = h.view(inputs.shape[0], models, out).transpose(0, 1)
        else:
            if h.dim() == 2:  # a linear model reading shared rows
                h = h.expand(weight.shape[0], *h.shape)
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        if layer < layers - 1:
            h = torch.relu(h)
    return h.squeeze(-1)


def _score_stack(torch, params, x, index) -> np.ndarray:
    """(models, len(index)) float32 scores of rows ``x[index]`` without gradients, chunked."""
    out = np.empty((params[0].shape[0], index.shape[0]), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, index.shape[0], SCORE_CHUNK_ROWS):
            part = index[start : start + SCORE_CHUNK_ROWS]
            scores = _forward(torch, params, x[part], shared=True)
            out[:, start : start + part.shape[0]] = scores.float().cpu().numpy()
    return out


def _stack(torch, tensors: list) -> object:
    return torch.stack(tensors).detach().clone().requires_grad_(True)


def fit_stacked(
    heads: Sequence[MLPHead], data: Sequence[PairData], names: Sequence[str] | None = None
) -> dict:
    """Fit ``heads`` (unfitted MLP heads) on ``data`` (one PairData each, same embeddings and
    pairs, labels may differ), stacking those with a common schedule. Each head ends up exactly
    as its own ``fit`` leaves it (``model_``, ``curves_``, ``best_epoch_``, ``device_``,
    ``dim_``). Returns ``{"stacks": [{"type", "models", "epochs", "seconds"}, ...], "stack_of":
    [the stack of each head]}``.

    ``names`` (e.g. ``annotator/head``) name the runs in logs and errors.
    """
    if len(heads) != len(data) or not heads:
        raise ValueError("fit_stacked needs one PairData per head, and at least one head")
    names = list(names) if names is not None else [f"model {i}" for i in range(len(heads))]
    for head, name in zip(heads, names, strict=True):
        check_stackable(head, f"heads.{name.rsplit('/', 1)[-1]}")
    first = data[0]
    for item, name in zip(data[1:], names[1:], strict=True):
        # The stage passes one array object; anything else is compared in full.
        same = item.embeddings is first.embeddings or (
            item.embeddings.shape == first.embeddings.shape
            and np.array_equal(item.embeddings, first.embeddings)
        )
        if not same:
            raise DataError(f"{item.source}: run {name} does not share the cell's embeddings")
        if not (np.array_equal(item.a, first.a) and np.array_equal(item.b, first.b)):
            raise DataError(f"{item.pairs_source}: run {name} does not share the cell's pairs")
    devices = {(h.device, h.threads) for h in heads}
    if len(devices) != 1:
        raise ValueError(f"heads of one stacked fit must share device and threads, got {devices}")

    # The rows the pairs touch, loaded once for every run of the cell.
    rows, a, b = first.compact()
    groups: dict[tuple, list[int]] = {}
    for i, head in enumerate(heads):
        key = (head.type_name, json.dumps(head.params, sort_keys=True), head.seed)
        groups.setdefault(key, []).append(i)
    x, stacks, stack_of = None, [], [0] * len(heads)
    for members in groups.values():
        for i in members:
            stack_of[i] = len(stacks)
        lead = heads[members[0]]
        torch, device = setup_torch(lead.device, lead.threads, lead.seed)
        if x is None:
            x = torch.from_numpy(rows).to(device)
        started = time.perf_counter()
        epochs = _fit_stack(
            torch,
            device,
            x,
            a,
            b,
            [heads[i] for i in members],
            [data[i] for i in members],
            [names[i] for i in members],
        )
        stacks.append(
            {
                "type": heads[members[0]].type_name,
                "models": len(members),
                "epochs": epochs,
                "seconds": time.perf_counter() - started,
            }
        )
    return {"stacks": stacks, "stack_of": stack_of}


def _fit_stack(torch, device, x, a, b, heads, data, names) -> int:
    """Fit heads with one schedule (same type, params and seed) as one stack; returns epochs run."""
    lead = heads[0]
    p = lead.params
    # The head's own split: every run of the stack has the same pairs and seed, hence this one.
    train, val = data[0].split(p["val_fraction"], np.random.default_rng(lead.seed))
    val_index = torch.from_numpy(np.ascontiguousarray(np.concatenate([a[val], b[val]]))).to(device)

    models, inits = [], []
    for head, item, name in zip(heads, data, names, strict=True):
        head.device_, head.dim_, head.curves_ = device, item.dim, []
        examples = {
            key: torch.from_numpy(np.ascontiguousarray(value)).to(device)
            for key, value in head.training_examples(a, b, item.label, train).items()
        }
        n_examples = examples["target"].shape[0]
        every = torch.arange(n_examples, device=device)
        models.append(
            _Model(head, name, examples, head.example_rows(examples, every), item.label[val])
        )
        # The head's own initialisation: its seed, then build_mlp, as in MLPHead.fit.
        torch.manual_seed(head.seed)
        head.model_ = build_mlp(head.dim_, head._hidden()).to(device)
        inits.append(list(head.model_.parameters()))
    keys = list(heads[0].model_.state_dict().keys())
    params = [_stack(torch, [init[j] for init in inits]) for j in range(len(inits[0]))]
    optimizer = Adam(params, lr=p["lr"], weight_decay=p["weight_decay"])
    shuffler = torch.Generator().manual_seed(lead.seed)
    n_examples = models[0].examples["target"].shape[0]
    # Every run of the stack follows the lead's batch schedule, the one its own fit would use;
    # each records it in its train.json as that fit does.
    steps = MLPHead.epoch_schedule(lead.params, n_examples)[1]
    for head in heads:
        head.steps_per_epoch_ = steps

    active = list(range(len(models)))
    epoch = 0
    for epoch in range(1, p["max_epochs"] + 1):
        started = time.perf_counter()
        shared = all(torch.equal(models[i].rows, models[active[0]].rows) for i in active[1:])
        for i in active:
            models[i].losses = []
        for idx in epoch_batches(lead, n_examples, shuffler, device):
            wanted = [models[i].head.example_rows(models[i].examples, idx) for i in active]
            inputs = x[wanted[0]] if shared else x[torch.stack(wanted)]
            scores = _forward(torch, optimizer.params, inputs, shared)
            total = 0
            for k, i in enumerate(active):
                per_example = models[i].head.example_losses(scores[k], models[i].examples, idx)
                total = total + per_example.mean()
                models[i].losses.append(per_example.detach())
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
        val_scores = _score_stack(torch, optimizer.params, x, val_index) if val.size else None
        stopped = []
        for k, i in enumerate(active):
            model = models[i]
            train_loss = mean64(torch.cat(model.losses).cpu().numpy())
            if val_scores is None:
                val_loss = val_acc = float("nan")
            else:
                score_a, score_b = val_scores[k, : val.size], val_scores[k, val.size :]
                val_loss = model.head.validation_loss(score_a, score_b, model.val_label)
                margin = np.where(model.val_label > 0, score_a - score_b, score_b - score_a)
                val_acc = pair_accuracy(margin)
            model.head.curves_.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_accuracy": val_acc,
                }
            )
            report(
                f"{model.name} (stacked, {len(active)} models)",
                "epoch",
                epoch,
                p["max_epochs"],
                at_most=True,
                details=f"train loss {train_loss:.4f}, val loss {val_loss:.4f}, "
                f"val accuracy {val_acc:.4f} ({time.perf_counter() - started:.1f} s)",
            )
            # MLPHead.fit's stopping rule, per model.
            monitored = val_loss if val.size else train_loss
            monitored = monitored if np.isfinite(monitored) else float("inf")
            if model.best_state is None or monitored < model.best_loss:
                model.best_loss, model.stale, model.head.best_epoch_ = monitored, 0, epoch
                model.best_state = {
                    key: tensor[k].detach().clone()
                    for key, tensor in zip(keys, optimizer.params, strict=True)
                }
            else:
                model.stale += 1
                if model.stale >= p["patience"]:
                    stopped.append(k)
        if stopped:
            keep = [k for k in range(len(active)) if k not in stopped]
            active = [active[k] for k in keep]
            if not active:
                break
            _drop(torch, optimizer, keep)
    for model in models:
        model.head.model_.load_state_dict(model.best_state)
        model.head.model_.eval()
    return epoch


def _drop(torch, optimizer: Adam, keep: list[int]) -> None:
    """Keep only the stack positions ``keep`` in the parameters and Adam's moments."""
    index = torch.tensor(keep, device=optimizer.params[0].device)
    optimizer.params = [
        p.detach().index_select(0, index).requires_grad_(True) for p in optimizer.params
    ]
    optimizer.exp_avgs = [m.index_select(0, index) for m in optimizer.exp_avgs]
    optimizer.exp_avg_sqs = [v.index_select(0, index) for v in optimizer.exp_avg_sqs]
