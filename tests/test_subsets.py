"""`limit` draws a fair subset (tasks/subsets.py): stratified by the benchmark's groups, seeded, nested, in order."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gbg_utils.stats import gap_table
from gbg_utils.tasks import Item, get_task
from gbg_utils.tasks.subsets import allocate, draw

DATA = Path(os.environ.get("GBG_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="module")
def every():
    return {
        n: get_task(n).load(data_dir=DATA) for n in ("mmlu_redux", "mixeval", "gsm8k", "humaneval", "alpaca_eval", "arena_hard")
    }


def ids(items):
    return [it.id for it in items]


# --- the cases ----------------------------------------------------------------------------
def test_mmlu_redux_limit_50_covers_the_subjects():
    items = get_task("mmlu_redux").load(data_dir=DATA, limit=50)
    subjects = Counter(it.group for it in items)
    assert len(items) == 50 and len(subjects) >= 25
    assert len(subjects) == 30 and set(subjects.values()) == {1, 2}  # 30 subjects of 100 items: 1 or 2 each


@pytest.mark.parametrize("limit", [50, 200])
def test_mixeval_draws_both_formats_in_their_shares(limit):
    items = get_task("mixeval").load(data_dir=DATA, limit=limit)
    formats = Counter(it.data["format"] for it in items)
    assert set(formats) == {"free-form", "multiple-choice"}  # the first 2000 items are all free-form
    assert 0.4 <= formats["multiple-choice"] / limit <= 0.6  # 2000 of each in the benchmark
    assert {it.stratum for it in items} == {it.stratum for it in get_task("mixeval").load(data_dir=DATA)}  # all 18


def _frame(items, benchmark, n_runs=8, seed=0) -> pd.DataFrame:
    """Scores shaped like store.frame(): greedy + n_runs samples per item, each item with its own pass rate."""
    rng = np.random.default_rng(seed)
    rows = []
    for it, p in zip(items, rng.uniform(0.05, 0.95, len(items))):
        for greedy, n in ((True, 1), (False, n_runs)):
            for j in range(n):
                rows.append(
                    {
                        "model": "m",
                        "benchmark": benchmark,
                        "item_id": it.id,
                        "group": it.group,
                        "config_key": "g" if greedy else "t1",
                        "greedy": greedy,
                        "temperature": 0.0 if greedy else 1.0,
                        "top_p": 1.0,
                        "top_k": -1,
                        "repetition_penalty": 1.0,
                        "sample_idx": j,
                        "score": float(rng.random() < p),
                    }
                )
    return pd.DataFrame(rows)


def test_the_gap_table_of_mmlu_redux_limit_50_has_finite_cis_and_p_values(every):
    cols = ["gap_ci_low", "gap_ci_high", "greedy_ci_low", "mean_ci_high", "p_value", "gap_se_clustered"]
    row = gap_table(_frame(get_task("mmlu_redux").load(data_dir=DATA, limit=50), "mmlu_redux"), n_boot=200).iloc[0]
    assert np.isfinite(row[cols].astype(float)).all(), row[cols]
    # the first 50 items are one subject: one cluster, and every CI and p-value is NaN
    first = gap_table(_frame(every["mmlu_redux"][:50], "mmlu_redux"), n_boot=200).iloc[0]
    assert np.isnan(first[["gap_ci_low", "gap_ci_high", "p_value"]].astype(float)).all()


# --- the draw's properties ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mmlu_redux", "mixeval", "gsm8k", "alpaca_eval", "arena_hard"])
def test_seeded_nested_and_in_the_benchmarks_order(name, every):
    task, allitems = get_task(name), every[name]
    position = {it.id: i for i, it in enumerate(allitems)}
    for seed in (0, 3):
        prev = set()
        for limit in (1, 2, 5, 17, 18, 20, 31, 50, 200, len(allitems) - 1):
            got = ids(task.load(data_dir=DATA, limit=limit, subset_seed=seed))
            assert len(got) == len(set(got)) == limit
            assert got == sorted(got, key=position.get)  # the benchmark's order
            assert prev <= set(got), f"seed {seed}: limit {limit} drops items of a smaller limit"  # nested
            prev = set(got)
            assert got == ids(task.load(data_dir=DATA, limit=limit, subset_seed=seed))  # the same seed, the same items
    assert ids(task.load(data_dir=DATA, limit=50, subset_seed=0)) != ids(task.load(data_dir=DATA, limit=50, subset_seed=1))


def test_the_same_items_in_another_process_whatever_its_string_hashes():
    """sha256 keys, no hash(): another interpreter (another PYTHONHASHSEED) draws the same items."""
    code = (
        "import json; from gbg_utils.tasks import get_task; "
        "print(json.dumps({n: [i.id for i in get_task(n).load(limit=20, subset_seed=5)] for n in ('mmlu_redux', 'mixeval')}))"
    )
    here = {n: ids(get_task(n).load(data_dir=DATA, limit=20, subset_seed=5)) for n in ("mmlu_redux", "mixeval")}
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed, "GBG_DATA_DIR": str(DATA)}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr[-1500:]
        assert json.loads(out.stdout) == here


def test_pinned_draws():
    """The draw is part of what a pilot measured: a change to it must be deliberate (bump subsets.RULE)."""
    assert ids(get_task("gsm8k").load(data_dir=DATA, limit=5)) == ["91", "852", "955", "1184", "1187"]
    assert ids(get_task("mmlu_redux").load(data_dir=DATA, limit=5)) == [
        "college_computer_science/58",
        "conceptual_physics/15",
        "high_school_statistics/85",
        "high_school_us_history/5",
        "human_aging/75",
    ]


def test_limits_at_and_past_the_ends(every):
    task = get_task("humaneval")
    assert ids(task.load(data_dir=DATA)) == ids(every["humaneval"]) and len(every["humaneval"]) == 164
    assert ids(task.load(data_dir=DATA, limit=164)) == ids(task.load(data_dir=DATA, limit=1000)) == ids(every["humaneval"])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="limit must be"):
            task.load(data_dir=DATA, limit=bad)


def test_allocation_is_proportional_above_one_per_stratum():
    """Webster with a floor of one: fewer seats than strata -> at most one each; else one each, and the seats above
    the floor are divisor-proportional: (2a - 1) / size of a stratum above the floor <= (2b + 1) / size of any
    stratum not yet full. Every seat count is reached by adding one seat (so the draws nest)."""
    rng = np.random.default_rng(0)
    for t in range(80):
        sizes = {f"s{i}": int(rng.choice([1, 2, 3, 7, 40, 100, 400])) for i in range(int(rng.integers(1, 30)))}
        total, prev = sum(sizes.values()), None
        for n in sorted(set(rng.integers(1, total + 1, 12).tolist())):
            a = allocate(sizes, n, seed=t)
            assert sum(a.values()) == n and all(0 <= a[s] <= sizes[s] for s in sizes)
            if n < len(sizes):
                assert set(a.values()) <= {0, 1}
            else:
                assert min(a.values()) >= 1
                above = [(2 * a[s] - 1) / sizes[s] for s in sizes if a[s] >= 2]
                open_ = [(2 * a[s] + 1) / sizes[s] for s in sizes if a[s] < sizes[s]]
                if above and open_:
                    assert max(above) <= min(open_) + 1e-12, (sizes, n, a)
            if prev is not None:
                assert all(a[s] >= prev[s] for s in sizes)
            prev = a


def test_items_without_strata_are_a_plain_seeded_sample():
    items = [Item(str(i), {}) for i in range(100)]
    assert all(it.stratum is None for it in items)
    got = draw(items, 10, seed=0)
    assert len(got) == 10 and got != items[:10] and got == sorted(got, key=lambda it: int(it.id))
    assert Item("a", {}, group="g").stratum == "g" and Item("a", {}, group="g", stratum="f/g").stratum == "f/g"
