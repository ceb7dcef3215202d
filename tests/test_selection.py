"""Best-of-k selectors against brute force over every k-subset, on tables small enough to enumerate."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from gbg_utils.decoding import DecodingConfig
from gbg_utils.stats import best_of_k_table, default_selectors, greedy_scores
from gbg_utils.store import Sample, SampleStore

N, ITEMS = 5, 6
REWARD = "reward:tiny-rm"


def _store_frame(tmp_path):
    """A store with greedy + N samples per item for two models, benchmark scores, log-probs and one reward column."""
    rng = np.random.default_rng(7)
    store = SampleStore(tmp_path / "s.sqlite")
    greedy, sampled = DecodingConfig(), DecodingConfig(temperature=0.8, n=N)
    run = store.new_run({})
    samples, scores = [], []
    for model, skill in (("weak", 0.3), ("strong", 0.7)):
        for cfg, n in ((greedy, 1), (sampled, N)):
            key_ = store.add_config(cfg, {"backend": "vllm", "dtype": "bfloat16", "weights": {"kind": "embedded", "name": model}})
            for i in range(ITEMS):
                right = str(10 * i)
                for j in range(n):
                    ans = right if rng.random() < skill else rng.choice([str(10 * i + 1), str(10 * i + 2), None])
                    # rounded log-probs tie now and then; a reward is sometimes missing (too long for the RM)
                    lp = round(float(rng.normal(-1, 0.5)), 1)
                    samples.append(Sample(model, "toy", str(i), "p", key_, j, f"... {ans}", 10, "stop", lp))
                    key = dict(model=model, benchmark="toy", item_id=str(i), prompt_hash="p", config_key=key_, sample_idx=j)
                    scores.append({**key, "scorer": "toy", "scorer_version": "1", "score": float(ans == right), "extracted": ans})
                    r = float(ans == right) + rng.normal(0, 1)
                    scores.append({**key, "scorer": REWARD, "scorer_version": "1", "score": None if rng.random() < 0.1 else r})
    store.add_samples(samples, run)
    store.add_scores(scores)
    return store.frame(extra_scorers=[REWARD])


def _brute(cell: pd.DataFrame, selector: str, k: int) -> float:
    """Mean over items of the mean over all k-subsets of the chosen sample's score (ties: the tied samples' mean)."""
    per_item = []
    for _, g in cell.groupby("item_id"):
        g = g.sort_values("sample_idx")
        s, a = g["score"].to_numpy(), g["extracted"].to_numpy()
        vals = []
        for sub in itertools.combinations(range(len(g)), k):
            sub = list(sub)
            if selector == "oracle":
                vals.append(s[sub].max())
            elif selector == "random":
                vals.append(s[sub].mean())
            elif selector == "majority":  # a missing answer is its own answer; the top count's answers split the vote
                labels = [x if isinstance(x, str) else f"none{i}" for i, x in zip(sub, a[sub])]
                counts = pd.Series(labels).value_counts()
                top = counts[counts == counts.max()].index
                vals.append(np.mean([s[[i for i, lab in zip(sub, labels) if lab == t]].mean() for t in top]))
            else:
                col = {"logprob": "mean_logprob"}.get(selector, selector)
                r = np.nan_to_num(g[col].to_numpy(float)[sub], nan=-np.inf)
                vals.append(s[sub][r == r.max()].mean())
        per_item.append(np.mean(vals))
    return float(np.mean(per_item))


def test_curves_equal_brute_force_over_all_subsets(tmp_path):
    df = _store_frame(tmp_path)
    assert (
        df[REWARD].isna().any()
        and df.groupby(["model", "config_key", "item_id"])["mean_logprob"].apply(lambda x: x.duplicated().any()).any()
    )
    with pytest.warns(UserWarning, match="have no value and rank last"):
        t = best_of_k_table(df)
    assert default_selectors(df) == ["oracle", "random", "majority", "logprob", REWARD]
    assert list(t["selector"].unique()) == default_selectors(df)
    assert len(t) == 2 * 5 * N and set(t["k"]) == set(range(1, N + 1))
    sampled = df[~df["greedy"]]
    for row in t.itertuples():
        cell = sampled[sampled["model"] == row.model]
        assert row.value == pytest.approx(_brute(cell, row.selector, row.k), abs=1e-12), (row.model, row.selector, row.k)
    # greedy: the reference line, one value per model
    g = df[df["greedy"]].groupby("model")["score"].mean()
    for model, sub in t.groupby("model"):
        assert (sub["greedy"] == g[model]).all()
    # k = 1 is one random sample for every selector
    k1 = t[t["k"] == 1].groupby("model")["value"]
    assert (k1.max() - k1.min()).max() < 1e-12


def test_selected_ks_bootstrap_and_order():
    df = _frame_without_store()
    with pytest.warns(UserWarning, match="k > 4 left out"):
        t = best_of_k_table(df, selectors=["reward", "oracle"], ks=[1, 3, 9], n_boot=200)
    assert list(t["selector"]) == ["reward", "reward", "oracle", "oracle"] and list(t["k"]) == [1, 3, 1, 3]
    assert (t["ci_low"] <= t["value"]).all() and (t["value"] <= t["ci_high"]).all()
    assert t.loc[1, "value"] == pytest.approx(_brute(df[~df["greedy"]], "reward", 3))


def _frame_without_store(n_items=8, n=4, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_items):
        for j in range(n):
            ok = rng.random() < 0.5
            rows.append(
                dict(
                    model="m",
                    benchmark="b",
                    item_id=f"q{i}",
                    config_key="T1",
                    greedy=False,
                    temperature=1.0,
                    sample_idx=j,
                    score=float(ok),
                    extracted="a" if ok else rng.choice(["b", "c"]),
                    reward=float(ok) + rng.normal(0, 0.5),
                    mean_logprob=np.nan,
                )
            )
        rows.append(
            dict(
                model="m",
                benchmark="b",
                item_id=f"q{i}",
                config_key="g",
                greedy=True,
                temperature=0.0,
                sample_idx=0,
                score=float(i % 2),
                extracted="a",
                reward=0.0,
                mean_logprob=np.nan,
            )
        )
    return pd.DataFrame(rows)


def test_missing_selector_data_is_refused_or_reported():
    df = _frame_without_store()
    assert "logprob" not in default_selectors(df)  # not stored: not offered
    with pytest.raises(ValueError, match="'mean_logprob' is empty.*logprobs=True"):
        best_of_k_table(df, selectors=["logprob"])
    with pytest.raises(KeyError, match="no column 'reward:ArmoRM'.*score_rewards"):
        best_of_k_table(df, selectors=["reward:ArmoRM"])
    # a reward scored for one model only: the other model's curve is left out, with a warning
    other = df.assign(model="m2", reward=np.nan)
    with pytest.warns(UserWarning, match="no values for .*m2"):
        t = best_of_k_table(pd.concat([df, other]), selectors=["reward", "random"])
    assert set(t.loc[t["model"] == "m2", "selector"]) == {"random"}
    assert set(t.loc[t["model"] == "m", "selector"]) == {"reward", "random"}


def test_greedy_scores_and_no_greedy():
    df = _frame_without_store()
    assert greedy_scores(df).set_index("model")["greedy"]["m"] == 0.5
    t = best_of_k_table(df[~df["greedy"]], selectors=["oracle"])
    assert t["greedy"].isna().all() and len(t) == 4
    two = pd.concat([df, df[df["greedy"]].assign(config_key="g2")])
    with pytest.raises(ValueError, match="2 greedy configs"):
        greedy_scores(two)
    assert math.isclose(t.loc[t["k"] == 4, "value"].iloc[0], _brute(df[~df["greedy"]], "oracle", 4))
