"""gbg_utils.stats against brute force, closed forms and scipy."""

from itertools import combinations, product
from math import comb

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from gbg_utils import stats as st


# ----------------------------------------------------------------------------- brute force references
def _keys(answers):
    return [a if isinstance(a, str) else ("missing", i) for i, a in enumerate(answers)]


def bf_best(scores, sel, k):
    """Average over all k-subsets of the score picked by max selector, ties broken uniformly."""
    vals = []
    for sub in combinations(range(len(scores)), k):
        top = max(sel[i] for i in sub)
        vals.append(np.mean([scores[i] for i in sub if sel[i] == top]))
    return np.mean(vals)


def bf_maj(scores, answers, k):
    keys = _keys(answers)
    value = {a: np.mean([s for s, b in zip(scores, keys) if b == a]) for a in set(keys)}
    vals = []
    for sub in combinations(range(len(scores)), k):
        cnt = {}
        for i in sub:
            cnt[keys[i]] = cnt.get(keys[i], 0) + 1
        top = max(cnt.values())
        vals.append(np.mean([value[a] for a, c in cnt.items() if c == top]))
    return np.mean(vals)


def bf_pass(scores, k):
    return np.mean([max(scores[i] >= 1 for i in sub) for sub in combinations(range(len(scores)), k)])


def _random_item(rng, n, alphabet=3, partial=False):
    answers = [None if rng.random() < 0.15 else str(rng.integers(alphabet)) for _ in range(n)]
    if partial:
        scores = rng.choice([0, 0.5, 1.0], n)
    else:  # scoring per answer, as for exact-match benchmarks
        right = str(rng.integers(alphabet))
        scores = np.array([float(a == right) for a in answers])
    reward = rng.integers(0, 3, n).astype(float)  # few levels: many ties
    return scores, answers, reward


# ----------------------------------------------------------------------------- estimators
@pytest.mark.parametrize("n", [1, 4, 6, 7])
@pytest.mark.parametrize("partial", [False, True])
def test_estimators_equal_exhaustive_subset_average(n, partial):
    rng = np.random.default_rng(n + 10 * partial)
    for _ in range(12):
        s, a, r = _random_item(rng, n, alphabet=int(rng.integers(1, 4)), partial=partial)
        ks = list(range(1, n + 1))
        np.testing.assert_allclose(st.best_of_k([s], [r], ks)[0], [bf_best(s, r, k) for k in ks], atol=1e-12)
        np.testing.assert_allclose(st.best_of_k([s], [s], ks)[0], [bf_best(s, s, k) for k in ks], atol=1e-12)
        np.testing.assert_allclose(st.best_of_k([s], None, ks)[0], [bf_best(s, np.zeros(n), k) for k in ks], atol=1e-12)
        np.testing.assert_allclose(st.maj_at_k([s], [a], ks)[0], [bf_maj(s, a, k) for k in ks], atol=1e-12)
        np.testing.assert_allclose(st.pass_at_k([s], ks)[0], [bf_pass(s, k) for k in ks], atol=1e-12)


def test_maj_at_k_many_items_every_regime():
    """Items batched together (rows differ in shape), counts reaching every branch: single answer, two
    leaders, three or more answers at counts >= 2, all distinct, ties at the top."""
    rng = np.random.default_rng(3)
    n = 10
    A = [[str(x) for x in rng.integers(0, rng.integers(1, 5), n)] for _ in range(25)]
    A += [
        ["a"] * n,
        list("abcdefghij"),
        list("aaaabbbbcc"),
        list("aaabbbcccd"),
        list("aabbccddee"),
        [None] * n,
        ["a"] * 5 + [None] * 5,
        ["a"] * 4 + [np.nan] * 6,
    ]  # NaN: missing, like pandas gives
    S = np.array([[float(x == "1" or x == "a") for x in row] for row in A])
    S[0] = rng.random(n)  # an answer's value is the mean score of its samples
    got = st.maj_at_k(S, A)
    want = np.array([[bf_maj(S[i], A[i], k) for k in range(1, n + 1)] for i in range(len(A))])
    np.testing.assert_allclose(got, want, atol=1e-12)
    np.testing.assert_allclose(st.maj_at_k(S, A, ks=[3, 7]), want[:, [2, 6]], atol=1e-12)


def test_pass_at_k_matches_chen_formula_at_scale():
    rng = np.random.default_rng(0)
    S = (rng.random((50, 128)) < rng.random((50, 1))).astype(float)
    got = st.pass_at_k(S)
    c = S.sum(1).astype(int)
    want = np.array([[1 - comb(128 - ci, k) / comb(128, k) for k in range(1, 129)] for ci in c])
    np.testing.assert_allclose(got, want, atol=1e-12)
    np.testing.assert_allclose(st.best_of_k(S, S), got, atol=1e-12)  # oracle@k = pass@k for 0/1


def test_large_n_invariants():
    df = st.synthetic_table(n_items=60, n_samples=128, seed=1)
    S = st.score_matrix(df[~df.greedy]).to_numpy(float)
    A = st.score_matrix(df[~df.greedy], "extracted").to_numpy()
    R = st.score_matrix(df[~df.greedy], "reward").to_numpy(float)
    W = st.rank_weights(128)
    np.testing.assert_allclose(W.sum(0), 1, atol=1e-12)
    np.testing.assert_allclose(st.best_of_k(S, None), np.repeat(S.mean(1, keepdims=True), 128, 1), atol=1e-12)
    maj = st.maj_at_k(S, A)
    np.testing.assert_allclose(maj[:, 0], S.mean(1), atol=1e-12)  # maj@1 is one random sample
    for i in range(len(S)):  # maj@n: the full-sample vote, ties split
        vals, cnt = np.unique(np.where(pd.isna(A[i]), [f"m{j}" for j in range(128)], A[i]), return_counts=True)
        top = vals[cnt == cnt.max()]
        assert maj[i, -1] == pytest.approx(np.mean([S[i][A[i] == t].mean() for t in top]), abs=1e-10)
    bok = st.best_of_k(S, R)
    assert np.all((bok >= -1e-12) & (bok <= 1 + 1e-12))
    np.testing.assert_allclose(bok[:, -1], S[np.arange(len(S)), R.argmax(1)], atol=1e-12)


def test_k_out_of_range():
    with pytest.raises(ValueError):
        st.pass_at_k([[1, 0]], ks=[3])


# ----------------------------------------------------------------------------- tables
@pytest.fixture(scope="module")
def table():
    return st.synthetic_table(
        models=("a", "b", "c"), benchmarks=("gsm8k", "mmlu"), n_items=40, n_samples=8, temperatures=(0.3, 1.0), seed=2
    )


def test_gap_table_runs_match_numpy(table):
    gap = st.gap_table(table, n_boot=200)
    assert len(gap) == 3 * 2 * 2
    row = gap[(gap.model == "b") & (gap.benchmark == "mmlu") & (gap.temperature == 1.0)].iloc[0]
    sub = table[(table.model == "b") & (table.benchmark == "mmlu")]
    M = st.score_matrix(sub[sub.temperature == 1.0]).to_numpy(float)
    g = st.score_matrix(sub[sub.greedy])[0].to_numpy(float)
    runs = M.mean(0)
    assert row.n_runs == 8 and row.n_items == 40
    assert row["std"] == pytest.approx(np.std(runs, ddof=1))
    assert (row.best, row.worst, row["mean"]) == pytest.approx((runs.max(), runs.min(), runs.mean()))
    assert row.greedy == pytest.approx(g.mean())
    assert row.gap == pytest.approx(g.mean() - M.mean())
    assert row.gap_ci_low <= row.gap <= row.gap_ci_high
    assert row.mean_se == pytest.approx(np.std(M.mean(1), ddof=1) / np.sqrt(40))
    assert row.mean_se < row.single_run_se  # averaging N samples per item shrinks the SE
    assert row.n_clusters == 5 and np.isfinite(row.mean_se_clustered)
    # grouped items: a t on the clustered SE with n_clusters - 1 df; without groups: scipy's paired t
    t = row.gap / row.gap_se_clustered
    assert row.p_value == pytest.approx(2 * sps.t.sf(abs(t), 4)) and row.p_method.startswith("clustered")
    assert row.ci_method == "cluster bootstrap" and row.n_unscored == 0
    flat = st.gap_table(table.drop(columns="group"), n_boot=200)
    frow = flat[(flat.model == "b") & (flat.benchmark == "mmlu") & (flat.temperature == 1.0)].iloc[0]
    assert frow.p_value == pytest.approx(sps.ttest_rel(g, M.mean(1)).pvalue) and frow.p_method == "paired t"
    assert frow.ci_method == "item bootstrap" and np.isnan(frow.n_clusters)
    assert frow.gap_se == pytest.approx(row.gap_se)


def test_run_std_ddof_is_a_choice(table):
    sub = table[(table.model == "a") & (table.benchmark == "gsm8k") & (table.temperature.isin([0, 0.3]))]
    runs = st.score_matrix(sub[~sub.greedy]).to_numpy(float).mean(0)
    assert st.gap_table(sub, n_boot=0)["std"].iloc[0] == pytest.approx(np.std(runs, ddof=1))
    assert st.gap_table(sub, n_boot=0, ddof=0)["std"].iloc[0] == pytest.approx(np.std(runs))  # the paper's
    ct = st.config_table(sub, n_boot=0, ddof=0)
    assert ct.loc[ct.decoding == "sampled", "std"].iloc[0] == pytest.approx(np.std(runs))
    assert ct.loc[ct.decoding == "greedy", "std"].isna().all()  # one run has no spread


def test_paired_test_undefined_is_nan():
    for a, b in [([1.0], [0.0]), ([0.7], [0.7]), ([], []), ([1.0, 1.0], [1.0, 1.0])]:
        r = st.paired_test(a, b)
        assert np.isnan(r["p_value"]) and np.isnan(r["stat"]), (a, b)
    r = st.paired_test([1.0, 1.0], [0.0, 0.0])  # equal nonzero differences: as scipy, t = inf, p = 0
    assert (r["stat"], r["p_value"]) == (np.inf, 0.0)
    assert np.isnan(st.paired_test([], [], "permutation")["p_value"])
    assert st.paired_test([1.0], [0.0], "permutation")["p_value"] == 1.0  # both signs as extreme
    one = _toy(
        [dict(model="m", item_id="i", greedy=True, config_key="g", temperature=0.0, sample_idx=0, score=1.0)]
        + [dict(model="m", item_id="i", greedy=False, sample_idx=j, score=0.0) for j in range(3)]
    )
    row = st.gap_table(one, n_boot=0).iloc[0]
    assert row.gap == 1.0 and np.isnan(row.p_value)


def _clustered_sim(n_reps=200, n_groups=10, per_group=10, n_samples=2, seed=0):
    """n_reps replications (as models) of a benchmark whose items share a group effect; true gap 0."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    items = np.array([f"i{i:03d}" for i in range(n)])
    groups = np.repeat([f"g{k}" for k in range(n_groups)], per_group)
    frames = []
    for r in range(n_reps):
        u = np.repeat(rng.normal(0, 0.5, n_groups), per_group)  # shared by a group's items (ICC 0.2)
        base = dict(model=f"r{r:03d}", benchmark="b", top_p=1.0, top_k=-1, repetition_penalty=1.0)
        frames.append(
            pd.DataFrame(
                {
                    **base,
                    "item_id": items,
                    "group": groups,
                    "config_key": "greedy",
                    "greedy": True,
                    "temperature": 0.0,
                    "sample_idx": 0,
                    "score": u + rng.normal(0, 1, n),
                }
            )
        )
        frames.append(
            pd.DataFrame(
                {
                    **base,
                    "item_id": np.repeat(items, n_samples),
                    "group": np.repeat(groups, n_samples),
                    "config_key": "T1",
                    "greedy": False,
                    "temperature": 1.0,
                    "sample_idx": np.tile(np.arange(n_samples), n),
                    "score": rng.normal(0, 0.3, n * n_samples),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_gap_ci_and_p_value_are_clustered_with_groups():
    """A shared group effect: CIs that resample items cover the true gap (0) far less than 95%, and the
    paired t rejects far more than 5%; resampling whole groups and a clustered t hold their levels."""
    df = _clustered_sim()
    gap = st.gap_table(df, n_boot=1000)
    cover = ((gap.gap_ci_low <= 0) & (0 <= gap.gap_ci_high)).mean()
    assert cover >= 0.88, cover
    assert (gap.p_value < 0.05).mean() <= 0.1
    assert (gap.ci_method == "cluster bootstrap").all() and (gap.n_clusters == 10).all()
    t = gap.gap / gap.gap_se_clustered
    np.testing.assert_allclose(gap.p_value, 2 * sps.t.sf(np.abs(t), 9))
    naive = st.gap_table(df.drop(columns="group"), n_boot=1000)  # what the headline ignored before
    assert (naive.ci_method == "item bootstrap").all()
    assert ((naive.gap_ci_low <= 0) & (0 <= naive.gap_ci_high)).mean() < 0.85
    assert (naive.p_value < 0.05).mean() > 0.15


def test_n_clusters_counts_each_ungrouped_item_alone(table):
    sub = table[(table.model == "a") & (table.benchmark == "gsm8k")].copy()
    loose = sub.item_id.isin([f"gsm8k-{i:05d}" for i in range(10)])  # 10 items, every group keeps others
    sub["group"] = sub["group"].astype(object).where(~loose, None)
    gap = st.gap_table(sub, n_boot=0)
    assert (gap.n_clusters == 5 + 10).all()
    sub.loc[loose, "group"] = np.nan
    assert (st.gap_table(sub, n_boot=0).n_clusters == 15).all()
    assert st.n_clusters(["a", "a", None, np.nan, "b"]) == 4
    one = st.gap_table(sub.assign(group="all"), n_boot=100)  # one cluster: no clustered test, no CI
    assert (one.n_clusters == 1).all() and one.p_value.isna().all() and one.gap_ci_low.isna().all()


def test_paired_test_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.random(30), rng.random(30) + 0.1
    r = st.paired_test(a, b)
    t = sps.ttest_rel(a, b)
    assert (r["stat"], r["p_value"]) == pytest.approx((t.statistic, t.pvalue))
    # exact sign-flip enumeration for small n
    a, b = rng.random(8), rng.random(8)
    d = a - b
    flips = [abs(np.mean(np.array(s) * d)) >= abs(d.mean()) - 1e-12 for s in product([-1, 1], repeat=8)]
    assert st.paired_test(a, b, "permutation")["p_value"] == pytest.approx(np.mean(flips))
    p = st.paired_test(rng.random(200), rng.random(200) + 0.2, "permutation", n_perm=2000)["p_value"]
    assert p == pytest.approx(1 / 2001)


def test_mcnemar_matches_binomtest():
    rng = np.random.default_rng(2)
    a, b = rng.random(100) < 0.7, rng.random(100) < 0.5
    r = st.mcnemar(a, b)
    b10, b01 = int(np.sum(a & ~b)), int(np.sum(~a & b))
    assert (r["b10"], r["b01"]) == (b10, b01)
    assert r["p_value"] == pytest.approx(sps.binomtest(b10, b10 + b01, 0.5).pvalue)
    assert st.mcnemar(a, a)["p_value"] == 1.0
    assert 0 < st.mcnemar(a, b, exact=False)["p_value"] < 1


def test_clustered_se():
    rng = np.random.default_rng(4)
    x = rng.random(50)
    assert st.clustered_se(x, np.arange(50)) == pytest.approx(np.std(x, ddof=1) / np.sqrt(50))
    assert st.clustered_se(x) == pytest.approx(np.std(x, ddof=1) / np.sqrt(50))
    g = rng.integers(0, 6, 50)
    e = x - x.mean()
    cross = sum(e[i] * e[j] for i in range(50) for j in range(50) if i != j and g[i] == g[j])
    assert st.clustered_se(x, g) == pytest.approx(np.sqrt(np.var(x, ddof=1) / 50 + cross / 50**2))


def test_bootstrap_ci_coverage():
    rng = np.random.default_rng(5)
    hits = 0
    for rep in range(200):
        lo, hi = st.bootstrap_ci(rng.random(200) < 0.3, n_boot=400, seed=rep)
        hits += lo <= 0.3 <= hi
    assert 0.9 <= hits / 200 <= 0.99
    lo, hi = st.bootstrap_ci(np.c_[np.zeros(10), np.ones(10)])
    assert list(lo) == [0, 1] and list(hi) == [0, 1]
    lo, hi = st.bootstrap_ci(rng.random(60), groups=np.repeat(np.arange(6), 10))
    assert lo < hi


def test_kendall_tau_matches_scipy():
    rng = np.random.default_rng(6)
    x, Y = rng.integers(0, 4, 7).astype(float), rng.integers(0, 4, (5, 7)).astype(float)
    want = [sps.kendalltau(x, y).statistic for y in Y]
    np.testing.assert_allclose(st.rankings._tau_b(x, Y), want)


def _toy(rows):
    base = dict(
        benchmark="b",
        group=None,
        config_key="c",
        temperature=1.0,
        top_p=1.0,
        top_k=-1,
        repetition_penalty=1.0,
        extracted=None,
        n_tokens=10,
    )
    return pd.DataFrame([{**base, **r} for r in rows])


def test_rank_flips_counts_reorderings():
    rows = []
    scores = {"A": (0.9, [1.0, 0.0, 1.0]), "B": (0.5, [0.0, 1.0, 0.0])}  # run 1 flips the order
    for m, (g, runs) in scores.items():
        rows.append(dict(model=m, item_id="i", greedy=True, config_key="g", temperature=0.0, sample_idx=0, score=g))
        rows += [dict(model=m, item_id="i", greedy=False, sample_idx=j, score=s) for j, s in enumerate(runs)]
    fl = st.rank_flips(_toy(rows)).iloc[0]
    assert fl.n_models == 2 and fl.n_runs == 3 and fl.greedy_order == "A > B"
    assert fl.frac_runs_reordered == pytest.approx(1 / 3) and fl.pair_flip_rate == pytest.approx(1 / 3)
    assert fl.tau_mean == pytest.approx(1 / 3) and fl.tau_min == -1
    rt = st.rank_table(_toy(rows))
    assert set(rt.source) == {"greedy", "mean", "run"} and len(rt) == 2 * 5


def test_a_tie_is_not_a_rank_flip():
    """Greedy ties A and B at the top: a run that orders them either way flips nothing and keeps the top."""
    greedy = {"A": 0.5, "B": 0.5, "C": 0.2}
    runs = [
        {"A": 0.6, "B": 0.4, "C": 0.1},  # breaks the tie: no flip, top A is one of greedy's
        {"A": 0.4, "B": 0.6, "C": 0.1},  # breaks it the other way: the same
        {"A": 0.3, "B": 0.3, "C": 0.9},  # C overtakes both: two flips, a new top
        {"A": 0.5, "B": 0.4, "C": 0.5},
    ]  # A = C is a tie (no flip), B < C is one; A still on top
    rows = []
    for m, g in greedy.items():
        rows.append(dict(model=m, item_id="i", greedy=True, config_key="g", temperature=0.0, sample_idx=0, score=g))
        rows += [dict(model=m, item_id="i", greedy=False, sample_idx=j, score=r[m]) for j, r in enumerate(runs)]
    fl = st.rank_flips(_toy(rows)).iloc[0]
    assert fl.frac_runs_reordered == pytest.approx(2 / 4)
    assert fl.frac_top_changed == pytest.approx(1 / 4)
    assert fl.pair_flip_rate == pytest.approx(3 / (2 * 4))  # 3 flips of the 2 strictly ordered pairs x 4 runs
    assert fl.greedy_order == "A = B > C"
    rt = st.rank_table(_toy(rows))
    assert rt[rt.source == "greedy"].set_index("model")["rank"].to_dict() == {"A": 1, "B": 1, "C": 3}
    assert rt[(rt.source == "run") & (rt.run == 3)].set_index("model")["rank"].to_dict() == {"A": 1, "B": 3, "C": 1}


def test_answer_stats_missing_answers_are_distinct():
    """One rule for answer spread everywhere (per_item, the temperature widget): each missing answer is its own."""
    assert st.answer_stats(["7", "7", "8", "9"]) == (3, pytest.approx(1.5), 0.5)
    n, h, a = st.answer_stats(["7", None, None, "7"])
    assert (n, a) == (3, 0.5) and h == pytest.approx(1.5)
    assert st.answer_stats(["7", "7"]) == (1, 0.0, 1.0)


def test_per_item_entropy_agreement():
    rows = [dict(model="m", item_id="i", greedy=True, config_key="g", temperature=0.0, sample_idx=0, score=1.0, extracted="4")]
    for j, (a, s) in enumerate([("4", 1), ("4", 1), ("5", 0), (None, 0)]):
        rows.append(dict(model="m", item_id="i", greedy=False, sample_idx=j, score=float(s), extracted=a))
    r = st.per_item(_toy(rows)).iloc[0]
    assert (r.p, r.n_correct, r.greedy, bool(r.greedy_correct)) == (0.5, 2, 1.0, True)
    assert r.n_answers == 3 and r.entropy == pytest.approx(1.5) and r.agreement == 0.5
    assert r.greedy_agreement == 0.5


def test_ragged_duplicates_and_greedy_conflicts(table):
    ragged = table.drop(
        table[(table.model == "a") & (table.sample_idx == 7) & (table.item_id == "gsm8k-00003") & ~table.greedy].index[:1]
    )
    with pytest.warns(UserWarning, match="keeping the first 7"):
        gap = st.gap_table(ragged, n_boot=0)
    assert set(gap.loc[gap.model == "a", "n_runs"]) == {7, 8}
    with pytest.raises(ValueError, match="ragged"):
        st.gap_table(ragged, ragged="raise")
    with pytest.raises(ValueError, match="duplicate"):
        st.gap_table(table, by=("benchmark",))  # models collide in one cell
    two_greedy = pd.concat([table, table[table.greedy].assign(config_key="g2", repetition_penalty=1.2)])
    with pytest.raises(ValueError, match="repetition_penalty"):
        st.gap_table(two_greedy)
    gap = st.gap_table(two_greedy, by=("model", "benchmark", "repetition_penalty"), n_boot=0)
    assert len(gap) == 12 and gap.greedy.notna().all()
    no_greedy = st.gap_table(table[~table.greedy], n_boot=50)
    assert no_greedy.greedy.isna().all() and no_greedy.p_value.isna().all() and no_greedy["mean"].notna().all()


def test_sweep_length_runs_curves(table):
    sw = st.sweep_table(table, "temperature", n_boot=0)
    one = sw[(sw.model == "a") & (sw.benchmark == "gsm8k")]
    assert list(one.decoding) == ["greedy", "sampled", "sampled"] and list(one.temperature) == [0, 0.3, 1.0]
    ln = st.length_table(table)
    sub = table[(table.model == "b") & (table.benchmark == "mmlu")]
    greedy_tokens = sub.loc[sub.greedy, "n_tokens"].mean()
    for t in (0.3, 1.0):  # each sampled cell's mean length over its own greedy twin's, computed here from the rows
        want = sub[~sub.greedy & (sub.temperature == t)].groupby("item_id")["n_tokens"].mean().mean() / greedy_tokens
        row = ln[(ln.model == "b") & (ln.benchmark == "mmlu") & (ln.temperature == t)].iloc[0]
        assert row.ratio_to_greedy == pytest.approx(want) and abs(want - 1) > 0.02  # a ratio that could be wrong
    greedy_row = ln[(ln.model == "b") & (ln.benchmark == "mmlu") & (ln.decoding == "greedy")].iloc[0]
    assert greedy_row.mean_tokens == pytest.approx(greedy_tokens)
    rs = st.run_scores(table)
    assert len(rs) == 12 * 8
    cv = st.best_of_k_curves(table, selectors=["reward"], methods=("oracle", "pass", "random", "majority"), n_boot=100)
    assert set(cv.selector) == {"oracle", "pass", "random", "majority", "reward"} and cv.k.max() == 8
    one = cv[(cv.model == "a") & (cv.benchmark == "gsm8k") & (cv.temperature == 0.3)]
    np.testing.assert_allclose(one[one.selector == "oracle"].value, one[one.selector == "pass"].value)
    assert np.allclose(one[one.selector == "random"].value, one[one.selector == "random"].value.iloc[0])
    assert (one.ci_low <= one.value + 1e-12).all() and (one.value <= one.ci_high + 1e-12).all()


def test_unscored_samples_are_left_out_and_counted(table):
    """A NaN score (a failed or unparseable judgment) is an unscored sample: the cell is not NaN, it is the
    mean over the scored samples, and the count is reported."""
    sub = table[(table.model == "a") & (table.benchmark == "gsm8k") & table.temperature.isin([0, 0.3])].copy()
    sampled = sub[~sub.greedy]
    sub.loc[sampled[(sampled.item_id == "gsm8k-00004") & (sampled.sample_idx == 2)].index, "score"] = np.nan
    M = st.score_matrix(sub[~sub.greedy]).to_numpy(float)
    g = st.score_matrix(sub[sub.greedy])[0].to_numpy(float)
    row = st.gap_table(sub, n_boot=100).iloc[0]
    assert row["mean"] == pytest.approx(np.nanmean(M, 1).mean())
    assert row.n_unscored == 1 and row.greedy_n_unscored == 0 and row.n_items == 40
    assert row.gap == pytest.approx(g.mean() - np.nanmean(M, 1).mean())
    assert row["std"] == pytest.approx(np.std(np.nanmean(M, 0), ddof=1))
    assert row.best == pytest.approx(np.nanmean(M, 0).max())
    assert all(np.isfinite(row[c]) for c in ("gap_ci_low", "gap_ci_high", "p_value", "single_run_se", "gap_se_clustered"))
    rs = st.run_scores(sub)
    assert rs.score.iloc[2] == pytest.approx(np.nanmean(M[:, 2])) and list(rs.n_unscored) == [0, 0, 1] + [0] * 5
    # an unscored greedy leaves its item out of the pairing
    sub.loc[sub[sub.greedy & (sub.item_id == "gsm8k-00007")].index, "score"] = np.nan
    row = st.gap_table(sub, n_boot=100).iloc[0]
    keep = np.arange(40) != 7
    assert row.n_items == 39 and row.greedy_n_unscored == 1
    assert row.gap == pytest.approx(g[keep].mean() - np.nanmean(M[keep], 1).mean())
    ct = st.config_table(sub, n_boot=50)
    ct = ct.set_index("decoding")
    assert ct["mean"].notna().all() and ct.n_unscored.to_dict() == {"greedy": 1, "sampled": 1}
    assert ct.n_items.to_dict() == {"greedy": 39, "sampled": 40}
    # every sample of an item unscored: the item is dropped, not a NaN mean
    sub.loc[sub[~sub.greedy & (sub.item_id == "gsm8k-00009")].index, "score"] = np.nan
    row = st.gap_table(sub, n_boot=0).iloc[0]
    assert row.n_items == 38 and np.isfinite(row.gap) and row.n_unscored == 1 + 8
