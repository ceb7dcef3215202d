"""scripts/speed/bench_stats.py: gbg, the paper's scripts re-implemented (a) and per-item NumPy (b) agree on a small input."""

from __future__ import annotations

import importlib.util
import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from gbg_utils import stats as st

_spec = importlib.util.spec_from_file_location(
    "bench_stats", Path(__file__).resolve().parents[1] / "scripts/speed/bench_stats.py"
)
bs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bs)

N_ITEMS, N, NS, N_BOOT = 40, 8, (2, 4, 8), 200


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    df = bs.make_table(N_ITEMS, N, seed=3)
    root = tmp_path_factory.mktemp("paper")
    model = bs.write_paper_files(df, str(root))
    paper = {}
    for tag, load in (("files", bs.FileLoader(str(root))), ("memory", bs.MemoryLoader(str(root)))):
        paper[tag] = {"gap": bs.paper_gap(load, model, N), "best_of_n": bs.paper_best_of_n(load, model, N, NS)}
    return df, bs.gbg_stats(df, N_BOOT), paper, bs.numpy_stats(df, N_BOOT)


def test_three_implementations_agree(results):
    df, gbg, paper, npy = results
    assert paper["files"] == paper["memory"]  # reading the files or the parsed records: the same numbers
    diffs = bs.compare(df, gbg, paper["files"], npy)
    assert len(diffs) == len(bs.GAP_FIELDS) + 2 * 4 + 4 + 3 + 2 + 2 + 2 + 2 * len(NS)
    assert max(diffs.values()) <= bs.TOL
    # the bootstrap CIs agree because (b) draws the same resamples, not because they are degenerate
    g = gbg["gap"].iloc[0]
    assert g.gap_ci_low < g.gap < g.gap_ci_high


def test_paper_first_n_is_not_the_all_subset_mean(results):
    """(a) picks from the first N samples, gbg averages over all N-subsets: they differ below N = n, as compare() allows."""
    df, gbg, paper, _ = results
    t = gbg["curves"].set_index(["selector", "k"])["value"]
    firsts = [paper["files"]["best_of_n"]["reward"][m][f"{bs.RM} Reward Max Sample"] for m in NS[:-1]]
    assert max(abs(a - t["reward", m]) for a, m in zip(firsts, NS[:-1])) > 1e-3


@pytest.mark.parametrize(
    "where, change",
    [
        ("gap.std: gbg vs (a) analyse", lambda g, p, n: p["gap"]["analyse"].update(Std=p["gap"]["analyse"]["Std"] * 1.01)),
        ("gap.gap_ci_high: gbg vs (b)", lambda g, p, n: n["gap"][0].update(gap_ci_high=n["gap"][0]["gap_ci_high"] + 1e-6)),
        ("majority.value: gbg vs (b)", lambda g, p, n: n["majority"][0]["value"].__setitem__(3, 0.0)),
        ("reward@N: gbg vs (a)", lambda g, p, n: p["best_of_n"]["reward"][N].update({f"{bs.RM} Reward Max Sample": 0.0})),
    ],
)
def test_compare_catches_a_disagreement(results, where, change):
    import copy

    df, gbg, paper, npy = results
    paper, npy = copy.deepcopy(paper["files"]), copy.deepcopy(npy)
    change(gbg, paper, npy)
    with pytest.raises(AssertionError, match=where.replace("(", r"\(").replace(")", r"\)")):
        bs.compare(df, gbg, paper, npy)


def _brute_maj(scores, answers, k):
    """maj@k by enumerating every k-subset; ties split evenly, a missing answer is its own."""
    keys = [("missing", i) if a is None else a for i, a in enumerate(answers)]
    vals = {a: np.mean([s for s, b in zip(scores, keys) if b == a]) for a in set(keys)}
    tot = 0.0
    for sub in itertools.combinations(range(len(scores)), k):
        cnt = Counter(keys[i] for i in sub)
        top = max(cnt.values())
        won = [a for a, c in cnt.items() if c == top]
        tot += sum(vals[a] for a in won) / len(won)
    return tot / len(list(itertools.combinations(range(len(scores)), k)))


def test_numpy_maj_item_matches_brute_force():
    scores = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    answers = np.array(["4", "4", "4", "5", "5", None, None, "6"], dtype=object)
    want = [_brute_maj(scores, answers, k) for k in range(1, len(scores) + 1)]
    np.testing.assert_allclose(bs.numpy_maj_item(scores, answers), want, atol=1e-12)
    np.testing.assert_allclose(st.maj_at_k(scores[None], answers[None])[0], want, atol=1e-12)


def test_write_paper_files_rejects_two_models(tmp_path):
    df = st.synthetic_table(models=("m1", "m2"), n_items=5, n_samples=2)
    with pytest.raises(ValueError, match="one model"):
        bs.write_paper_files(df, str(tmp_path))


def test_quick_run_prints_the_table(capsys):
    bs.main(["--quick"])
    out = capsys.readouterr().out
    assert "agreement (asserted" in out
    for row in ("gap table / run stats", "best-of-N curves", "maj@k curves", "total without maj@k", "includes:"):
        assert row in out
