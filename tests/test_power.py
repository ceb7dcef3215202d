"""gbg_utils.stats.power: Miller's sample-size formula, variance components, and the run-independence check."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from gbg_utils import stats as st


# ----------------------------------------------------------------------------- synthetic stores
def _frame(greedy: np.ndarray | None, S: np.ndarray, model="m1", benchmark="gsm8k") -> pd.DataFrame:
    """Tidy scored table of one (model, benchmark): greedy scores (n,) and sampled scores (n, N)."""
    n, N = S.shape
    items = np.array([f"q{i:05d}" for i in range(n)])
    parts = [
        pd.DataFrame(
            {
                "item_id": np.repeat(items, N),
                "greedy": False,
                "config_key": "T1",
                "sample_idx": np.tile(np.arange(N), n),
                "score": S.ravel(),
            }
        )
    ]
    if greedy is not None:
        parts.append(pd.DataFrame({"item_id": items, "greedy": True, "config_key": "greedy", "sample_idx": 0, "score": greedy}))
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "benchmark", benchmark)
    out.insert(0, "model", model)
    return out


def _bernoulli_runs(rng, n_items, n_runs, shock_sd=0.0):
    """0/1 scores with U-shaped per-item pass rates; run j adds the same shift u_j to every item's probability."""
    p = rng.beta(0.7, 0.7, n_items)
    u = rng.normal(0, shock_sd, n_runs) if shock_sd else np.zeros(n_runs)
    return (rng.random((n_items, n_runs)) < np.clip(p[:, None] + u[None, :], 0, 1)).astype(float)


# ----------------------------------------------------------------------------- the formula
def test_miller_worked_case_969_items():
    """delta = 3 points, alpha 0.05, power 0.8, omega^2 = 1/9, K -> infinity: ~969 items (Miller 2024)."""
    for k in (None, math.inf):
        n = st.items_needed(0.03, omega2=1 / 9, sigma2=0.25, k=k, alpha=0.05, power=0.8)
        assert n == pytest.approx(969, abs=0.5)
        assert math.ceil(n) == 969
    assert st.items_needed(3, 1 / 9, 0.25, None, points=True) == pytest.approx(st.items_needed(0.03, 1 / 9, 0.25, None))
    # finite K adds sigma^2 / K to the per-item variance
    z2 = (sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) ** 2
    assert st.items_needed(0.05, 0.1, 0.2, 4) == pytest.approx(z2 * (0.1 + 0.2 / 4) / 0.05**2)
    assert st.items_needed(0.05, 0.1, 0.2, 4) > st.items_needed(0.05, 0.1, 0.2, 16) > st.items_needed(0.05, 0.1, 0.2, None)


@pytest.mark.parametrize("k", [1, 3, 16, None])
@pytest.mark.parametrize("alpha,power", [(0.05, 0.8), (0.01, 0.9), (0.1, 0.5)])
def test_min_detectable_gap_inverts_items_needed(k, alpha, power):
    for n, o2, s2 in [(164, 0.05, 0.2), (1319, 1 / 9, 0.1), (3000, 0.01, 0.25)]:
        gap = st.min_detectable_gap(n, o2, s2, k, alpha, power)
        assert st.items_needed(gap, o2, s2, k, alpha, power) == pytest.approx(n, rel=1e-10)
        assert st.min_detectable_gap(n, o2, s2, k, alpha, power, points=True) == pytest.approx(100 * gap)
    for delta in (0.01, 0.03, 0.1):
        n = st.items_needed(delta, 0.08, 0.2, k, alpha, power)
        assert st.min_detectable_gap(n, 0.08, 0.2, k, alpha, power) == pytest.approx(delta, rel=1e-10)


def test_items_needed_gives_the_promised_power():
    """At n = items_needed, a two-sided paired t test at alpha rejects a true gap delta ~80% of the time."""
    rng = np.random.default_rng(3)
    delta, o2, s2, K = 0.05, 0.1, 0.2, 4
    n = math.ceil(st.items_needed(delta, o2, s2, K))
    reps = 3000
    d = delta + rng.normal(0, math.sqrt(o2), (reps, n)) + rng.normal(0, math.sqrt(s2), (reps, n, K)).mean(2)
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
    rejected = (2 * sps.t.sf(np.abs(t), n - 1) < 0.05).mean()
    assert rejected == pytest.approx(0.8, abs=0.03)


@pytest.mark.parametrize(
    "call",
    [
        lambda: st.items_needed(0, 0.1, 0.1, 4),
        lambda: st.items_needed(-0.01, 0.1, 0.1, 4),
        lambda: st.items_needed(0.03, -0.1, 0.1, 4),
        lambda: st.items_needed(0.03, 0.1, 0.1, 0),
        lambda: st.items_needed(0.03, 0.1, 0.1, 4, alpha=1.5),
        lambda: st.items_needed(0.03, 0.1, 0.1, 4, power=1.0),
        lambda: st.min_detectable_gap(0, 0.1, 0.1, 4),
        lambda: st.independence_check_summary(64.4, 2.5, 1319, 128),  # points without points=True
        lambda: st.independence_check_summary(0.6, 0.02, 1319, 1),
        lambda: st.independence_check_summary(0.6, -0.02, 1319, 10),
    ],
)
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()


# ----------------------------------------------------------------------------- variance components
def test_variance_components_recover_known_continuous_values():
    rng = np.random.default_rng(0)
    n, K, omega2, sigma2 = 6000, 4, 0.02, 0.2
    mu = rng.uniform(2, 8, n)
    greedy = mu + 0.3 + rng.normal(0, math.sqrt(omega2), n)  # true paired difference: 0.3 + N(0, omega2)
    S = mu[:, None] + rng.normal(0, math.sqrt(sigma2), (n, K))
    vc = st.variance_components(_frame(greedy, S))
    assert len(vc) == 1
    r = vc.iloc[0]
    assert (r.n_items, r.n_runs, r.n_dropped) == (n, K, 0)
    assert r.sigma2 == pytest.approx(sigma2, abs=0.01)
    assert r.omega2 == pytest.approx(omega2, abs=0.004)
    assert r.omega2_raw == pytest.approx(omega2 + sigma2 / K, abs=0.005)  # uncorrected: biased by sigma^2 / K
    assert r.gap == pytest.approx(0.3, abs=0.01)


def test_variance_components_recover_known_binary_values():
    rng = np.random.default_rng(1)
    n, K = 5000, 8
    p = rng.beta(0.8, 0.8, n)
    greedy = (rng.random(n) < np.clip(p + 0.1, 0, 1)).astype(float)
    S = (rng.random((n, K)) < p[:, None]).astype(float)
    r = st.variance_components(_frame(greedy, S)).iloc[0]
    assert r.omega2 == pytest.approx(np.var(greedy - p, ddof=1), abs=0.006)  # the true per-item differences
    assert r.sigma2 == pytest.approx(np.mean(p * (1 - p)), abs=0.004)
    ph = S.mean(1)
    assert r.sigma2 == pytest.approx(np.mean(ph * (1 - ph)) * K / (K - 1))  # 0/1: the K/(K-1)-corrected p(1-p)


def test_variance_components_drop_unscored_and_need_greedy():
    rng = np.random.default_rng(2)
    S = (rng.random((50, 6)) < 0.5).astype(float)
    greedy = (rng.random(50) < 0.5).astype(float)
    greedy[0] = np.nan  # unscored greedy
    S[1, 1:] = np.nan  # one scored sample only
    S[2, 0] = np.nan  # five scored samples: kept
    r = st.variance_components(_frame(greedy, S)).iloc[0]
    assert (r.n_items, r.n_dropped) == (48, 2)
    ok = np.r_[2:50]
    pbar = np.nanmean(S[ok], 1)
    s2 = np.nanvar(S[ok], 1, ddof=1)
    assert r.sigma2 == pytest.approx(s2.mean())
    assert r.omega2_raw == pytest.approx(np.var(greedy[ok] - pbar, ddof=1))
    assert r.omega2 == pytest.approx(max(r.omega2_raw - np.mean(s2 / (~np.isnan(S[ok])).sum(1)), 0))
    no_greedy = st.variance_components(_frame(None, S)).iloc[0]
    assert np.isnan(no_greedy.omega2) and np.isfinite(no_greedy.sigma2)


def test_sample_size_table():
    rng = np.random.default_rng(4)
    S = _bernoulli_runs(rng, 400, 16)
    greedy = (rng.random(400) < 0.6).astype(float)
    df = _frame(greedy, S)
    t = st.sample_size_table(df, deltas=(0.02, 0.05), ks=(1, 8, None))
    assert len(t) == 6 and set(t.k) == {1.0, 8.0, math.inf}
    vc = st.variance_components(df).iloc[0]
    for r in t.itertuples():
        assert r.items_needed == math.ceil(st.items_needed(r.delta, vc.omega2, vc.sigma2, r.k))
        assert r.min_detectable_gap == pytest.approx(st.min_detectable_gap(400, vc.omega2, vc.sigma2, r.k))
    assert t.current_min_detectable_gap.unique() == pytest.approx(st.min_detectable_gap(400, vc.omega2, vc.sigma2, 16))
    # smaller gaps and fewer samples per item need more items
    assert (t[t.delta == 0.02].items_needed.to_numpy() > t[t.delta == 0.05].items_needed.to_numpy()).all()
    needs = t[t.delta == 0.02].sort_values("k").items_needed.to_numpy()
    assert needs[0] > needs[1] > needs[2]
    tp = st.sample_size_table(df, deltas=(2, 5), ks=(1, 8, None), points=True)
    assert (tp.items_needed.to_numpy() == t.items_needed.to_numpy()).all()
    assert tp.min_detectable_gap.to_numpy() == pytest.approx(100 * t.min_detectable_gap.to_numpy())
    assert sorted(st.sample_size_table(df, points=True).delta.unique()) == [1, 2, 3, 5]


# ----------------------------------------------------------------------------- independence of the runs
def test_independence_check_flags_a_shared_shock_and_not_independent_runs():
    rng = np.random.default_rng(5)
    n, N = 500, 32
    df = pd.concat(
        [
            _frame(None, _bernoulli_runs(rng, n, N, shock_sd=0.04), model="shock"),
            _frame(None, _bernoulli_runs(rng, n, N), model="indep"),
        ]
    )
    t = st.independence_check(df).set_index("model")
    assert t.loc["shock", "flagged"] and t.loc["shock", "observed_std"] > t.loc["shock", "max_std"]
    assert t.loc["shock", "ratio"] > 1.5
    assert not t.loc["indep", "flagged"] and t.loc["indep", "ratio"] == pytest.approx(1, abs=0.3)
    # the prediction is the brief's sqrt(sum_i p_i(1 - p_i)) / n, with the unbiased K/(K-1) factor
    S = st.score_matrix(df[df.model == "indep"]).to_numpy()
    p = S.mean(1)
    assert t.loc["indep", "predicted_std"] == pytest.approx(np.sqrt((p * (1 - p)).sum() * N / (N - 1)) / n)
    assert t.loc["indep", "observed_std"] == pytest.approx(S.mean(0).std(ddof=1))
    t0 = st.independence_check(df, ddof=0).set_index("model")  # the paper's std: only the reported std changes
    assert t0.loc["indep", "observed_std"] == pytest.approx(S.mean(0).std(ddof=0))
    assert (t0.p_value == t.p_value).all() and (t0.observed_std > t0.max_std).equals(t.flagged.astype(bool))
    # the summary form sees the shock from the table's figures alone (its bound is looser than the prediction)
    for model, flagged in (("shock", True), ("indep", False)):
        r = t.loc[model]
        s = st.independence_check_summary(r["mean"], r["observed_std"], n, N)
        assert s["flagged"] == flagged and s["bound_std"] >= r["predicted_std"]


def test_independence_check_false_positive_rate_near_alpha():
    rng = np.random.default_rng(6)
    n_stores = 300
    df = pd.concat([_frame(None, _bernoulli_runs(rng, 100, 20), model=f"m{i:03d}") for i in range(n_stores)])
    t = st.independence_check(df, alpha=0.05)
    assert len(t) == n_stores
    assert t.flagged.mean() == pytest.approx(0.05, abs=0.035)  # 3 binomial sd at 300 stores
    assert t.p_value.mean() == pytest.approx(0.5, abs=0.05)  # p-values ~ uniform under independence


def test_summary_form_closed_form():
    """statistic = (N - ddof) s^2 / (m(1-m)/n): a ddof=0 std is the smaller one, so it counts for more."""
    m, s, n, N = 0.6, 0.04, 200, 5
    bound2 = m * (1 - m) / n
    for ddof in (0, 1):
        r = st.independence_check_summary(m, s, n, N, ddof=ddof)
        assert r["statistic"] == pytest.approx((N - ddof) * s**2 / bound2)
        assert r["p_value"] == pytest.approx(sps.chi2.sf(r["statistic"], N - 1))
        # max_std is in the input's ddof: a std equal to it sits exactly on the critical value
        edge = st.independence_check_summary(m, r["max_std"], n, N, ddof=ddof)
        assert edge["p_value"] == pytest.approx(0.05)


def test_paper_llama3_gsm8k_cell_is_flagged():
    """Song et al. 2024, Table 2 (repo README, assets/main.png): Llama-3-8B-Instruct on GSM8K, sampling mean 64.4,
    std 2.50 (numpy's ddof=0, analyse/analyse_gsm_sample.py) over N = 128 runs of 1,319 items."""
    r = st.independence_check_summary(64.4, 2.50, n_items=1319, n_runs=128, points=True, ddof=0)
    assert r["bound_std"] == pytest.approx(1.32, abs=0.01)  # independent sampling: at most ~1.3 points
    assert r["flagged"] and r["p_value"] < 1e-10 and r["max_std"] < 1.5
    frac = st.independence_check_summary(0.644, 0.025, 1319, 128, ddof=0)
    assert frac["flagged"] and frac["statistic"] == pytest.approx(r["statistic"])
    assert frac["bound_std"] == pytest.approx(r["bound_std"] / 100)
    # the same table's GPT-4-Turbo GSM8K cell (83.8, std 0.77) is within what independent sampling allows
    assert not st.independence_check_summary(83.8, 0.77, 1319, 128, points=True, ddof=0)["flagged"]
