"""Synthetic scored samples, shaped like `SampleStore.frame()`, for tests, speed scripts and examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special


def synthetic_table(
    models=("m1",), benchmarks=("gsm8k",), n_items: int = 50, n_samples: int = 16, temperatures=(0.7,), n_groups: int = 5, seed=0
) -> pd.DataFrame:
    """A scored table in the input contract, for tests, benchmarks and demos.

    Per-item pass rates are U-shaped (expit of ability - difficulty) and fall with temperature; wrong
    answers come from a few per-item distractors (Zipf-like), plus unique junk and missing extractions;
    greedy is better or worse than one sample by model; ``reward`` = score + noise; sampled outputs run longer.
    >>> synthetic_table(n_items=1319, n_samples=128).shape
    (170151, 15)
    """
    rng = np.random.default_rng(seed)
    frames = []
    for mi, model in enumerate(models):
        ability = 0.8 * mi + rng.normal(0.5, 0.3)
        greedy_edge = rng.uniform(0.6, 1.3)  # < 1: greedy beats one sample, > 1: loses
        for benchmark in benchmarks:
            items = np.array([f"{benchmark}-{i:05d}" for i in range(n_items)])
            groups = np.array([f"g{i % n_groups}" for i in range(n_items)])
            z = rng.normal(0, 1.5, n_items)
            base_len = rng.gamma(4, 40, n_items)

            def block(p, n, greedy, temp):
                ok = rng.random((n_items, n)) < p[:, None]
                wrong = np.minimum(rng.geometric(0.5, (n_items, n)), 4) + np.arange(n_items)[:, None] * 10
                ans = np.where(ok, (np.arange(n_items) * 10)[:, None], wrong).astype(str).astype(object)
                junk = ~ok & (rng.random((n_items, n)) < 0.1)
                ans[junk] = [f"junk{x}" for x in rng.integers(0, 10**9, junk.sum())]
                ans[~ok & ~junk & (rng.random((n_items, n)) < 0.05)] = None
                score = ok.astype(float)
                return pd.DataFrame(
                    {
                        "model": model,
                        "benchmark": benchmark,
                        "item_id": np.repeat(items, n),
                        "group": np.repeat(groups, n),
                        "config_key": "greedy" if greedy else f"T{temp:g}",
                        "greedy": greedy,
                        "temperature": 0.0 if greedy else float(temp),
                        "top_p": 1.0,
                        "top_k": -1,
                        "repetition_penalty": 1.0,
                        "sample_idx": np.tile(np.arange(n), n_items),
                        "score": score.ravel(),
                        "extracted": ans.ravel(),
                        "n_tokens": rng.poisson(base_len[:, None] * (1 + 0.15 * temp), (n_items, n)).ravel(),
                        "reward": (score + rng.normal(0, 0.8, score.shape)).ravel(),
                    }
                )

            p0 = special.expit(1.5 * (ability - z))
            frames.append(block(p0**greedy_edge, 1, True, 0.0))
            for temp in temperatures:
                frames.append(block(special.expit(1.5 * (ability - z) - 0.8 * temp), n_samples, False, temp))
    return pd.concat(frames, ignore_index=True)
