"""benchmarks/compare_results.py: two results folders equal once timing is set aside."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location(
    "compare_results", REPO / "benchmarks" / "compare_results.py"
)
compare_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_results)


def write_results(root, *, prediction=0.5, seconds=1.0, log="a"):
    run = root / "runs" / "w" / "seed0"
    run.mkdir(parents=True)
    np.save(run / "predictions.npy", np.array([0.1, prediction, np.nan]))
    np.savez(root / "runs" / "pairs.npz", a=np.arange(3), design=np.array(["same", "cross"]))
    (run / "metrics.json").write_text(
        json.dumps({"metrics": {"spearman": 0.7, "train_seconds": seconds}})
    )
    pd.DataFrame({"head": ["x"], "bon_gain": [prediction], "fit_seconds": [seconds]}).to_csv(
        root / "summary.csv", index=False
    )
    (root / "logs").mkdir()
    (root / "logs" / "train.log").write_text(log)


@pytest.mark.parametrize("changed", ["nothing", "timing", "prediction"])
def test_only_timing_may_differ(tmp_path, capsys, changed):
    write_results(tmp_path / "left")
    write_results(
        tmp_path / "right",
        prediction=0.6 if changed == "prediction" else 0.5,
        seconds=9.0 if changed == "timing" else 1.0,
        log="another invocation",
    )
    code = compare_results.main([str(tmp_path / "left"), str(tmp_path / "right")])
    out = capsys.readouterr().out
    if changed == "prediction":
        assert code == 1
        assert "differs: runs/w/seed0/predictions.npy" in out
        assert "differs: summary.csv" in out
        assert "differs: runs/w/seed0/metrics.json" not in out  # its timing field aside, equal
    else:
        assert code == 0, out
        assert "identical, timing aside" in out


def test_a_file_on_one_side_only_is_a_difference(tmp_path, capsys):
    write_results(tmp_path / "left")
    write_results(tmp_path / "right")
    (tmp_path / "right" / "extra.csv").write_text("a\n1\n")
    assert compare_results.main([str(tmp_path / "left"), str(tmp_path / "right")]) == 1
    assert "only in" in capsys.readouterr().out


def test_ignore_leaves_out_a_key_and_a_column_added_on_purpose(tmp_path, capsys):
    write_results(tmp_path / "left")
    write_results(tmp_path / "right")
    metrics = tmp_path / "right" / "runs" / "w" / "seed0" / "metrics.json"
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "per_prompt": [0.1, 0.2]}))
    table = tmp_path / "right" / "summary.csv"
    pd.read_csv(table).assign(per_prompt=1.0).to_csv(table, index=False)
    folders = [str(tmp_path / "left"), str(tmp_path / "right")]
    assert compare_results.main(folders) == 1
    out = capsys.readouterr().out
    assert "differs: runs/w/seed0/metrics.json" in out and "differs: summary.csv" in out
    assert compare_results.main([*folders, "--ignore", "per_prompt"]) == 0
    assert "identical, timing aside" in capsys.readouterr().out
    # Only the named key is left out: another change still counts.
    metrics.write_text(json.dumps({"metrics": {"spearman": 0.8}, "per_prompt": [0.1]}))
    assert compare_results.main([*folders, "--ignore", "per_prompt"]) == 1


def test_a_json_record_inside_an_npz_is_compared_as_a_record(tmp_path, capsys):
    """Active rounds save a JSON record beside their arrays; its timing may differ, not more."""

    def round_file(root, seconds, picked):
        record = json.dumps({"picked": picked, "fit_seconds": seconds}, sort_keys=True)
        np.savez(root / "round1.npz", pairs=np.arange(4), record=np.array(record))

    for side, seconds, picked in (("left", 1.0, 3), ("right", 7.5, 3), ("other", 1.0, 4)):
        (tmp_path / side).mkdir()
        round_file(tmp_path / side, seconds, picked)
    left, right, other = (str(tmp_path / s) for s in ("left", "right", "other"))
    assert compare_results.main([left, right]) == 0
    assert "identical, timing aside" in capsys.readouterr().out
    assert compare_results.main([left, other]) == 1
    assert "differs: round1.npz" in capsys.readouterr().out
