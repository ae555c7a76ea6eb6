# Resource requests (memory, wall time, GPUs) of the jobs a cluster runs; see docs/slurm.md.
#
# Each function estimates from the configured shapes: prompts P, responses K and dimension D of
# the world, the number of annotated pairs n, and the head's hyperparameters. The constants come
# from peak-RSS and timing measurements of the stages on the synthetic world at D = 64 and 1024
# (docs/slurm.md) and carry a margin. `attempt` grows a request on each retry, so a job that a
# cluster killed for memory or time comes back with more. A profile's `set-resources` overrides
# any of these values.
import math

import numpy as np

# Fixed cost of a job: the interpreter and numpy; training also loads torch and LightGBM.
BASE_MB = {"light": 300, "train": 700}
# The synthetic builder works on blocks of this many responses (embrm/sources/synthetic.py).
WORLD_BLOCK_ROWS = 32_768
# The npy source copies and scans in blocks of this many bytes (embrm/sources/npy.py).
NPY_BLOCK_MB = 256
# Prediction reads the test embeddings in float32 blocks of about this size (embrm/heads/base.py).
PREDICT_CHUNK_BYTES = 64 * 2**20
PREDICT_CHUNK_ROWS = (1024, 65_536)
# Speeds assumed for wall-time estimates, measured in CPU seconds on one core of the 2-core
# machine of docs/paper-scale.md (fp32 MLP training and prediction at about 30 GFLOP/s; LightGBM
# about 25 ns per pointwise row × sampled feature × boosting round; synthetic generation about
# 0.2 µs per embedding value) and rounded down for slower CPUs; streaming an npy array well above
# 50 MB/s.
CPU_FLOPS_PER_THREAD = 20e9
GPU_FLOPS = 2e12
LGB_SECONDS_PER_CELL = 25e-9
# Scoring with LightGBM: about 0.15 µs of one core per response and tree (measured at D = 2048).
LGB_PREDICT_SECONDS_PER_TREE = 2e-7
# Boosting usually stops early (a few hundred rounds at the default learning rate): assume at most
# this many; a run that needs far more exceeds its wall time and is retried with twice as much.
LGB_EXPECTED_ROUNDS = 1000
WORLD_SECONDS_PER_VALUE = 2e-7
NPY_MB_PER_SECOND = 50
# Start-up of a job (imports, opening memory maps) and the shortest wall time worth asking for.
STARTUP_SECONDS = 120
MIN_RUNTIME_MINUTES = 5
# Estimates are doubled before they become a wall-time limit (running past it kills the job);
# memory gets a quarter on top.
RUNTIME_SAFETY = 2.0
MEMORY_SAFETY = 1.25
# Shapes of a world whose config does not state them (npy and text sources) are read from the
# .npy headers (the user's files, or the built world); before those exist, the paper's largest
# setting is assumed so that nothing is undersized.
DEFAULT_SHAPES = {
    "train": (40_000, 10, 2048),
    "test": (2_000, 500, 2048),
    "itemsize": 4,
}
SPLITS = ("train", "test")


def _round_mb(mb, attempt):
    """A memory request with margin, half again per retry, rounded up to 256 MB."""
    mb = mb * MEMORY_SAFETY * (1 + 0.5 * (attempt - 1))
    return int(math.ceil(mb / 256) * 256)


def _minutes(seconds, attempt):
    """A wall time in whole minutes with margin and start-up, doubled per retry."""
    minutes = (STARTUP_SECONDS + RUNTIME_SAFETY * seconds) / 60
    return int(max(MIN_RUNTIME_MINUTES, math.ceil(minutes)) * attempt)


def _npy_header(path):
    """(shape, itemsize) of an .npy file; memory-mapping reads only the header."""
    array = np.load(path, mmap_mode="r")
    return tuple(array.shape), array.dtype.itemsize


def world_shapes(world):
    """{'train': (P, K, D), 'test': (P, K, D), 'itemsize': bytes} of a world's embeddings."""
    spec = PLAN.world_spec(world)
    if spec["source"] == "synthetic":
        shapes = {
            split: (spec[f"{split}_prompts"], spec[f"{split}_responses"], spec["dim"])
            for split in SPLITS
        }
        return {**shapes, "itemsize": np.dtype(spec["dtype"]).itemsize}
    candidates = [
        {
            split: Path(RESULTS) / "worlds" / world / f"{split}_embeddings.npy"
            for split in SPLITS
        }
    ]
    if spec["source"] == "npy":
        # The user's arrays, readable before the world is built; (K, N, D) files have the same
        # P·K and D, which is all the estimates use.
        candidates.insert(0, {split: spec[split]["embeddings"] for split in SPLITS})
    for paths in candidates:
        try:
            found = {split: _npy_header(paths[split]) for split in SPLITS}
        except (OSError, ValueError):
            continue
        return {split: found[split][0] for split in SPLITS} | {
            "itemsize": found["train"][1]
        }
    return DEFAULT_SHAPES


def _rows(shape):
    return shape[0] * shape[1]


def _head(name):
    """The head's hyperparameters with its type's defaults filled in, and its ensemble size."""
    from embrm.heads import head_class

    spec = PLAN.head_spec(name)
    return {**head_class(spec["type"]).defaults, **spec["params"]}, spec["members"]


# world (synthetic and npy sources; text worlds are made by the rules in text.smk).
def mem_mb_world(wildcards, attempt):
    shapes = world_shapes(wildcards.world)
    if PLAN.world_spec(wildcards.world)["source"] == "synthetic":
        # Blocks of float64 intermediates, about three alive at once.
        block = min(
            WORLD_BLOCK_ROWS, max(_rows(shapes["train"]), _rows(shapes["test"]))
        )
        return _round_mb(
            BASE_MB["light"] + block * shapes["train"][2] * 8 * 3 / 2**20, attempt
        )
    # A block read, its finiteness mask and the transposed block being written.
    return _round_mb(BASE_MB["light"] + 3 * NPY_BLOCK_MB, attempt)


def runtime_world(wildcards, attempt):
    shapes = world_shapes(wildcards.world)
    values = sum(_rows(shapes[split]) * shapes[split][2] for split in SPLITS)
    if PLAN.world_spec(wildcards.world)["source"] == "synthetic":
        return _minutes(values * WORLD_SECONDS_PER_VALUE, attempt)
    return _minutes(values * shapes["itemsize"] / 2**20 / NPY_MB_PER_SECOND, attempt)


# pairs, annotate and text_world read only reward arrays (P, K) and write index arrays.
def mem_mb_light(wildcards, attempt):
    shapes = world_shapes(wildcards.world)
    rows = _rows(shapes["train"]) + _rows(shapes["test"])
    return _round_mb(BASE_MB["light"] + rows * 8 * 4 / 2**20, attempt)


def runtime_light(wildcards, attempt):
    return _minutes(0, attempt)


# evaluate: predictions (members, P, K) in float32 and a few int64 rank arrays of the test set.
def mem_mb_evaluate(wildcards, attempt):
    rows = _rows(world_shapes(wildcards.world)["test"])
    members = PLAN.head_spec(wildcards.head)["members"]
    return _round_mb(BASE_MB["light"] + rows * (4 * members + 8 * 6) / 2**20, attempt)


def _chunk_rows(shapes):
    """Rows of one float32 prediction chunk of the test set."""
    dim = shapes["test"][2]
    bounded = int(np.clip(PREDICT_CHUNK_BYTES // (4 * dim), *PREDICT_CHUNK_ROWS))
    return min(bounded, _rows(shapes["test"]))


def _forward_flops(dim, params):
    """FLOPs of one response through a network head (linear heads have no hidden layer)."""
    widths = [dim, *params.get("hidden", []), 1]
    return 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def _flop_rate(threads):
    return GPU_FLOPS if gpu_training() else CPU_FLOPS_PER_THREAD * threads


def _scoring_mb(shapes, heads):
    """Scoring the test set with the (params, members) heads in one pass: one float32 chunk, a
    network's activations on it, and every member's predictions (held, then written)."""
    hidden = max(sum(params.get("hidden", [])) for params, _ in heads)
    members = sum(members for _, members in heads)
    chunk = _chunk_rows(shapes) * (shapes["test"][2] + 2 * hidden) * 4
    return (chunk + _rows(shapes["test"]) * 4 * members * 2) / 2**20


def _scoring_seconds(shapes, params, members, threads):
    """Scoring the test set with one head: a forward pass per response for networks; LightGBM
    walks every tree once per response."""
    rows = _rows(shapes["test"])
    if "n_estimators" in params:
        rounds = min(params["n_estimators"], LGB_EXPECTED_ROUNDS)
        seconds = rows * rounds * LGB_PREDICT_SECONDS_PER_TREE / threads
    else:
        seconds = rows * _forward_flops(shapes["test"][2], params) / _flop_rate(threads)
    return seconds * members


# train: the annotated responses' embeddings (float32, plus the copies training makes) and, when
# the job scores the test set itself (training.scoring: run), what scoring holds.
def mem_mb_train(wildcards, attempt):
    shapes = world_shapes(wildcards.world)
    dim = shapes["train"][2]
    params, members = _head(wildcards.head)
    responses = min(2 * int(wildcards.n), _rows(shapes["train"]))
    # LightGBM also holds float64 and binned data.
    copies = 6 if "n_estimators" in params else 3
    mb = BASE_MB["train"] + responses * dim * 4 * copies / 2**20
    if not SCORE_PER_CELL:
        mb += _scoring_mb(shapes, [(params, members)])
    return _round_mb(mb, attempt)


def runtime_train(wildcards, attempt):
    shapes = world_shapes(wildcards.world)
    dim = shapes["train"][2]
    params, members = _head(wildcards.head)
    n = int(wildcards.n)
    threads = config["training"]["threads"]
    if "n_estimators" in params:
        # Boosting: histograms over the pointwise rows (2 per pair) and sampled features, per round.
        rounds = min(params["n_estimators"], LGB_EXPECTED_ROUNDS)
        cells = 2 * n * dim * params.get("feature_fraction", 1.0) * rounds
        seconds = cells * LGB_SECONDS_PER_CELL / threads
    else:
        # Networks: a training step costs about three forward passes, each pair feeds two
        # responses, every epoch sees all pairs.
        epochs = params.get("max_epochs", params.get("max_iter", 100))
        seconds = epochs * 3 * _forward_flops(dim, params) * 2 * n / _flop_rate(threads)
    seconds *= members
    if not SCORE_PER_CELL:
        seconds += _scoring_seconds(shapes, params, members, threads)
    return _minutes(seconds, attempt)


# score (training.scoring: cell): every model of the cell loaded and scored in one pass.
def _cell_heads(wildcards):
    return [_head(run.head) for run in cell_runs(wildcards)]


def mem_mb_score(wildcards, attempt):
    shapes = world_shapes(wildcards.world)
    heads = _cell_heads(wildcards)
    return _round_mb(BASE_MB["train"] + _scoring_mb(shapes, heads), attempt)


def runtime_score(wildcards, attempt):
    shapes = world_shapes(wildcards.world)
    threads = config["training"]["threads"]
    seconds = sum(
        _scoring_seconds(shapes, params, members, threads)
        for params, members in _cell_heads(wildcards)
    )
    return _minutes(seconds, attempt)


def gpu_training():
    """Training asks for a GPU only with `training.device: cuda`. Every head does: LightGBM runs
    on the CPU but checks that the CUDA device the config asks for exists."""
    return config["training"]["device"] == "cuda"


def gpu_train(wildcards):
    return int(gpu_training())


# train_cell (training.stack: true): the cell's rows once, each stacked model's weights, gradients,
# Adam moments and best copy, a batch's activations per model, and scoring when the job does it.
def _stacked_heads(wildcards):
    return [_head(run.head) for run in stacked_runs(wildcards)]


def mem_mb_train_cell(wildcards, attempt):
    shapes = world_shapes(wildcards.world)
    dim = shapes["train"][2]
    heads = _stacked_heads(wildcards)
    responses = min(2 * int(wildcards.n), _rows(shapes["train"]))
    mb = BASE_MB["train"] + responses * dim * 4 * 3 / 2**20
    for params, _ in heads:
        weights = _forward_flops(dim, params) / 2
        batch = 2 * min(params["batch_size"], int(wildcards.n))
        hidden = sum(params.get("hidden", []))
        mb += (weights * 5 + batch * (dim + 2 * hidden)) * 4 / 2**20
    if not SCORE_PER_CELL:
        mb += _scoring_mb(shapes, heads)
    return _round_mb(mb, attempt)


def runtime_train_cell(wildcards, attempt):
    shapes = world_shapes(wildcards.world)
    dim = shapes["train"][2]
    threads = config["training"]["threads"]
    seconds = 0.0
    for params, members in _stacked_heads(wildcards):
        # As for one train job per run: the stack does the same arithmetic, in fewer calls.
        flops = (
            params["max_epochs"]
            * 3
            * _forward_flops(dim, params)
            * 2
            * int(wildcards.n)
        )
        seconds += flops / _flop_rate(threads)
        if not SCORE_PER_CELL:
            seconds += _scoring_seconds(shapes, params, members, threads)
    return _minutes(seconds, attempt)


def mem_mb_active(wildcards, attempt):
    # A round holds what training at n holds, the test scoring, and the pool's features (two
    # embeddings and two penultimate vectors per candidate, float32, plus their differences).
    shapes = world_shapes(wildcards.world)
    params, members = _head(wildcards.head)
    width = max([shapes["train"][2], *params.get("hidden", [])])
    pool = ACTIVE.pool_size * (2 * shapes["train"][2] + 3 * width) * 4 / 2**20
    train = mem_mb_train(wildcards, 1) / MEMORY_SAFETY
    scoring = 0 if not SCORE_PER_CELL else _scoring_mb(shapes, [(params, members)])
    return _round_mb(train + scoring + pool, attempt)


def runtime_active(wildcards, attempt):
    # Every round but the last trains at most at n and scores the test set once.
    return max(
        MIN_RUNTIME_MINUTES,
        active_rounds(wildcards) * runtime_train(wildcards, attempt),
    )
