"""Full gbg statistics at GSM8K paper scale (1319 items x 128 samples, one model): vectorised vs naive.

Vectorised (gbg_utils.stats): gap table with 1000-resample bootstrap CIs, the per-item table, and best-of-k
curves for k = 1..128 (oracle, pass@k, random, majority = maj@k, reward) with 1000-resample bootstrap bands.
Naive: the same numbers from a per-item pure-Python loop (math.comb weights, Counter votes, a pure-Python
maj@k DP, Python resampling). The naive loop is timed on evenly spaced item subsets and extrapolated
linearly to all items (its cost is linear in items; the output says so), and checked against the
vectorised numbers on those items.

    python scripts/speed/bench_stats.py [--repeat 5] [--naive-items 40] [--naive-maj-items 10]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections import Counter
from math import comb, log2
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from gbg_utils import stats as st  # noqa: E402

N_ITEMS, N_SAMPLES, N_BOOT = 1319, 128, 1000
METHODS = ("oracle", "pass", "random", "majority")


def full_stats(df):
    gap = st.gap_table(df, n_boot=N_BOOT)
    items = st.per_item(df)
    curves = st.best_of_k_curves(df, selectors=["reward"], methods=METHODS, n_boot=N_BOOT)
    return gap, items, curves


# ------------------------------------------------------------------------------------------ naive
def naive_best(scores, sel, n):
    """Expected score of the top-by-sel of a random k-subset, ties averaged, k = 1..n (loops)."""
    order = sorted(range(n), key=lambda i: -sel[i])
    vals, i = [0.0] * n, 0
    while i < n:  # tie groups -> their mean
        j = i
        while j < n and sel[order[j]] == sel[order[i]]:
            j += 1
        m = sum(scores[order[q]] for q in range(i, j)) / (j - i)
        for q in range(i, j):
            vals[q] = m
        i = j
    return [sum(vals[r] * comb(n - r - 1, k - 1) for r in range(n)) / comb(n, k) for k in range(1, n + 1)]


def naive_maj(scores, answers, n):
    """maj@k, k = 1..n: for each top count t a DP over answers of (ties j, size d) -> (count, value sum)."""
    groups = {}
    for i, (s, a) in enumerate(zip(scores, answers)):
        groups.setdefault(a if isinstance(a, str) else ("missing", i), []).append(s)  # None/NaN: own answer
    cs = [len(g) for g in groups.values()]
    vs = [sum(g) / len(g) for g in groups.values()]
    binom = [[float(comb(a, x)) for x in range(a + 1)] for a in range(n + 1)]
    out = [0.0] * (n + 1)
    for t in range(1, max(cs) + 1):
        J = sum(c >= t for c in cs) + 1
        N = [[0.0] * (n + 1) for _ in range(J)]
        V = [[0.0] * (n + 1) for _ in range(J)]
        N[0][0] = 1.0
        for c, v in zip(cs, vs):
            N2 = [[0.0] * (n + 1) for _ in range(J)]
            V2 = [[0.0] * (n + 1) for _ in range(J)]
            for j in range(J):
                for d in range(n + 1):
                    cnt, val = N[j][d], V[j][d]
                    if cnt == 0.0:
                        continue
                    for x in range(min(c, t, n - d) + 1):
                        w = binom[c][x]
                        jj = j + (x == t)
                        N2[jj][d + x] += cnt * w
                        V2[jj][d + x] += (val + (v * cnt if x == t else 0.0)) * w
            N, V = N2, V2
        for j in range(1, J):
            for d in range(n + 1):
                out[d] += V[j][d] / j
    return [out[k] / comb(n, k) for k in range(1, n + 1)]


def naive_main(S, A, R, G):
    """Everything but maj@k for the given items (lists of lists), 1000-resample bootstraps included."""
    n_items, n = len(S), len(S[0])
    rng = random.Random(0)
    pbar = [sum(row) / n for row in S]
    runs = [sum(S[i][j] for i in range(n_items)) / n_items for j in range(n)]
    d = [g - p for g, p in zip(G, pbar)]
    gap = {
        "greedy": sum(G) / n_items,
        "mean": sum(pbar) / n_items,
        "std": statistics.stdev(runs),
        "best": max(runs),
        "worst": min(runs),
        "gap": sum(d) / n_items,
    }
    boots = []
    for _ in range(N_BOOT):
        idx = [rng.randrange(n_items) for _ in range(n_items)]
        boots.append((sum(G[i] for i in idx) / n_items, sum(pbar[i] for i in idx) / n_items, sum(d[i] for i in idx) / n_items))
    per_item = []
    for row, ans in zip(S, A):
        cnt = Counter(a if isinstance(a, str) else ("missing", q) for q, a in enumerate(ans))
        per_item.append((sum(row) / n, -sum(c / n * log2(c / n) for c in cnt.values()), max(cnt.values()) / n))
    curves = {"oracle": [], "pass": [], "random": [], "reward": []}
    for row, rew in zip(S, R):
        c = sum(s >= 1 for s in row)
        curves["pass"].append([1 - comb(n - c, k) / comb(n, k) for k in range(1, n + 1)])
        curves["oracle"].append(naive_best(row, row, n))
        curves["random"].append([sum(row) / n] * n)
        curves["reward"].append(naive_best(row, rew, n))
    cboots = []
    for _ in range(N_BOOT):
        idx = [rng.randrange(n_items) for _ in range(n_items)]
        cboots.append({m: [sum(v[i][k] for i in idx) / n_items for k in range(n)] for m, v in curves.items()})
    return gap, per_item, curves, boots, cboots


# ------------------------------------------------------------------------------------------ main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--naive-items", type=int, default=40)
    ap.add_argument("--naive-maj-items", type=int, default=10)
    args = ap.parse_args(argv)

    df = st.synthetic_table(n_items=N_ITEMS, n_samples=N_SAMPLES, seed=0)
    print(
        f"table: {len(df):,} rows ({N_ITEMS} items x {N_SAMPLES} samples + greedy, one model); "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    full_stats(df)  # warm-up (imports, caches)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        gap, items, curves = full_stats(df)
        times.append(time.perf_counter() - t0)
    t0 = time.process_time()
    full_stats(df)
    cpu = time.process_time() - t0
    parts = {}
    for name, fn in [
        ("gap_table", lambda: st.gap_table(df, n_boot=N_BOOT)),
        ("per_item", lambda: st.per_item(df)),
        ("best_of_k_curves", lambda: st.best_of_k_curves(df, selectors=["reward"], methods=METHODS, n_boot=N_BOOT)),
    ]:
        t0 = time.perf_counter()
        fn()
        parts[name] = time.perf_counter() - t0
    sampled = [c for c in st.cells(df) if not c.greedy][0]
    S, A = sampled.matrix("score"), sampled.matrix("extracted", dtype=None)
    t0 = time.perf_counter()
    maj = st.maj_at_k(S, A)
    parts["  of which maj_at_k"] = time.perf_counter() - t0

    # naive, on evenly spaced subsets
    greedy = [c for c in st.cells(df) if c.greedy][0].matrix("score")[:, 0]
    R = sampled.matrix("reward")
    sub = np.linspace(0, N_ITEMS - 1, args.naive_items).astype(int)
    t0 = time.perf_counter()
    _, nitems, ncurves, _, _ = naive_main(S[sub].tolist(), A[sub].tolist(), R[sub].tolist(), greedy[sub].tolist())
    t_main = (time.perf_counter() - t0) * N_ITEMS / len(sub)
    msub = np.linspace(0, N_ITEMS - 1, args.naive_maj_items).astype(int)
    t0 = time.perf_counter()
    nmaj = [naive_maj(S[i].tolist(), A[i].tolist(), N_SAMPLES) for i in msub]
    t_maj = (time.perf_counter() - t0) * N_ITEMS / len(msub)

    err = max(
        np.abs(np.array(nmaj) - maj[msub]).max(),
        np.abs(np.array(ncurves["reward"]) - st.best_of_k(S[sub], R[sub])).max(),
        np.abs(np.array(ncurves["oracle"]) - st.best_of_k(S[sub], S[sub])).max(),
        np.abs(np.array(ncurves["pass"]) - st.pass_at_k(S[sub])).max(),
        np.abs(np.array(nitems)[:, 1] - items.entropy.to_numpy()[sub]).max(),
    )

    best, med = min(times), statistics.median(times)
    naive = t_main + t_maj
    print(
        f"vectorised full statistics: best {best:.3f} s, median {med:.3f} s over {args.repeat} runs "
        f"(target < 2 s); CPU time of one run {cpu:.3f} s"
    )
    for k, v in parts.items():
        print(f"  {k:<20s} {v:.3f} s")
    print(
        f"naive per-item Python loop: {naive:.1f} s, extrapolated to {N_ITEMS} items "
        f"(everything but maj@k timed on {len(sub)} items: {t_main:.1f} s; maj@k on {len(msub)} items: "
        f"{t_maj:.1f} s)"
    )
    print(f"speed-up (naive / vectorised median): {naive / med:,.0f}x")
    print(f"max |naive - vectorised| on the timed items: {err:.1e}")
    print(
        f"gap table: greedy {gap.greedy[0]:.3f}, sampling mean {gap['mean'][0]:.3f} ± {gap['std'][0]:.3f} "
        f"over {gap.n_runs[0]} runs, gap {gap.gap[0]:+.3f} [{gap.gap_ci_low[0]:+.3f}, {gap.gap_ci_high[0]:+.3f}]"
    )
    at = curves.set_index(["method", "k"]).value
    print(
        "k=1/8/128: "
        + ", ".join(f"{m} {at[m, 1]:.3f}/{at[m, 8]:.3f}/{at[m, 128]:.3f}" for m in ("oracle", "majority", "reward", "random"))
    )


if __name__ == "__main__":
    main()
