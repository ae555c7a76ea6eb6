"""The training stages: fit a run's head (``train``), a cell's stacked runs (``train-cell``) and
hand each stacked run its files (``unstack``), and score saved models on the test set
(``score``). Files in, files out, every output written atomically, as in :mod:`embrm.stages`.
"""

from __future__ import annotations

import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from .declare import Option, stage
from .errors import DataError
from .io import (
    atomic_dir,
    atomic_path,
    read_npz,
    write_json,
    write_npy,
)
from .tree import SCORING_RECORD, scored_name

log = logging.getLogger("embrm")


def where_fitted(head, threads: int) -> dict:
    """What a fit's last bits depend on besides config and seed, recorded in train.json (and so
    in MLflow): the device, the thread count (torch's CPU kernels reduce in another order with
    more threads) and the instruction set torch's kernels were dispatched to (an AVX-512 CPU and
    an AVX2 one can differ in the last bits at more than one thread). None for heads that do not
    run on torch (LightGBM), even in a process that imported torch for another head (a cell job,
    embrm.cell_job)."""
    from .heads.torch_common import TorchHead

    torch = sys.modules.get("torch")
    on_torch = torch is not None and isinstance(head, TorchHead)
    capability = torch.backends.cpu.get_cpu_capability() if on_torch else None
    return {"device": head.device_, "threads": threads, "cpu_capability": capability}


def train_record(
    ensemble,
    *,
    threads: int,
    started_at: float,
    fit_seconds: float,
    predict_seconds: float | None,
    train_pairs: int,
    world,
) -> dict:
    """A run's train.json: the head as fitted, where and how long, each member's stopping epoch
    (written by the train job, or for each run of a stacked cell by train-cell)."""
    members = ensemble.members
    return {
        "head": ensemble.get_params(),
        **where_fitted(members[0], threads),
        "started_at": started_at,
        "best_epoch": [m.best_epoch_ for m in members],
        "epochs_run": [len(m.curves_) for m in members],
        # The batch schedule each member used (None for a head without minibatch epochs): the
        # summary reads it rather than work it out again.
        "steps_per_epoch": [getattr(m, "steps_per_epoch_", None) for m in members],
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "train_pairs": train_pairs,
        "test_embeddings": int(np.prod(world.test.embeddings.shape[:2])),
        "host": platform.node(),
        "embrm_version": __version__,
    }


@stage(
    "train",
    "train a head (or ensemble); optionally score the test set",
    Option("world_dir", "--world"),
    Option("pairs_path", "--pairs"),
    Option("labels_path", "--labels"),
    Option("head_spec", "--head", "json"),
    Option("seed", "--seed", "int"),
    Option("threads", "--threads", "int", required=False, default=1),
    Option("device", "--device", "text", required=False, default="auto"),
    Option("model_dir", "--model-dir"),
    Option(
        "predictions_out",
        "--predictions",
        required=False,
        help="write test predictions here (omit to only fit and save the model)",
    ),
    Option("curves_out", "--curves"),
    Option("info_out", "--info"),
)
def train(
    world_dir,
    pairs_path,
    labels_path,
    head_spec: dict,
    seed: int,
    *,
    threads: int,
    device: str,
    model_dir,
    predictions_out,
    curves_out,
    info_out,
) -> None:
    """Fit a head (or ensemble) and save it; score the test set too unless ``predictions_out`` is
    None (``training.scoring: cell``: the cell's score job does it for every run at once)."""
    import pandas as pd

    from .heads.ensemble import Ensemble
    from .heads.pairs import PairData
    from .world import World

    world = World(world_dir)
    pairs = read_npz(pairs_path, "a", "b")
    labels = read_npz(labels_path, "label")
    # Bad input (empty set, indices out of range, NaN/inf rows, dimension mismatch) raises a
    # DataError naming the file before anything is written.
    data = PairData(
        world.train.flat_embeddings,
        pairs["a"],
        pairs["b"],
        labels["label"],
        source=str(world.train.embeddings_path),
        pairs_source=f"{pairs_path} (labels {labels_path})",
    )
    ensemble = Ensemble.from_spec(head_spec, seed=seed, device=device, threads=threads)
    started_at = time.time()  # wall clock: MLflow's start of the run
    started = time.perf_counter()
    ensemble.fit(data)
    fit_seconds = time.perf_counter() - started

    predict_seconds = None
    if predictions_out is not None:
        started = time.perf_counter()
        # One chunked pass over the test memory map serves every member and checks for NaN/inf.
        predictions = ensemble.predict_reward(
            world.test.embeddings, source=world.test.embeddings_path
        )
        predict_seconds = time.perf_counter() - started
        write_npy(predictions_out, predictions)
    with atomic_dir(model_dir) as tmp:
        ensemble.save(tmp)
    with atomic_path(curves_out) as tmp:
        pd.DataFrame(ensemble.curves).to_csv(tmp, index=False)
    write_json(
        info_out,
        train_record(
            ensemble,
            threads=threads,
            started_at=started_at,
            fit_seconds=fit_seconds,
            predict_seconds=predict_seconds,
            train_pairs=int(pairs["a"].size),
            world=world,
        ),
    )
    scored = "" if predict_seconds is None else f", predicted in {predict_seconds:.1f} s"
    log.info("trained %s in %.1f s%s", head_spec["type"], fit_seconds, scored)


@stage(
    "score",
    "score several saved models with one read of the test embeddings",
    Option("world_dir", "--world"),
    Option(
        "models",
        "--model",
        "models",
        help="a saved model and the name of its predictions file (repeat for each model)",
    ),
    Option("threads", "--threads", "int", required=False, default=1),
    Option("device", "--device", "text", required=False, default="auto"),
    Option("out_dir", "--out", help="directory for <NAME>.npy and scoring.json"),
)
def score(world_dir, models: dict[str, str], out_dir, *, threads: int, device: str) -> None:
    """Score every saved model in ``models`` (name -> model directory) on the test set with one
    chunked read of the test embeddings; write ``<name>.npy`` per model and ``scoring.json``.

    Each model's predictions are exactly those its own train job would have written (a saved
    head reloads and predicts identically).
    """
    from .heads.ensemble import Ensemble
    from .heads.predict import predict_together
    from .world import World

    if not models:
        raise DataError(f"{out_dir}: no models to score")
    world = World(world_dir)
    test = world.test.embeddings
    ensembles = {
        name: Ensemble.load(path, device=device, threads=threads) for name, path in models.items()
    }
    for name, ensemble in ensembles.items():
        dim = ensemble.members[0].dim_
        if dim != test.shape[-1]:
            raise DataError(
                f"{models[name]}: model trained on dimension {dim}, but the test embeddings "
                f"{world.test.embeddings_path} have dimension {test.shape[-1]}"
            )
    heads = [member for ensemble in ensembles.values() for member in ensemble.members]
    seconds: list[float] = []
    started = time.perf_counter()
    stacked = predict_together(heads, test, source=world.test.embeddings_path, seconds=seconds)
    pass_seconds = time.perf_counter() - started
    # Reading, converting and checking the test embeddings: paid once for all runs.
    read_seconds = pass_seconds - sum(seconds)
    runs, first = {}, 0
    with atomic_dir(out_dir) as tmp:
        for name, ensemble in ensembles.items():
            last = first + len(ensemble.members)
            path = tmp / scored_name(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_npy(path, stacked[first:last])
            runs[name] = {
                "predictions": scored_name(name),
                "model": str(models[name]),
                "members": len(ensemble.members),
                "device": ensemble.members[0].device_,
                "predict_seconds": sum(seconds[first:last]),
            }
            first = last
        write_json(
            tmp / SCORING_RECORD,
            {
                "runs": runs,
                "models": len(ensembles),
                "heads": len(heads),
                "pass_seconds": pass_seconds,
                "read_seconds": read_seconds,
                "test_embeddings": int(np.prod(test.shape[:-1])),
                "threads": threads,
                "host": platform.node(),
                "embrm_version": __version__,
            },
        )
    log.info(
        "scored %d models (%d heads) in one pass over %s: %.1f s, of which %.1f s reading",
        len(ensembles),
        len(heads),
        world.test.embeddings_path,
        pass_seconds,
        read_seconds,
    )


@stage(
    "train-cell",
    "train a cell's MLP runs together (stacked weights, one process)",
    Option("world_dir", "--world"),
    Option("pairs_path", "--pairs"),
    Option(
        "runs",
        "--runs",
        "json",
        help='JSON list of {"name": "annotator/head", "head": head spec, "labels": path}',
    ),
    Option("seed", "--seed", "int"),
    Option("threads", "--threads", "int", required=False, default=1),
    Option("device", "--device", "text", required=False, default="auto"),
    Option("score", "--score", "switch", help="also write each run's test predictions"),
    Option("out_dir", "--out", help="directory for <name>/{model,curves.csv,...}"),
)
def train_cell(
    world_dir,
    pairs_path,
    runs: list[dict],
    seed: int,
    *,
    threads: int,
    device: str,
    out_dir,
    score: bool,
) -> None:
    """Fit a cell's MLP runs together (``training.stack: true``, see :mod:`.heads.stacked`).

    ``runs``: one ``{"name": "<annotator>/<head>", "head": head spec, "labels": labels path}``
    per run, all on the pairs ``pairs_path``. For each run, ``out_dir/<name>/`` receives what the
    run's own train job writes: ``model/``, ``curves.csv``, ``train.json`` and, when ``score``,
    ``predictions.npy`` (all runs scored in one pass over the test set). The whole directory
    appears at once or not at all.
    """
    import pandas as pd

    from .errors import ConfigError
    from .heads.ensemble import Ensemble
    from .heads.pairs import PairData
    from .heads.predict import predict_together
    from .heads.stacked import fit_stacked, stack_refusal
    from .world import World

    if not runs:
        raise DataError(f"{out_dir}: no runs to train")
    names = [run["name"] for run in runs]
    if len(set(names)) != len(names):
        raise DataError(f"{out_dir}: run names repeat in {names}")
    for run in runs:
        spec = run["head"]
        where = f"heads.{run['name'].rsplit('/', 1)[-1]}"
        reason = stack_refusal(spec["type"], spec.get("params", {}), spec.get("members", 1), where)
        if reason:
            raise ConfigError(reason)
    world = World(world_dir)
    pairs = read_npz(pairs_path, "a", "b")
    embeddings = world.train.flat_embeddings  # one array object shared by every run
    data, ensembles = [], []
    for run in runs:
        labels = read_npz(run["labels"], "label")
        data.append(
            PairData(
                embeddings,
                pairs["a"],
                pairs["b"],
                labels["label"],
                source=str(world.train.embeddings_path),
                pairs_source=f"{pairs_path} (labels {run['labels']})",
            )
        )
        # The run's own ensemble of one: its member gets the seed its train job would give it.
        ensembles.append(
            Ensemble.from_spec(run["head"], seed=seed, device=device, threads=threads, members=1)
        )
    heads = [ensemble.members[0] for ensemble in ensembles]
    started_at = time.time()  # wall clock: MLflow's start of each run of the cell
    started = time.perf_counter()
    timing = fit_stacked(heads, data, names)
    fit_seconds = time.perf_counter() - started

    predictions, seconds, pass_seconds = None, [], None
    if score:
        started = time.perf_counter()
        predictions = predict_together(
            heads, world.test.embeddings, source=world.test.embeddings_path, seconds=seconds
        )
        pass_seconds = time.perf_counter() - started
    with atomic_dir(out_dir) as tmp:
        for i, (run, ensemble) in enumerate(zip(runs, ensembles, strict=True)):
            run_dir = tmp / run["name"]
            run_dir.mkdir(parents=True, exist_ok=True)
            if predictions is not None:
                write_npy(run_dir / "predictions.npy", predictions[i : i + 1])
            ensemble.save(run_dir / "model")
            pd.DataFrame(ensemble.curves).to_csv(run_dir / "curves.csv", index=False)
            stack = timing["stacks"][timing["stack_of"][i]]
            record = train_record(
                ensemble,
                threads=threads,
                started_at=started_at,
                # The run's share of the cell's stacked fit.
                fit_seconds=fit_seconds / len(runs),
                predict_seconds=seconds[i] if score else None,
                train_pairs=int(pairs["a"].size),
                world=world,
            )
            record["stacked"] = {
                "runs": len(runs),
                "cell_fit_seconds": fit_seconds,
                "stack_models": stack["models"],
                "stack_seconds": stack["seconds"],
                "cell_predict_seconds": pass_seconds,
            }
            write_json(run_dir / "train.json", record)
    log.info(
        "trained %d runs stacked in %.1f s (%s)",
        len(runs),
        fit_seconds,
        ", ".join(f"{s['models']} {s['type']} in {s['seconds']:.1f} s" for s in timing["stacks"]),
    )


@stage(
    "unstack",
    "give one run of a stacked cell its own run outputs",
    Option("cell_dir", "--cell", help="the train-cell output directory"),
    Option("name", "--name", "text", help="the run's name in it (annotator/head)"),
    Option("model_out", "--model-dir"),
    Option("curves_out", "--curves"),
    Option("info_out", "--info"),
    Option("predictions_out", "--predictions", required=False),
)
def unstack(cell_dir, name: str, *, model_out, curves_out, info_out, predictions_out=None) -> None:
    """Give run ``name`` of a stacked cell (``train_cell``'s ``out_dir``) its own run outputs:
    hard links (copies across file systems) with a fresh modification time, so the run directory
    looks exactly as its own train job leaves it, without a second copy of the model on disk."""
    import os
    import shutil

    source = Path(cell_dir) / name
    if not (source / "train.json").is_file():
        raise DataError(f"{cell_dir}: no trained run '{name}' in this stacked cell")

    def place(src: Path, dst: Path) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.utime(tmp)
        os.replace(tmp, dst)

    with atomic_dir(model_out) as tmp:
        for path in sorted((source / "model").rglob("*")):
            if path.is_file():
                place(path, tmp / path.relative_to(source / "model"))
    place(source / "curves.csv", Path(curves_out))
    if predictions_out is not None:
        place(source / "predictions.npy", Path(predictions_out))
    place(source / "train.json", Path(info_out))
