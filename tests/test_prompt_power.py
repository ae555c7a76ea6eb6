"""benchmarks/prompt_power.py: findings recomputed on the first P test prompts of each run."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location(
    "prompt_power", REPO / "benchmarks" / "prompt_power.py"
)
prompt_power = importlib.util.module_from_spec(spec)
spec.loader.exec_module(prompt_power)


@pytest.fixture
def tiny_results(tiny_workflow):
    from embrm.findings import read_per_prompt
    from embrm.summary import read_summary

    results = tiny_workflow / "results" / "default"
    summary = read_summary(results / "summary.parquet")
    per_prompt = read_per_prompt(sorted((results / "runs").rglob("metrics.json")))
    return results, summary, per_prompt


def test_all_prompts_reproduce_the_summary(tiny_results):
    _, summary, per_prompt = tiny_results
    prompts = next(iter(per_prompt.values()))["bon_gain"].size
    table, kept = prompt_power.first_prompts(summary, per_prompt, prompts)
    np.testing.assert_allclose(table["bon_gain"], summary["bon_gain"], rtol=1e-6)
    np.testing.assert_allclose(
        table["bon_gain_normalized"], summary["bon_gain_normalized"], rtol=1e-6
    )
    assert all(record["bon_gain"].size == prompts for record in kept.values())


def test_first_prompts_are_a_ratio_of_means_over_those_prompts(tiny_results):
    from embrm.findings import run_key

    _, summary, per_prompt = tiny_results
    table, kept = prompt_power.first_prompts(summary, per_prompt, 10)
    row = table.iloc[0]
    record = per_prompt[run_key(row)]
    assert kept[run_key(row)]["bon_gain"].size == 10
    expected = record["bon_gain"][:10].mean() / record["oracle_bon_gain"][:10].mean()
    assert row["bon_gain_normalized"] == pytest.approx(expected)
    # Fewer prompts change the value: the table is not the summary copied.
    assert not np.allclose(table["bon_gain"], summary["bon_gain"])


def test_prints_each_part_at_each_prompt_count(tiny_results, capsys):
    results, _, _ = tiny_results
    assert prompt_power.main([str(results), "--prompts", "20", "40"]) == 0
    out = capsys.readouterr().out
    assert "median over parts:" in out
    # One block per tested part, each with a line for 20 and for 40 prompts.
    blocks = [b for b in out.split("\n\n") if b.startswith("tiny ")]
    assert blocks
    for block in blocks:
        counts = [line.split()[0] for line in block.splitlines()[2:]]
        assert counts == ["20", "40"], block


def test_more_prompts_than_the_runs_have_is_refused(tiny_results):
    results, _, _ = tiny_results
    with pytest.raises(SystemExit, match="40 test prompts"):
        prompt_power.main([str(results), "--prompts", "500"])


def test_a_folder_without_results_is_named(tmp_path):
    with pytest.raises(SystemExit, match=r"summary.parquet: not found \(expected a finished"):
        prompt_power.main([str(tmp_path), "--prompts", "10"])
