"""The heads' training procedure as components (embrm.heads.recipe): the presets reproduce the
procedures they replace bit for bit, and each component changes only what it names."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_recipe_oracle as oracle

ORACLE = np.load(Path(__file__).parent / "data" / "recipe-oracle.npz")


@pytest.mark.parametrize("case", oracle.CASES, ids=[c[0] for c in oracle.CASES])
def test_presets_reproduce_the_recorded_procedures_bit_for_bit(case):
    """The oracle was recorded from the code before the procedure became components (same
    machine kind, one thread); predictions, curves, kept epochs and logged parameters agree."""
    name = case[0]
    got = oracle.run(*case)
    for key in ("predictions", "curves", "best_epoch", "raw"):
        if f"{name}/{key}" in ORACLE:
            expected = ORACLE[f"{name}/{key}"]
            assert got[key].shape == expected.shape, key
            # NaN curves (a study LightGBM logs no training loss) compare equal to NaN.
            np.testing.assert_array_equal(got[key], expected, err_msg=f"{name}: {key}")
    assert json.loads(str(got["params"])) == json.loads(str(ORACLE[f"{name}/params"]))
