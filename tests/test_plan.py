"""`gbg plan`: items and samples needed to detect a gap, and the independence check, from a stored pilot."""

from __future__ import annotations

import pytest
from test_store_scale import fill

from gbg_utils.cli import main
from gbg_utils.tasks import get_task


@pytest.fixture(scope="module")
def gsm():
    task = get_task("gsm8k")
    return task, task.load(limit=12)


def test_plan_prints_items_needed_and_the_independence_check(gsm, tmp_path, capsys):
    task, items = gsm
    fill(tmp_path / "s.sqlite", task, items, n=4)
    assert (
        main(["plan", "--benchmark", "gsm8k", "--protocol", "gbg", "--model", "policy", "--store", str(tmp_path / "s.sqlite")])
        == 0
    )
    out = capsys.readouterr().out
    assert "pilot of 12 items x 4 samples" in out and "items needed to detect a gap of delta points" in out
    assert "K=inf" in out and "independent sampling predicts" in out and "FLAGGED" not in out


def test_plan_flags_runs_that_share_a_shock(gsm, tmp_path, capsys):
    task, items = gsm
    # every item right in runs 0 and 2, wrong in runs 1 and 3: the runs move together, far beyond independent draws
    fill(tmp_path / "s.sqlite", task, items, n=4, text=lambda it, j: f"The answer is {it.data['gold'] if j % 2 == 0 else -1}.")
    assert (
        main(["plan", "--benchmark", "gsm8k", "--protocol", "gbg", "--model", "policy", "--store", str(tmp_path / "s.sqlite")])
        == 0
    )
    assert "FLAGGED: larger than independent draws allow" in capsys.readouterr().out


def test_plan_without_a_store_or_pilot_is_one_line(gsm, tmp_path, capsys):
    assert main(["plan", "--store", str(tmp_path / "none.sqlite")]) == 2
    assert capsys.readouterr().err.strip().startswith("gbg: error: no store at")
    task, items = gsm
    fill(tmp_path / "s.sqlite", task, items, n=2)
    assert main(["plan", "--benchmark", "gsm8k", "--store", str(tmp_path / "s.sqlite")]) == 2  # another model's pilot
    assert "no scored greedy + sampled pilot" in capsys.readouterr().err
