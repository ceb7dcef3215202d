"""The scorecard's decision rules (issue 20): on the paper's own numbers they reach the paper's conclusions; on
synthetic tables clearly contrary data contradict, data at the bar stay inconclusive, and 14 cells at the bar
do not breed false contradictions; the k-sample estimators agree on unscored samples."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from gbg_utils import findings
from gbg_utils import stats as st

Z = float(norm.ppf(0.975))

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- the paper's own printed numbers

# A best-of-k table as stats.best_of_k_table returns it (the columns C8 reads).
C8_COLS = [
    "model",
    "benchmark",
    "selector",
    "k",
    "value",
    "ci_low",
    "ci_high",
    "greedy",
    "gain_ci_low",
    "gain_ci_high",
    "n_items",
]


def test_gbg_findings_paper_reaches_the_papers_conclusions():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "gbg_utils.cli", "findings", "--paper", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    v = {d["claim_id"]: d for d in json.loads(out.stdout)}
    for cid in ("C1", "C2", "C3", "C7", "C8"):  # Tables 2, 4, 5 and Figure 4's endpoints
        assert v[cid]["verdict"] == "supported", (cid, v[cid]["reason"])
    for cid in ("C4", "C5", "C6"):  # Figures 1 and 2 print no values
        assert v[cid]["verdict"] == "not testable" and "not testable from printed numbers" in v[cid]["reason"]
    assert all(d["verdict"] != "contradicted" for d in v.values())
    assert all(d["rule"] and "Unit" in d["rule"] or "parts" in d["rule"] for d in v.values())
    assert "Tables 2 (Yi-1.5) and 4 (Qwen2)" in v["C3"]["reason"] and "(c) supported" in v["C8"]["reason"]
    text = subprocess.run(
        [sys.executable, "-m", "gbg_utils.cli", "findings", "--paper"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    assert "C1 SUPPORTED" in text and "rule: Unit: benchmark" in text


def test_c3_on_table_4_alone_is_supported_despite_mmlu():
    """Table 4 (Qwen2 0.5B -> 7B): MMLU's std falls 0.70 -> 0.46 (ratio 0.66, CI reaching 2/3), the rest rise."""
    t4 = findings.paper.table("table4")
    n = t4.benchmark.map(lambda b: findings.paper.benchmark_info(b)["n_samples"])
    gap = pd.DataFrame({"model": t4.model, "benchmark": t4.benchmark, "size_b": t4.size_b, "std": t4["std"] / 100, "n_runs": n})
    gap["n_items"] = gap.benchmark.map(lambda b: findings.paper.benchmark_info(b)["n_items"])
    v = findings.larger_model_not_less_variable(gap)
    assert v.verdict == "supported" and "3 of 4 benchmarks agree and 0 disagree" in v.reason


# --------------------------------------------------------------------------- synthetic tables per claim


def _gap(rows):
    """(model, benchmark, n_items, n_runs, gap, gap_se, std) -> a gap_table-like frame (0-1 scores)."""
    df = pd.DataFrame(rows, columns=["model", "benchmark", "n_items", "n_runs", "gap", "se", "std"])
    return df.assign(
        greedy=0.6,
        mean=0.6 - df.gap,
        gap_ci_low=df.gap - Z * df.se,
        gap_ci_high=df.gap + Z * df.se,
        best=0.6 + 2 * df["std"],
        worst=0.6 - 2 * df["std"],
        temperature=1.0,
    ).drop(columns="se")


def c1(effect, rng=None, models=7):
    b = ("gsm8k", "humaneval")
    return findings.greedy_beats_sampling(
        _gap([(f"m{i}", x, 100, 8, effect + (rng.normal(0, 0.02) if rng else 0), 0.02, 0.02) for i in range(models) for x in b])
    )


def _draw_std(sigma, runs, rng):
    return sigma * math.sqrt(rng.chisquare(runs - 1) / (runs - 1)) if rng else sigma


def c2(ratio, rng=None, models=7, n_cons=1000, n_open=1000):
    """per-item stds: constrained = ratio x open (open per-item sd 0.4), runs 16."""
    rows = []
    for i in range(models):
        rows.append((f"m{i}", "mmlu_redux", n_cons, 16, 0.0, 0.01, _draw_std(ratio * 0.4 / math.sqrt(n_cons), 16, rng)))
        rows.append((f"m{i}", "gsm8k", n_open, 16, 0.0, 0.01, _draw_std(0.4 / math.sqrt(n_open), 16, rng)))
    return findings.constrained_answers_are_stable(_gap(rows))


def c3(ratio, rng=None, families=7):
    rows, sizes = [], []
    for i in range(families):
        for b in ("gsm8k", "humaneval"):
            rows.append((f"fam{i}-1B", b, 200, 32, 0.0, 0.01, _draw_std(0.03, 32, rng)))
            rows.append((f"fam{i}-7B", b, 200, 32, 0.0, 0.01, _draw_std(0.03 * ratio, 32, rng)))
            sizes += [1.0, 7.0]
    return findings.larger_model_not_less_variable(_gap(rows).assign(size_b=sizes))


def c4(ratio, rng=None, methods=7):
    rows, names = [], []
    for b in ("gsm8k", "humaneval"):
        rows.append(("base", b, 200, 32, 0.0, 0.01, 0.03))
        names.append("SFT")
        for j in range(methods):
            rows.append((f"a{j}", b, 200, 32, 0.0, 0.01, _draw_std(0.03 * ratio, 32, rng)))
            names.append(f"M{j}")
    return findings.alignment_lowers_std(_gap(rows).assign(method=names), base="SFT")


def _sweep(rows, x):
    return pd.DataFrame(rows, columns=["model", "benchmark", "decoding", x, "mean", "se", "n_items"])


def c5(diff, rng=None, models=7):
    """The reasoning drop minus the open-ended drop is ``diff`` points (0-1: diff / 100)."""
    rows = []
    for i in range(models):
        noise = rng.normal(0, 0.01) if rng else 0  # the pair difference's SE: 4 SEs of 0.005
        rows += [
            (f"m{i}", "gsm8k", "greedy", 0.0, 0.7, 0.005, 100),
            (f"m{i}", "gsm8k", "sampled", 1.5, 0.7 - 0.1 - diff / 100 - noise, 0.005, 100),
            (f"m{i}", "alpaca_eval", "greedy", 0.0, 0.3, 0.005, 100),
            (f"m{i}", "alpaca_eval", "sampled", 1.5, 0.2, 0.005, 100),
        ]
    return findings.high_temperature_hurts_reasoning(_sweep(rows, "temperature"))


def c6(deficit, rng=None, models=7):
    """The default is ``deficit`` points below every rival penalty (0.8, 1.2) on HumanEval and MMLU-Redux."""
    rows = []
    for i in range(models):
        for b in ("humaneval", "mmlu_redux"):
            rows.append((f"m{i}", b, "sampled", 1.0, 0.5, 0.004, 100))
            for rp in (0.8, 1.2):
                noise = rng.normal(0, 0.004 * math.sqrt(2)) if rng else 0
                rows.append((f"m{i}", b, "sampled", rp, 0.5 + deficit / 100 + noise, 0.004, 100))
    return findings.default_repetition_penalty_is_near_best(_sweep(rows, "repetition_penalty"))


def c7(diff, rng=None, cells=14):
    rows = []
    for i in range(cells):
        rows += [(f"m{i}", "gsm8k", "greedy", 100.0, 1.0, 100)]
        rows += [(f"m{i}", "gsm8k", "sampled", 100.0 + diff + (rng.normal(0, math.sqrt(2)) if rng else 0), 1.0, 100)]
    lengths = pd.DataFrame(rows, columns=["model", "benchmark", "decoding", "mean_tokens", "se", "n_items"])
    return findings.greedy_is_shorter(lengths)


def c8(gain, rng=None, models=7):
    """oracle@8 - greedy = ``gain`` on GSM8K and HumanEval (paired SE 0.02); the reference sits ``gain`` below."""
    rows = []
    for i in range(models):
        for b in ("gsm8k", "humaneval"):
            g = gain + (rng.normal(0, 0.02) if rng else 0)
            rows.append((f"m{i}", b, "oracle", 8, 0.5 + g, 0.5 + g - 0.04, 0.5 + g + 0.04, 0.5, g - Z * 0.02, g + Z * 0.02, 100))
    cols = C8_COLS
    return findings.best_of_n_beats_greedy(pd.DataFrame(rows, columns=cols), reference={"gsm8k": 0.5, "humaneval": 0.5})


# (claim, clearly contrary, at the bar, clearly for): effects in each builder's units
CASES = {
    "C1": (c1, -0.1, 0.0, 0.1),
    "C2": (c2, 3.0, 1.0, 0.3),
    "C3": (c3, 0.3, 2 / 3, 1.5),
    "C4": (c4, 2.0, 1.0, 0.5),
    "C5": (c5, -20.0, 10.0, 40.0),
    "C6": (c6, 8.0, 2.0, 0.0),
    "C7": (c7, -20.0, 0.0, 20.0),
    "C8": (c8, -0.2, 0.0, 0.2),
}


@pytest.mark.parametrize("cid", CASES)
def test_contrary_data_contradict_and_data_at_the_bar_are_inconclusive(cid):
    fn, contrary, bar, for_ = CASES[cid]
    assert fn(contrary).verdict == "contradicted", fn(contrary).reason
    assert fn(bar).verdict == "inconclusive", fn(bar).reason
    assert fn(for_).verdict == "supported", fn(for_).reason


@pytest.mark.parametrize("cid", CASES)
def test_fourteen_cells_at_the_bar_rarely_contradict(cid):
    fn, _, bar, _ = CASES[cid]
    rng = np.random.default_rng(20)
    verdicts = [fn(bar, rng).verdict for _ in range(200)]
    assert verdicts.count("contradicted") / 200 <= 0.05, cid


def test_c2_follows_the_answer_space_not_the_item_count():
    """Equal per-item variance: 2000 constrained items or 50, the verdict is the same (inconclusive at the bar)."""
    for ratio in (1.0, 0.3, 3.0):
        assert c2(ratio, n_cons=2000, n_open=50).verdict == c2(ratio, n_cons=50, n_open=50).verdict
    assert c2(1.0, n_cons=2000, n_open=50).verdict == "inconclusive"
    # MMLU more stable per item (variance 0.1 vs 0.2) at 20 items against 1000: not contradicted
    rows = [("m", "mmlu_redux", 20, 16, 0, 0.01, math.sqrt(0.1 / 20)), ("m", "gsm8k", 1000, 16, 0, 0.01, math.sqrt(0.2 / 1000))]
    assert findings.constrained_answers_are_stable(_gap(rows)).verdict != "contradicted"
    zero = [("m", "mmlu_redux", 100, 16, 0, 0.01, 0.0), ("m", "gsm8k", 100, 16, 0, 0.01, 0.04)]
    assert findings.constrained_answers_are_stable(_gap(zero)).verdict == "supported"  # a std of 0 is evidence


def test_c1_counts_benchmarks_not_cells_and_leaves_alpacaeval_out():
    three = _gap(
        [(f"m{i}", "gsm8k", 100, 8, 0.1, 0.02, 0.02) for i in range(3)]
        + [("m0", "humaneval", 100, 8, 0.0, 0.05, 0.02), ("m0", "mmlu_redux", 100, 8, 0.0, 0.05, 0.02)]
    )
    assert findings.greedy_beats_sampling(three).verdict == "inconclusive"  # 1 of 3 benchmarks
    alp = _gap([("m", "gsm8k", 100, 8, 0.1, 0.02, 0.02), ("m", "humaneval", 100, 8, 0.1, 0.02, 0.02)])
    alp = pd.concat([alp, _gap([("m", "alpaca_eval", 100, 8, 0.1, 0.02, 0.02)])])
    v = findings.greedy_beats_sampling(alp)
    assert v.verdict == "supported" and "2 of 2 benchmarks" in v.reason and "not counted" in v.yours


def test_claims_refuse_mixed_settings_and_a_missing_base():
    g = _gap([("m", "gsm8k", 100, 8, 0.0, 0.01, 0.02), ("m", "gsm8k", 100, 8, 0.0, 0.01, 0.02)]).assign(
        temperature=[1.0, 0.7], size_b=[1.0, 7.0], method=["SFT", "DPO"]
    )
    for v in (findings.larger_model_not_less_variable(g), findings.alignment_lowers_std(g, base="SFT")):
        assert v.verdict == "not testable" and "mixes temperature = 0.7, 1" in v.reason
    v = findings.alignment_lowers_std(g.assign(temperature=1.0))
    assert v.verdict == "not testable" and "no base method named" in v.reason


def test_c8_uses_the_paired_interval_and_one_bar_per_benchmark():
    # 20 items: the oracle's own CI clears greedy, the paired CI of the difference does not
    row = ("m", "humaneval", "oracle", 8, 0.9, 0.81, 0.99, 0.75, -0.01, 0.36, 20)
    cols = C8_COLS
    v = findings.best_of_n_beats_greedy(pd.DataFrame([row], columns=cols), reference=0.6)
    assert v.verdict == "inconclusive" and "(a) inconclusive" in v.reason
    two = pd.DataFrame([row, ("m", "gsm8k") + row[2:]], columns=cols)
    v = findings.best_of_n_beats_greedy(two, reference=0.6)
    assert "one reference number for 2 benchmarks" in v.reason
    # AlpacaEval is outside part (c)'s scope (Figure 4: oracle 41.2 < GPT-4-Turbo 50.1)
    alp = pd.DataFrame([("m", "alpaca_eval", "oracle", 8, 0.41, 0.38, 0.44, 0.27, 0.1, 0.18, 805)], columns=cols)
    assert findings.best_of_n_beats_greedy(alp, reference={"alpaca_eval": 0.5}).verdict == "not testable"


# --------------------------------------------------------------------------- estimators on unscored samples


def test_one_unscored_sample_is_left_out_and_counted_by_every_estimator():
    rng = np.random.default_rng(0)
    S = (rng.random((6, 8)) < 0.5).astype(float)
    A = np.where(S == 1, "4", rng.choice(["5", "6", "7"], S.shape)).astype(object)
    S[2, 3] = np.nan
    ks = [1, 2, 4, 7]
    row = np.delete(S[2], 3)[None, :]
    arow = np.delete(A[2], 3)[None, :]
    got = {
        "oracle": st.best_of_k(S, S, ks),
        "random": st.best_of_k(S, None, ks),
        "pass": st.pass_at_k(S, ks),
        "maj": st.maj_at_k(S, A, ks),
    }
    want_row = {
        "oracle": st.best_of_k(row, row, ks),
        "random": st.best_of_k(row, None, ks),
        "pass": st.pass_at_k(row, ks),
        "maj": st.maj_at_k(row, arow, ks),
    }
    full = np.delete(np.arange(6), 2)
    for name, v in got.items():
        assert np.isfinite(v).all(), name
        np.testing.assert_allclose(v[2], want_row[name][0], err_msg=name)
        np.testing.assert_allclose(
            v[full],
            {
                "oracle": st.best_of_k(S[full], S[full], ks),
                "random": st.best_of_k(S[full], None, ks),
                "pass": st.pass_at_k(S[full], ks),
                "maj": st.maj_at_k(S[full], A[full], ks),
            }[name],
        )
    with pytest.raises(ValueError, match="exceeds the 7 scored samples"):
        st.pass_at_k(S, [8])


def test_best_of_k_table_counts_the_unscored_sample_and_leaves_majority_out_on_code():
    df = st.synthetic_table(models=("a",), benchmarks=("gsm8k",), n_items=12, n_samples=4, temperatures=(1.0,), seed=1)
    i = df.index[~df.greedy.astype(bool)][5]
    df.loc[i, "score"] = np.nan
    t = st.best_of_k_table(df, selectors=["oracle", "random"], ks=[1, 3], n_boot=50)
    assert np.isfinite(t.value).all() and (t.n_unscored == 1).all()
    he = st.synthetic_table(models=("a",), benchmarks=("humaneval",), n_items=12, n_samples=4, temperatures=(1.0,), seed=1)
    if "extracted" not in he.columns:
        he = he.assign(extracted="x")
    with pytest.warns(UserWarning, match="'majority' is not offered on humaneval"):
        t = st.best_of_k_table(he, selectors=["oracle", "majority"], n_boot=0)
    assert set(t.selector) == {"oracle"}  # offered only where answers compare; the other curves stay
    with pytest.raises(ValueError, match="majority voting on humaneval"):  # asked for directly: refused
        st.best_of_k_curves(he[~he.greedy.astype(bool)], methods=("oracle", "majority"), n_boot=0)


def test_best_of_k_bands_with_ten_groups_cover():
    """10 groups (a group effect on the logit), 8 items each, 4 samples: oracle@4's band covers the population
    value in 0.90-0.98 of 300 simulated tables (resampling items alone under-covers here)."""
    from scipy.special import expit

    G, PER, N = 10, 8, 4
    tmpl = st.synthetic_table(models=("a",), benchmarks=("gsm8k",), n_items=G * PER, n_samples=N, temperatures=(1.0,), n_groups=G)
    tmpl = tmpl[~tmpl.greedy.astype(bool)].reset_index(drop=True)
    gidx = tmpl.group.str[1:].astype(int).to_numpy()
    iidx = tmpl.item_id.str.split("-").str[-1].astype(int).to_numpy()
    big = np.random.default_rng(99)
    truth = float(np.mean(1 - (1 - expit(big.normal(0, 1.0, 2_000_000) + big.normal(0, 1.0, 2_000_000))) ** N))
    rng, hits = np.random.default_rng(1), []
    for rep in range(300):
        p = expit(rng.normal(0, 1.0, G)[gidx] + rng.normal(0, 1.0, G * PER)[iidx])
        t = st.best_of_k_table(
            tmpl.assign(score=(rng.random(len(tmpl)) < p).astype(float)), selectors=["oracle"], ks=[N], n_boot=300, seed=rep
        )
        hits.append(t.ci_low.iloc[0] <= truth <= t.ci_high.iloc[0])
    assert t.ci_method.iloc[0].startswith("cluster")
    assert 0.90 <= np.mean(hits) <= 0.98
