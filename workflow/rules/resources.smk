# Resource requests (memory, wall time, GPUs) of the jobs a cluster runs; see docs/slurm.md.
# The package estimates them (embrm/resources.py) from the costs that each head type, world source
# and stage declares; these callables only hand it the jobs' wildcards. A profile's
# `set-resources` overrides any of these values.
from embrm.resources import Requests

REQUESTS = Requests(PLAN, RESULTS)


def mem_mb_world(wildcards, attempt):
    return REQUESTS.world(wildcards.world, attempt).mem_mb


def runtime_world(wildcards, attempt):
    return REQUESTS.world(wildcards.world, attempt).runtime


def mem_mb_light(wildcards, attempt):
    return REQUESTS.light(wildcards.world, attempt).mem_mb


def runtime_light(wildcards, attempt):
    return REQUESTS.shortest(attempt)


def mem_mb_evaluate(wildcards, attempt):
    return REQUESTS.evaluate(wildcards.world, wildcards.head, attempt).mem_mb


def mem_mb_train(wildcards, attempt):
    return REQUESTS.train(
        wildcards.world, wildcards.head, int(wildcards.n), attempt
    ).mem_mb


def runtime_train(wildcards, attempt):
    return REQUESTS.train(
        wildcards.world, wildcards.head, int(wildcards.n), attempt
    ).runtime


def _score(wildcards, attempt):
    heads = [run.head for run in LAYOUT.cell_runs(wildcards)]
    return REQUESTS.score(wildcards.world, heads, int(wildcards.n), attempt)


def mem_mb_score(wildcards, attempt):
    return _score(wildcards, attempt).mem_mb


def runtime_score(wildcards, attempt):
    return _score(wildcards, attempt).runtime


def _train_cell(wildcards, attempt):
    heads = [run.head for run in LAYOUT.stacked_runs(wildcards)]
    return REQUESTS.train_cell(wildcards.world, heads, int(wildcards.n), attempt)


def mem_mb_train_cell(wildcards, attempt):
    return _train_cell(wildcards, attempt).mem_mb


def runtime_train_cell(wildcards, attempt):
    return _train_cell(wildcards, attempt).runtime


def _active(wildcards, attempt):
    return REQUESTS.active(
        wildcards.world,
        wildcards.head,
        int(wildcards.n),
        LAYOUT.active_rounds(wildcards),
        LAYOUT.active.pool_size,
        attempt,
    )


def mem_mb_active(wildcards, attempt):
    return _active(wildcards, attempt).mem_mb


def runtime_active(wildcards, attempt):
    return _active(wildcards, attempt).runtime


def gpu_train(wildcards):
    return int(REQUESTS.gpu)


def _cell(wildcards, attempt):
    heads = [run.head for run in LAYOUT.cell_runs(wildcards)]
    stacked = [head for head in heads if head in LAYOUT.stacked_heads]
    return REQUESTS.cell(wildcards.world, heads, stacked, int(wildcards.n), attempt)


def mem_mb_cell(wildcards, attempt):
    return _cell(wildcards, attempt).mem_mb


def runtime_cell(wildcards, attempt):
    return _cell(wildcards, attempt).runtime
