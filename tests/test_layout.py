"""The workflow's wiring without Snakemake: the layout's job lists, paths and arguments for every
shipped config, and the decisions that cross config keys (embrm/layout.py)."""

from __future__ import annotations

import shlex

import pytest
from conftest import REPO, TINY_CONFIG, deep_merge
from embrm import tree
from embrm.cli import parser
from embrm.config import Plan, load
from embrm.declare import STAGES, as_json, render
from embrm.errors import ConfigError
from embrm.layout import Layout

SHIPPED = [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]
# Each per-run stage and the job that runs it, by the key its values are asked with.
STAGE_OF_JOB = {"pairs": "pairs", "annotate": "annotate", "active": "active", "train": "train", "unstack": "unstack", "train_cell": "train-cell",
                "score": "score", "evaluate": "evaluate"}  # fmt: skip


def layout_of(config: dict, source: str = "config.yaml") -> Layout:
    return Layout(Plan(config, source=source))


def keyed(name: str) -> dict:
    """A cell's or run's grid names from its path under a stage's folder."""
    parts = name.split("/")
    names = {"world": parts[0], "design": parts[1], "n": parts[2][1:], "seed": parts[3][4:]}
    names.update(zip(("annotator", "head"), parts[4:], strict=False))
    return names


@pytest.fixture(scope="module", params=SHIPPED, ids=lambda p: p.name)
def shipped(request) -> Layout:
    return Layout(Plan(load(request.param), source=request.param))


def test_every_run_is_trained_once_and_evaluated_once(shipped):
    runs = [tree.run(run) for run in shipped.plan.runs]
    jobs = shipped.jobs()
    if shipped.cell_jobs:  # execution.jobs: one job per cell does every step of its runs
        assert jobs == {"cell": sorted({tree.cell(keyed(r)) for r in runs})}
        return
    assert sorted(jobs["evaluate"]) == sorted(runs)
    trained = jobs.get("train", []) + jobs.get("unstack", [])
    assert sorted(trained) == sorted(runs)
    # a run's pairs come from its cell's pairs job, or its own active job
    own = set(jobs.get("active", []))
    assert own <= set(runs)
    assert {tree.cell(keyed(r)) for r in runs if r not in own} == set(jobs.get("pairs", []))
    # every run's files are its own
    assert len(set(shipped.metrics_files())) == len(runs)
    assert all(path.startswith(f"results/{shipped.plan.config['experiment']}/runs/")
               for path in shipped.metrics_files())  # fmt: skip


def parses_back(layout: Layout, stage_name: str, names: dict) -> None:
    """A job's rendered arguments parse back, through the CLI the stage's declaration builds,
    to exactly the values the layout gave: the rule and the command cannot disagree."""
    stage = STAGES[stage_name]
    values = layout.values(stage.name, names)
    args = parser().parse_args([*stage.name.split(), *shlex.split(render(stage.name, values))])
    for option in stage.options:
        parsed = getattr(args, option.dest)
        if option.kind == "models":
            parsed = dict(item.split("=", 1) for item in parsed)
        expected = values[option.param]
        if option.kind == "switch":
            expected = bool(expected)
        elif expected is None:
            expected = option.default
        elif option.kind in ("int", "json", "models"):
            pass
        else:
            expected = str(expected)
        assert parsed == expected, (stage_name, names, option.flag)


def test_every_job_argument_reaches_its_stage_through_the_command_line(shipped):
    for job, names in shipped.jobs().items():
        if job not in STAGE_OF_JOB:
            continue
        for name in names[:3]:
            parses_back(shipped, STAGE_OF_JOB[job], keyed(name))
            values = shipped.values(STAGE_OF_JOB[job], keyed(name))
            assert values.get("threads", shipped.threads) == shipped.threads
            assert values.get("device", shipped.device) == shipped.device


# The world's jobs of each source (world.smk, text.smk).
WORLD_STAGES = {
    "synthetic": ["world"],
    "npy": ["world"],
    "preferences": ["world"],
    "table": ["text table", "text embed", "text world"],
    "hf": ["text prompts", "text generate", "text score", "text embed", "text world"],
}


def test_every_world_job_reaches_its_stage_through_the_command_line(shipped):
    for world in shipped.plan.unique("world"):
        spec = shipped.plan.world_spec(world)
        for stage_name in WORLD_STAGES[spec["source"]]:
            for split in ("train", "test"):
                parses_back(shipped, stage_name, {"world": world, "split": split})
            if stage_name.startswith("text") and "threads" in shipped.values(
                stage_name, {"world": world, "split": "train"}
            ):
                threads = shipped.values(stage_name, {"world": world, "split": "train"})["threads"]
                assert threads == spec.get("threads", 1)


def test_paths_of_a_run():
    layout = layout_of(TINY_CONFIG)
    run = layout.plan.runs[0]
    cell = f"{run.world}/{run.design}/n{run.n}/seed{run.seed}"
    assert run.run_dir == tree.run(run) == f"{cell}/{run.annotator}/{run.head}"
    assert layout.run_pairs(run) == f"results/default/pairs/{cell}.npz"
    assert layout.run_labels(run) == f"results/default/annotations/{cell}/{run.annotator}.npz"
    assert layout.run_annotation_stats(run).endswith(f"{cell}/{run.annotator}.json")
    values = layout.values("train", run)
    assert values["model_dir"] == f"results/default/runs/{run.run_dir}/model"
    assert values["predictions_out"] == f"results/default/runs/{run.run_dir}/predictions.npy"
    # a pattern and a value come from the same template
    pattern = layout.tree.run_file("metrics.json")
    assert pattern.format(**run.as_dict()) == layout.tree.run_file("metrics.json", run)


def test_scoring_per_cell_moves_the_predictions_to_the_cells_score_job():
    layout = layout_of(deep_merge(TINY_CONFIG, {"training": {"scoring": "cell"}}))
    run = layout.plan.runs[0]
    assert "predictions" not in layout.train_outputs()
    assert layout.values("train", run)["predictions_out"] is None
    evaluate = layout.values("evaluate", run)
    cell = layout.tree.scores(run)
    assert layout.predictions_input(run) == cell
    assert evaluate["predictions_path"] == f"{cell}/{run.annotator}/{run.head}.npy"
    assert evaluate["scoring_path"] == f"{cell}/scoring.json"
    assert evaluate["scoring_name"] == f"{run.annotator}/{run.head}"
    assert sorted(layout.jobs()["score"]) == sorted(layout.cells)
    models = layout.values("score", run)["models"]
    assert sorted(models) == sorted(f"{r.annotator}/{r.head}" for r in layout.cell_runs(run))
    run_mode = layout_of(TINY_CONFIG)
    assert "score" not in run_mode.jobs()
    assert run_mode.values("evaluate", run)["scoring_path"] is None
    assert run_mode.predictions_input(run) == run_mode.tree.run_file("predictions.npy", run)


def test_stacking_splits_the_heads_it_can_reproduce():
    config = deep_merge(TINY_CONFIG, {"training": {"stack": True}})
    config["heads"]["clf-mlp"] = {"params": {"hidden": [8], "max_epochs": 2}}
    config["grid"]["heads"] = ["bt-mlp", "clf-lgb", "clf-mlp"]
    layout = layout_of(config)
    assert layout.stacked_heads == ["bt-mlp", "clf-mlp"]
    assert layout.unstacked_heads == ["clf-lgb"]
    assert len(layout.notes) == 1 and "clf-lgb" in layout.notes[0]
    jobs = layout.jobs()
    assert all(name.endswith("/clf-lgb") for name in jobs["train"])
    assert sorted(jobs["train_cell"]) == sorted(layout.cells)
    cell = layout.plan.runs[0]
    values = layout.values("train-cell", cell)
    assert values["score"] is True and values["out_dir"] == layout.tree.stacked(cell)
    assert {r["name"].split("/")[1] for r in values["runs"]} == {"bt-mlp", "clf-mlp"}
    assert sorted(layout.stacked_labels(cell)) == sorted(
        {layout.tree.annotations(r) for r in layout.stacked_runs(cell)}
    )
    off = layout_of(TINY_CONFIG)
    assert off.stacked_heads == [] and "train_cell" not in off.jobs()


def test_stacking_with_active_designs_is_refused():
    config = deep_merge(
        TINY_CONFIG,
        {"training": {"stack": True}, "grid": {"designs": ["same-random", "same-activerandom"]}},
    )
    with pytest.raises(ConfigError, match=r"config key 'training.stack'.*active designs"):
        layout_of(config)


def test_active_runs_read_their_own_pairs_and_the_settings_are_checked():
    layout = layout_of(deep_merge(TINY_CONFIG, {"grid": {"designs": ["same-activerandom"]}}))
    run = layout.plan.runs[0]
    assert layout.run_pairs(run) == f"results/default/active/{run.run_dir}/pairs.npz"
    assert layout.run_labels(run).endswith(f"active/{run.run_dir}/labels.npz")
    assert sorted(layout.jobs()["active"]) == sorted(tree.run(r) for r in layout.plan.runs)
    assert "pairs" not in layout.jobs() and layout.active_rounds(run) >= 1
    with pytest.raises(ConfigError, match=r"config key 'active.pool_size'"):
        layout_of(deep_merge(TINY_CONFIG, {"active": {"pool_size": 10, "round_size": 50}}))


def test_a_stage_declaration_must_match_its_function():
    from embrm.declare import Option, stage

    with pytest.raises(ValueError, match="not the parameters"):

        @stage("mismatched", "a stage whose options miss a parameter", Option("a", "--a"))
        def mismatched(a, b):
            pass

    assert "mismatched" not in STAGES
    with pytest.raises(ValueError, match="do not match"):
        render("train", {"world_dir": "w"})


def test_the_world_job_is_rendered_from_its_declaration():
    """The world rule's command: the world's config entry as compact JSON, its folder, one
    thread and the configured device, parsed back by the CLI the declaration builds."""
    layout = layout_of(TINY_CONFIG)
    values = layout.values("world", {"world": "tiny"})
    words = shlex.split(render("world", values))
    assert words == [
        "--spec",
        as_json(layout.plan.world_spec("tiny")),
        "--out",
        "results/default/worlds/tiny",
        "--threads",
        "1",
        "--device",
        layout.device,
    ]
    args = parser().parse_args(["world", *words])
    assert args.spec == layout.plan.world_spec("tiny") and args.out == layout.tree.world("tiny")
    assert layout.world_threads == args.threads == 1


def test_a_cell_jobs_files_are_the_fine_jobs_files():
    """embrm.cell_job.Cell reads every path from the results tree: the same files the rules of
    pairs, annotate, train, score, train_cell and evaluate declare."""
    from embrm.cell_job import Cell

    layout = layout_of(deep_merge(TINY_CONFIG, {"training": {"scoring": "cell"}}))
    run = layout.plan.runs[0]
    name = f"{run.annotator}/{run.head}"
    cell = Cell(layout.results, tree.cell(run))
    assert tree.cell_fields(tree.cell(run)) == {k: getattr(run, k) for k in CELL_KEYS}
    assert str(cell.pairs) == layout.run_pairs(run)
    assert str(cell.labels(run.annotator)) == layout.run_labels(run)
    assert str(cell.stats(run.annotator)) == layout.run_annotation_stats(run)
    for file in tree.RUN_FILES:
        assert str(cell.run_file(file, name)) == layout.tree.run_file(file, run)
    assert str(cell.scored(name)) == layout.predictions(run)
    assert str(cell.scoring_record) == layout.values("evaluate", run)["scoring_path"]
    assert str(cell.stacked) == layout.tree.stacked(run)
    assert str(cell.done) == layout.tree.cell_record(tree.cell(run))
    assert str(cell.benchmark("train", name)) == layout.tree.benchmark("train", tree.run(run))
    assert str(cell.benchmark("pairs")) == layout.tree.benchmark("pairs", tree.cell(run))
    # tracking reads the stages' seconds from the same benchmark files
    for stage, path in tree.benchmark_paths(run).items():
        assert f"{layout.results}/{path}".startswith(f"{layout.results}/benchmarks/{stage}/")
    with pytest.raises(ValueError, match="not a cell's name"):
        tree.cell_fields("tiny/same-random/200/seed0")


CELL_KEYS = ("world", "design", "n", "seed")


def test_the_invocations_targets():
    layout = layout_of(TINY_CONFIG)
    targets = layout.targets
    final = targets.final()
    assert final[:2] == [f"{layout.results}/summary.csv", f"{layout.results}/aggregate.csv"]
    assert f"{layout.results}/findings.md" in final
    for name in targets.figures:
        assert {f"{layout.results}/figures/{name}.{ext}" for ext in ("png", "svg")} <= set(final)
    assert not set(targets.skipped_figures) & set(targets.figures)
    assert set(targets.figures) | set(targets.skipped_figures) == set(targets.figure_labels)
    assert set(targets.figure_captions) == set(targets.figure_labels)
    tracked = layout.plan.config["tracking"]["enabled"]
    assert (f"{layout.results}/tracking/synced.json" in final) == tracked
    # the budget table only where a learning curve can be fitted (several quantities)
    assert "learning_curves" in targets.skipped_figures and targets.active() == []
    curves = layout_of(deep_merge(TINY_CONFIG, {"grid": {"quantities": [100, 200, 400]}}))
    assert "learning_curves" in curves.targets.figures
    assert curves.targets.active() == [
        f"{curves.results}/budget.csv",
        f"{curves.results}/report/budget.html",
    ]
    # what the aggregation waits for: the runs' metrics, or the cells' records with cell jobs
    assert targets.finished_runs(layout.metrics_files()) == layout.metrics_files()
    cells = layout_of(deep_merge(TINY_CONFIG, {"execution": {"jobs": "cell"}}))
    assert cells.targets.finished_runs(cells.metrics_files()) == [
        cells.tree.cell_record(cell) for cell in cells.cells
    ]
    assert targets.tracking_uri.startswith("sqlite:///") and targets.tracking_uri.endswith(
        "/results/mlflow.db"
    )
    # the recipe's attribution only where the heads hold a head type under both presets
    assert targets.attribution() == [] and "attribution.md" not in " ".join(final)
    presets = {
        "bt-mlp": {"params": {"hidden": [16]}},
        "bt-mlp-study": {"type": "bt-mlp", "params": {"hidden": [16], "protocol": "study"}},
    }
    both = layout_of(
        {**TINY_CONFIG, "heads": presets, "grid": {**TINY_CONFIG["grid"], "heads": list(presets)}}
    )
    assert both.targets.attribution() == [
        f"{both.results}/attribution.md",
        f"{both.results}/report/attribution.html",
    ]
    assert set(both.targets.attribution()) <= set(both.targets.final())


def test_pending_tracking_follows_the_sync_state(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    targets = layout_of(TINY_CONFIG).targets
    assert targets.pending_tracking() == ""
    state = tmp_path / targets.tree.tracking("synced.json")
    state.parent.mkdir(parents=True)
    state.write_text("{not json")
    assert targets.pending_tracking() == "unreadable"
    state.write_text('{"pending_since": "t1"}')
    assert targets.pending_tracking() == "t1"
    state.write_text('{"retried_pending_since": "t0"}')
    assert targets.pending_tracking() == "t0"


def test_sequential_looks_choose_their_runs_from_the_previous_decisions():
    config = deep_merge(
        TINY_CONFIG, {"grid": {"seeds": [0, 1, 2, 3]}, "findings": {"looks": [2, 4]}}
    )
    layout = layout_of(config)
    targets = layout.targets
    assert targets.looks == [2, 4]
    first = targets.look_runs(1, None)
    assert first and {run.seed for run in first} == {0, 1}
    # nothing open after the first look: the second adds no runs
    done = {"runs": [run.run_dir for run in first], "needed": [], "done": True}
    assert targets.look_runs(2, done) == first
    assert targets.last_look({1: done, 2: {"done": True}}.__getitem__) == 1
    assert targets.last_look({1: {"done": False}, 2: {"done": False}}.__getitem__) == 2
    files = layout.tree.look_files(2)
    assert files["decisions"] == f"{layout.results}/looks/look-2/decisions.json"
    assert layout_of(TINY_CONFIG).targets.looks is None


def test_tracking_reads_each_stages_seconds_where_the_jobs_write_their_benchmarks(tmp_path):
    """A run's metrics.json leads back to its experiment's folder, and the benchmark files of
    its world, pairs, annotate, train and score jobs are found where the rules write them."""
    from embrm.tracking.record import STAGE_BENCHMARKS, results_dir_of, stage_seconds

    layout = layout_of(TINY_CONFIG)
    run = layout.plan.runs[0]
    results = tmp_path / layout.results
    keys = {
        "world": run.world,
        "pairs": tree.cell(run),
        "annotate": f"{tree.cell(run)}/{run.annotator}",
        "train": tree.run(run),
        "score": tree.cell(run),
    }
    for number, stage in enumerate(STAGE_BENCHMARKS, 1):
        path = tmp_path / layout.tree.benchmark(stage, keys[stage])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\n{number}.5\t0:00:0{number}\n")
    metrics = tmp_path / layout.tree.run_file("metrics.json", run)
    record = layout.run_record(run)
    assert results_dir_of(metrics, record) == results.resolve()
    seconds = stage_seconds(results, record)
    assert seconds == {stage: n + 0.5 for n, stage in enumerate(STAGE_BENCHMARKS, 1)}


def test_the_device_is_checked_before_jobs_only_where_they_run(monkeypatch):
    """The onstart hook checks the input data always, the device only when jobs run on this
    host (a cluster's nodes may have a GPU the submitting host lacks)."""
    from embrm import preflight

    checked = []
    monkeypatch.setattr(preflight, "check_data", lambda plan: checked.append("data"))
    monkeypatch.setattr(preflight, "check_device", lambda config: checked.append("device"))
    plan = Plan(TINY_CONFIG)
    preflight.check_before_jobs(plan, local=False)
    assert checked == ["data"]
    preflight.check_before_jobs(plan, local=True)
    assert checked == ["data", "data", "device"]
