"""gbg's statistics against two honest baselines, on the same synthetic GSM8K-sized data (1319 items x 128 samples).

* gbg: `gap_table` (greedy, mean/std/best/worst over runs, gap, SEs, paired t, 1000-resample bootstrap CIs) and
  `best_of_k_curves` (oracle, pass@k, random, reward and majority = maj@k, exact for every k = 1..N, with
  1000-resample bootstrap bands), from the table in memory.
* (a) the paper's own analysis, re-implemented line by line from Yifan-Song793/GoodBadGreedy (commit eb9a586):
  `analyse/analyse_gsm_sample.py` (per-run accuracy, `np.mean`/`np.std`/max/min over runs),
  `best_of_n_eval/eval_gsm_sample_baseline.py` (best/worst/average run, one `random.choice` per item, oracle =
  `any()` over the N samples) and `best_of_n_eval/eval_gsm_sample_reward.py` run for N = 4 .. 128 as
  `scripts/eval_gsm_sample_reward.sh` does (oracle = `any()` over the first N, reward = first strict maximum
  of the first N rewards). The synthetic samples are written to a temp dir as the per-run `predictions.jsonl`
  files and the `benchmark_rewards/<model>/gsm/<rm>.json` file those scripts read; timed with the reading
  (files just written, so in the page cache) and without it (the same code on the parsed records).
* (b) a straightforward per-item NumPy implementation of what gbg computes: loops over cells and items with
  NumPy inside, a Python loop over bootstrap resamples, `scipy.stats.ttest_rel`, per-item maj@k by a DP.

The three are checked against each other where they compute the same thing (asserted, max |diff| printed).

    python scripts/speed/bench_stats.py [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import special
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from gbg_utils import stats as st  # noqa: E402

N_BOOT, CI, TOL = 1000, 0.95, 1e-9
PAPER_NS = (4, 8, 16, 32, 64, 128)  # scripts/eval_gsm_sample_reward.sh: sample_nums=(4 8 16 32 64 128)
RM = "SyntheticRM"  # the reward "model": the synthetic `reward` column
GAP_FIELDS = ("greedy", "greedy_se", "mean", "mean_se", "single_run_se", "std", "best", "worst", "gap", "gap_se", "p_value")
GAP_FIELDS += tuple(f"{x}_ci_{e}" for x in ("greedy", "mean", "gap") for e in ("low", "high"))


def make_table(n_items: int = 1319, n_samples: int = 128, seed: int = 0):
    """One model's synthetic GSM8K table; no item groups (GSM8K has none), so CIs resample items, the test is the paired t."""
    return st.synthetic_table(n_items=n_items, n_samples=n_samples, seed=seed).drop(columns="group")


# ------------------------------------------------------------------------------------------ gbg
def gbg_stats(df, n_boot: int = N_BOOT) -> dict:
    """gbg's numbers; std with ddof=0, the paper's np.std, so (a) can be checked against it (same cost as ddof=1)."""
    return {
        "gap": gbg_gap(df, n_boot),
        "curves": gbg_curves(df, n_boot),
        "majority": gbg_majority(df, n_boot),
    }


def gbg_gap(df, n_boot=N_BOOT):
    return st.gap_table(df, n_boot=n_boot, ci=CI, ddof=0)


def gbg_curves(df, n_boot=N_BOOT):
    return st.best_of_k_curves(df, selectors=["reward"], methods=("oracle", "pass", "random"), n_boot=n_boot, ci=CI)


def gbg_majority(df, n_boot=N_BOOT):
    return st.best_of_k_curves(df, methods=("majority",), n_boot=n_boot, ci=CI)


# ------------------------------------------------------------------------------------------ (a) the paper's scripts
def run_dir(root, model: str, sample_idx) -> str:
    """The paper's per-run folder under <data_path>/gsm (eval_gsm_sample_*.py; analyse_gsm_sample.py takes data_path=<that>/gsm)."""
    return os.path.join(root, "gsm", f"{model}-cot-8shot-sample-{sample_idx}")


def greedy_dir(root, model: str) -> str:
    # The paper's repo has no greedy analysis script (its greedy numbers come from one ordinary eval run);
    # that run is written in the same format and read the way analyse_gsm_sample.py reads a sampled run.
    return os.path.join(root, "gsm", f"{model}-cot-8shot-greedy")


def write_paper_files(df, root) -> str:
    """Write df (one model) as the files the paper's GSM8K scripts read; returns the model name.

    predictions.jsonl per run (question, answer, prediction = extracted answer, model_output of ~4 characters a
    token, so the files are about the size of real 8-shot CoT outputs), an empty metrics.json (analyse checks it
    exists) and the reward file of get_benchmark_rewards/get_gsm_sample_rewards.py. The correct answer is that of a
    correct sample, and `prediction == answer` must reproduce every score (checked)."""
    models = df["model"].unique()
    if len(models) != 1:
        raise ValueError(f"write_paper_files takes one model's rows, got {len(models)} models")
    model = str(models[0])
    df = df.sort_values(["item_id", "sample_idx"])
    items = np.sort(df["item_id"].unique())
    pos = {it: i for i, it in enumerate(items)}
    right = df[df["score"] >= 1].drop_duplicates("item_id").set_index("item_id")["extracted"]
    answer = [str(right.get(it, "<no sample correct>")) for it in items]
    question = [f"Question {it}: " + "a" * 240 for it in items]  # ~ a GSM8K question's length
    sampled, greedy = df[~df["greedy"]], df[df["greedy"]]
    n = int(sampled.groupby("item_id").size().min())
    if (sampled.groupby("item_id").size() != n).any() or len(sampled) != n * len(items):
        raise ValueError("write_paper_files needs every item to have the same number of samples")

    def write_run(folder, rows):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "predictions.jsonl"), "w") as fw:
            for it, ext, sc, nt in zip(rows["item_id"], rows["extracted"], rows["score"], rows["n_tokens"]):
                i = pos[it]
                pred = None if ext is None or (isinstance(ext, float) and np.isnan(ext)) else str(ext)
                if (pred == answer[i]) != (sc >= 1):
                    raise ValueError(f"{it}: prediction == answer does not reproduce score {sc}")
                rec = {
                    "question": question[i],
                    "answer": answer[i],
                    "prediction": pred,
                    "model_output": "word " * int(nt * 4 // 5),
                }
                fw.write(json.dumps(rec) + "\n")
        with open(os.path.join(folder, "metrics.json"), "w") as fw:
            json.dump({}, fw)

    for j, rows in sampled.groupby("sample_idx", sort=True):
        write_run(run_dir(root, model, j), rows.sort_values("item_id"))
    write_run(greedy_dir(root, model), greedy.sort_values("item_id"))
    output_res = {}
    for it, idx, r in zip(sampled["item_id"], sampled["sample_idx"], sampled["reward"]):
        key = str(pos[it])
        output_res.setdefault(key, {"prompt": question[pos[it]], "rewards": {}})["rewards"][int(idx)] = float(r)
    for v in output_res.values():  # as get_gsm_sample_rewards.py stores them
        v["best_sample"] = max(v["rewards"], key=v["rewards"].get)
        v["best_reward"] = max(v["rewards"].values())
    os.makedirs(os.path.join(root, "benchmark_rewards", model, "gsm"), exist_ok=True)
    with open(os.path.join(root, "benchmark_rewards", model, "gsm", f"{RM}.json"), "w") as fw:
        json.dump(output_res, fw, indent=4)
    return model


class FileLoader:
    """Reads the paper's files exactly as its scripts do."""

    def __init__(self, root):
        self.root = root

    def exists(self, path) -> bool:
        return os.path.exists(path)

    def jsonl(self, path) -> list:
        with open(path) as fr:
            return [json.loads(line) for line in fr]

    def json(self, path):
        return json.load(open(path))

    def listdir(self, path) -> list:
        return os.listdir(path)


class MemoryLoader(FileLoader):
    """The same files parsed once up front: timing the scripts with it leaves out the reading."""

    def __init__(self, root):
        super().__init__(root)
        self.files, self.dirs = {}, {}
        for dirpath, _, names in os.walk(root):
            self.dirs[dirpath] = sorted(names)
            for name in names:
                p = os.path.join(dirpath, name)
                self.files[p] = FileLoader.jsonl(self, p) if name.endswith(".jsonl") else FileLoader.json(self, p)

    def exists(self, path):
        return path in self.files

    def jsonl(self, path):
        return self.files[path]

    def json(self, path):
        return self.files[path]

    def listdir(self, path):
        return list(self.dirs[path])


def analyse_gsm_sample(load, model, sample_num) -> dict:
    """analyse/analyse_gsm_sample.py for one model (its tiktoken output lengths left out: not a statistic here)."""
    data_path = os.path.join(load.root, "gsm")
    cur_res = []
    for sample_idx in range(sample_num):
        if not load.exists(os.path.join(data_path, f"{model}-cot-8shot-sample-{sample_idx}", "predictions.jsonl")):
            continue
        if not load.exists(os.path.join(data_path, f"{model}-cot-8shot-sample-{sample_idx}", "metrics.json")):
            continue
        cur_raw_annotation = load.jsonl(os.path.join(data_path, f"{model}-cot-8shot-sample-{sample_idx}", "predictions.jsonl"))
        metric_res = []
        for idx, item in enumerate(cur_raw_annotation):
            idx = str(idx)
            metric_res.append(item["prediction"] == item["answer"])
        cur_res.append(sum(metric_res) / len(metric_res) * 100)
    cur_res = np.array(cur_res)
    return {"Mean": cur_res.mean(), "Std": cur_res.std(), "Max": cur_res.max(), "Min": cur_res.min()}


def greedy_accuracy(load, model) -> float:
    """The greedy run's accuracy, read as analyse_gsm_sample.py reads a run (see greedy_dir)."""
    cur_raw_annotation = load.jsonl(os.path.join(greedy_dir(load.root, model), "predictions.jsonl"))
    metric_res = [item["prediction"] == item["answer"] for item in cur_raw_annotation]
    return sum(metric_res) / len(metric_res)


def eval_gsm_sample_baseline(load, model, sample_num) -> dict:
    """best_of_n_eval/eval_gsm_sample_baseline.py."""
    raw_annotations = {}
    raw_metrics = []
    for sample_idx in range(sample_num):
        if not load.exists(os.path.join(load.root, "gsm", f"{model}-cot-8shot-sample-{sample_idx}", "predictions.jsonl")):
            continue
        cur_raw_annotation = load.jsonl(
            os.path.join(load.root, "gsm", f"{model}-cot-8shot-sample-{sample_idx}", "predictions.jsonl")
        )
        metric_res = []
        for idx, item in enumerate(cur_raw_annotation):
            idx = str(idx)
            if idx not in raw_annotations:
                raw_annotations[idx] = []
            if raw_annotations[idx]:
                assert item["question"] == raw_annotations[idx][0]["question"]
            raw_annotations[idx].append(item)
            metric_res.append(item["prediction"] == item["answer"])
        raw_metrics.append(sum(metric_res) / len(metric_res))

    random_metric = []
    max_metric = []
    random.seed(42)
    for key in raw_annotations:
        cur_item = random.choice(raw_annotations[key])
        random_metric.append(cur_item["prediction"] == cur_item["answer"])
        max_metric.append(any([item["prediction"] == item["answer"] for item in raw_annotations[key]]))
    return {
        "Best Run": max(raw_metrics),
        "Worst Run": min(raw_metrics),
        "Average": sum(raw_metrics) / len(raw_metrics),
        "Random Sample": sum(random_metric) / len(random_metric),
        "Oracle Sample": sum(max_metric) / len(max_metric),
    }


def eval_gsm_sample_reward(load, model, sample_num) -> dict:
    """best_of_n_eval/eval_gsm_sample_reward.py (its benchmark_rewards/ is under the data root here, not the cwd)."""
    raw_annotations = {}
    for sample_idx in range(sample_num):
        cur_raw_annotation = load.jsonl(
            os.path.join(load.root, "gsm", f"{model}-cot-8shot-sample-{sample_idx}", "predictions.jsonl")
        )
        metric_res = []
        for idx, item in enumerate(cur_raw_annotation):
            idx = str(idx)
            if idx not in raw_annotations:
                raw_annotations[idx] = []
            if raw_annotations[idx]:
                assert item["question"] == raw_annotations[idx][0]["question"]
            raw_annotations[idx].append(item)
            metric_res.append(item["prediction"] == item["answer"])

    max_metric = []
    for key in raw_annotations:
        max_metric.append(any([item["prediction"] == item["answer"] for item in raw_annotations[key]]))
    out = {"Oracle Sample": sum(max_metric) / len(max_metric)}

    reward_dir = os.path.join(load.root, "benchmark_rewards", model, "gsm")
    for file in load.listdir(reward_dir):
        reward_name = file.split(".")[0]
        rewards = load.json(os.path.join(reward_dir, file))
        reward_max_annotations = []
        random.seed(42)
        for key in raw_annotations:
            cur_rewards = rewards[str(key)]["rewards"]
            # select the max reward from the first args.sample_num items
            cur_max_rewards, cur_max_idx = -999999, -1
            for sample_idx in cur_rewards:
                if int(sample_idx) >= sample_num:
                    continue
                if cur_rewards[sample_idx] > cur_max_rewards:
                    cur_max_rewards = cur_rewards[sample_idx]
                    cur_max_idx = sample_idx
            cur_max_idx = int(cur_max_idx)
            cur_item = raw_annotations[key][cur_max_idx]
            reward_max_annotations.append(cur_item["prediction"] == cur_item["answer"])
        out[f"{reward_name} Reward Max Sample"] = sum(reward_max_annotations) / len(reward_max_annotations)
    return out


def paper_gap(load, model, n) -> dict:
    """Table 2's numbers: analyse_gsm_sample.py plus the greedy run (gap = greedy - mean, by hand in the paper)."""
    return {"analyse": analyse_gsm_sample(load, model, n), "greedy": greedy_accuracy(load, model)}


def paper_best_of_n(load, model, n, ns=PAPER_NS) -> dict:
    """The best-of-N figure: eval_gsm_sample_baseline.py at N = n, eval_gsm_sample_reward.py at each N in ns."""
    return {
        "baseline": eval_gsm_sample_baseline(load, model, n),
        "reward": {m: eval_gsm_sample_reward(load, model, m) for m in ns},
    }


# ------------------------------------------------------------------------------------------ (b) per-item NumPy
def numpy_cells(df) -> list[dict]:
    """Per (model, benchmark, config) cell, per item (sorted by item_id): its scores, rewards, answers by sample_idx."""
    out = []
    for (model, bench, cfg, greedy), cell in df.groupby(["model", "benchmark", "config_key", "greedy"], sort=True):
        cell = cell.sort_values(["item_id", "sample_idx"])
        items, S, R, A = [], [], [], []
        for item_id, g in cell.groupby("item_id", sort=True):
            items.append(item_id)
            S.append(g["score"].to_numpy(float))
            R.append(g["reward"].to_numpy(float))
            A.append(g["extracted"].to_numpy(object))
        if len({len(s) for s in S}) != 1:
            raise ValueError(f"{model}/{bench}/{cfg}: items have unequal sample counts")
        out.append({"model": model, "benchmark": bench, "greedy": bool(greedy), "items": items, "S": S, "R": R, "A": A})
    return out


def _se(x) -> float:
    return np.std(x, ddof=1) / np.sqrt(len(x))


def _boot(X, n_boot, seed=0):
    """Percentile bootstrap CI of the column means of X over items, one resample at a time."""
    rng = np.random.default_rng(seed)
    n = len(X)
    means = np.empty((n_boot,) + X.shape[1:])
    for b in range(n_boot):
        means[b] = X[rng.integers(0, n, n)].mean(0)
    return np.percentile(means, [50 * (1 - CI), 50 * (1 + CI)], axis=0)


def numpy_gap(cs, n_boot=N_BOOT, ddof=0) -> list[dict]:
    """gap_table's numbers per sampled cell, against the greedy cell of its (model, benchmark)."""
    rows = []
    for s in cs:
        if s["greedy"]:
            continue
        g = next(c for c in cs if c["greedy"] and (c["model"], c["benchmark"]) == (s["model"], s["benchmark"]))
        if g["items"] != s["items"]:
            raise ValueError("greedy and sampled items differ")
        G = np.array([np.mean(x) for x in g["S"]])
        pbar = np.array([np.mean(x) for x in s["S"]])
        S = np.vstack(s["S"])
        runs = np.mean(S, axis=0)  # run j: the j-th sample of every item
        d = G - pbar
        row = {
            "greedy": np.mean(G),
            "greedy_se": _se(G),
            "mean": np.mean(pbar),
            "mean_se": _se(pbar),
            "single_run_se": np.mean([_se(S[:, j]) for j in range(S.shape[1])]),
            "std": np.std(runs, ddof=ddof),
            "best": np.max(runs),
            "worst": np.min(runs),
            "gap": np.mean(d),
            "gap_se": _se(d),
            "p_value": sps.ttest_rel(G, pbar).pvalue,
        }
        lo, hi = _boot(np.column_stack([G, pbar, d]), n_boot)
        for i, name in enumerate(("greedy", "mean", "gap")):
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = lo[i], hi[i]
        rows.append(row)
    return rows


def _rank_weights(n) -> np.ndarray:
    """W[i, k-1] = P(rank i, 0-based, is the best of a random k-subset) = C(n-1-i, k-1) / C(n, k)."""
    i, k = np.arange(n)[:, None], np.arange(1, n + 1)[None, :]
    return special.comb(n - 1 - i, k - 1) / special.comb(n, k)


def _ranked(scores, sel) -> np.ndarray:
    """An item's scores ranked by sel (best first, NaN last), each tie group replaced by its mean."""
    sel = np.where(np.isnan(sel), -np.inf, sel)
    order = np.argsort(-sel, kind="stable")
    _, inv, cnt = np.unique(-sel[order], return_inverse=True, return_counts=True)
    return (np.bincount(inv, scores[order]) / cnt)[inv]


def _curves_out(curves: dict, n_boot) -> dict:
    V = np.hstack([np.vstack(v) for v in curves.values()])  # items x (methods * k)
    lo, hi = _boot(V, n_boot) if n_boot else (None, None)
    return {"method": list(curves), "value": V.mean(0), "se": V.std(0, ddof=1) / np.sqrt(len(V)), "ci_low": lo, "ci_high": hi}


def numpy_curves(cs, n_boot=N_BOOT, threshold=1.0) -> list[dict]:
    """best_of_k_curves' oracle / pass / random / reward curves, k = 1..n, per sampled cell, item by item."""
    out = []
    for c in cs:
        if c["greedy"]:
            continue
        n = len(c["S"][0])
        W, ks = _rank_weights(n), np.arange(1, n + 1)
        curves = {"oracle": [], "pass": [], "random": [], "reward": []}
        for s, r in zip(c["S"], c["R"]):
            curves["oracle"].append(_ranked(s, s) @ W)
            curves["pass"].append(1 - special.comb(n - np.sum(s >= threshold), ks) / special.comb(n, ks))
            curves["random"].append(np.full(n, np.mean(s)))
            curves["reward"].append(_ranked(s, r) @ W)
        out.append(_curves_out(curves, n_boot))
    return out


def numpy_maj_item(scores, answers) -> np.ndarray:
    """One item's exact maj@k, k = 1..n: the vote's expected score over all k-subsets, ties split evenly.

    For each top count t, a generating-function DP over the answers that can reach t: [j, d] holds the number of
    d-subsets with j answers at exactly t (and their summed top-answer value); answers with fewer than t samples
    can never be on top and fold into one (1+z)^R factor. A missing answer is its own answer."""
    n = len(scores)
    groups = {}
    for i, (s, a) in enumerate(zip(scores, answers)):
        missing = a is None or (isinstance(a, float) and np.isnan(a))
        groups.setdefault(("missing", i) if missing else a, []).append(s)
    cs = np.array([len(g) for g in groups.values()])
    vs = np.array([np.mean(g) for g in groups.values()])
    B = special.comb(np.arange(n + 1)[:, None], np.arange(n + 1)[None, :])
    total = np.zeros(n + 1)
    for t in range(1, cs.max() + 1):
        top = np.flatnonzero(cs >= t)
        J = len(top) + 1
        N = np.zeros((J, n + 1))
        V = np.zeros((J, n + 1))
        N[0, 0] = 1.0
        for a in top:
            c, v, low = cs[a], vs[a], B[cs[a], :t]  # x < t samples of this answer in the subset
            N2 = np.array([np.convolve(row, low)[: n + 1] for row in N])
            V2 = np.array([np.convolve(row, low)[: n + 1] for row in V])
            N2[1:, t:] += B[c, t] * N[:-1, : n + 1 - t]  # x = t: one more answer at the top count
            V2[1:, t:] += B[c, t] * (V[:-1, : n + 1 - t] + v * N[:-1, : n + 1 - t])
            N, V = N2, V2
        rest = B[cs[cs < t].sum(), : n + 1]
        total += sum(np.convolve(V[j], rest)[: n + 1] / j for j in range(1, J))
    return total[1:] / B[n, 1:]


def numpy_majority(cs, n_boot=N_BOOT) -> list[dict]:
    """best_of_k_curves' majority curve per sampled cell, item by item."""
    return [
        _curves_out({"majority": [numpy_maj_item(s, a) for s, a in zip(c["S"], c["A"])]}, n_boot) for c in cs if not c["greedy"]
    ]


def numpy_stats(df, n_boot: int = N_BOOT) -> dict:
    cs = numpy_cells(df)
    return {"gap": numpy_gap(cs, n_boot), "curves": numpy_curves(cs, n_boot), "majority": numpy_majority(cs, n_boot)}


# ------------------------------------------------------------------------------------------ agreement
def _check(name, x, y, diffs: dict) -> None:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape:
        raise AssertionError(f"{name}: shapes {x.shape} vs {y.shape}")
    if not (np.isnan(x) == np.isnan(y)).all():
        raise AssertionError(f"{name}: NaNs differ")
    err = float(np.nanmax(np.abs(x - y), initial=0.0))
    if not err <= TOL:
        raise AssertionError(f"{name}: max |diff| {err:.2e} > {TOL:g}")
    diffs[name] = err


def _gbg_curve_values(t, col):
    return {m: g[col].to_numpy() for m, g in t.groupby("selector", sort=False)}


def compare(df, gbg: dict, paper: dict, npy: dict) -> dict:
    """Assert that gbg, (a) and (b) agree where they compute the same thing; returns {what: max |diff|}.

    gbg vs (b): every gap-table field (CIs and p-value included: both draw the same resamples from the same seed)
    and every curve's value/se/CI. gbg vs (a): greedy, mean, std (ddof=0), best, worst, gap, and oracle (= pass@N)
    and reward-selected score at k = N. (a)'s first-N oracle/reward at each N in its sweep are a different estimate
    from gbg's average over all N-subsets; they are checked against gbg's estimator on the first N samples."""
    diffs = {}
    gap = gbg["gap"].iloc[0]
    for f in GAP_FIELDS:
        _check(f"gap.{f}: gbg vs (b)", gap[f], npy["gap"][0][f], diffs)
    for part in ("curves", "majority"):
        t = gbg[part]
        for col in ("value", "se", "ci_low", "ci_high"):
            ours, b = _gbg_curve_values(t, col), npy[part][0]
            if list(ours) != b["method"]:
                raise AssertionError(f"{part}: methods {list(ours)} vs {b['method']}")
            _check(f"{part}.{col}: gbg vs (b)", np.concatenate(list(ours.values())), b[col], diffs)

    an, base = paper["gap"]["analyse"], paper["best_of_n"]["baseline"]
    for f, a in (("mean", an["Mean"] / 100), ("std", an["Std"] / 100), ("best", an["Max"] / 100), ("worst", an["Min"] / 100)):
        _check(f"gap.{f}: gbg vs (a) analyse", gap[f], a, diffs)
    for f, a in (("mean", base["Average"]), ("best", base["Best Run"]), ("worst", base["Worst Run"])):
        _check(f"gap.{f}: gbg vs (a) baseline", gap[f], a, diffs)
    _check("gap.greedy: gbg vs (a)", gap["greedy"], paper["gap"]["greedy"], diffs)
    _check("gap.gap: gbg vs (a) greedy - Mean", gap["gap"], paper["gap"]["greedy"] - an["Mean"] / 100, diffs)
    t = gbg["curves"].set_index(["selector", "k"])["value"]
    n = int(gbg["curves"]["n"].iloc[0])
    _check("oracle@N: gbg vs (a) baseline", t["oracle", n], base["Oracle Sample"], diffs)
    _check("pass@N: gbg vs (a) baseline", t["pass", n], base["Oracle Sample"], diffs)
    cell = next(c for c in st.cells(df) if not c.greedy)
    S, R = cell.matrix("score"), cell.matrix("reward")
    for m, res in paper["best_of_n"]["reward"].items():
        if m == n:
            _check("oracle@N: gbg vs (a) reward script", t["oracle", n], res["Oracle Sample"], diffs)
            _check("reward@N: gbg vs (a) reward script", t["reward", n], res[f"{RM} Reward Max Sample"], diffs)
        first = st.best_of_k(S[:, :m], S[:, :m], [m]).mean(), st.best_of_k(S[:, :m], R[:, :m], [m]).mean()
        _check(f"first-{m} oracle: gbg estimator vs (a)", first[0], res["Oracle Sample"], diffs)
        _check(f"first-{m} reward: gbg estimator vs (a)", first[1], res[f"{RM} Reward Max Sample"], diffs)
    return diffs


# ------------------------------------------------------------------------------------------ main
def _time(fn, repeat: int):
    """(median seconds, last result) over ``repeat`` calls."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each implementation (median reported)")
    ap.add_argument("--quick", action="store_true", help="a small run: 100 items x 16 samples, N = 4, 8, 16, one repeat")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    n_items, n_samples, ns, repeat = (100, 16, (4, 8, 16), 1) if args.quick else (1319, 128, PAPER_NS, args.repeat)

    df = make_table(n_items, n_samples)
    print(
        f"table: {len(df):,} rows ({n_items} items x {n_samples} samples + greedy, one model, no item groups); "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; median of {repeat} run(s) each"
    )
    with tempfile.TemporaryDirectory(prefix="gbg-bench-") as root:
        model = write_paper_files(df, root)
        size = sum(f.stat().st_size for f in Path(root).rglob("*") if f.is_file())
        print(f"(a)'s files: {n_samples + 1} predictions.jsonl runs + 1 reward file, {size / 2**20:.0f} MiB, in {root}")
        gbg_stats(df, 10)  # warm-up: imports, caches
        fl, mem = FileLoader(root), MemoryLoader(root)
        T, R = {}, {}
        T["gbg", "gap"], R["gbg", "gap"] = _time(lambda: gbg_gap(df), repeat)
        T["gbg", "curves"], R["gbg", "curves"] = _time(lambda: gbg_curves(df), repeat)
        T["gbg", "majority"], R["gbg", "majority"] = _time(lambda: gbg_majority(df), repeat)
        for tag, load in (("a_read", fl), ("a_mem", mem)):
            T[tag, "gap"], R[tag, "gap"] = _time(lambda: paper_gap(load, model, n_samples), repeat)
            T[tag, "curves"], R[tag, "curves"] = _time(lambda: paper_best_of_n(load, model, n_samples, ns), repeat)
        T["b", "cells"], cs = _time(lambda: numpy_cells(df), repeat)
        T["b", "gap"], R["b", "gap"] = _time(lambda: numpy_gap(cs), repeat)
        T["b", "curves"], R["b", "curves"] = _time(lambda: numpy_curves(cs), repeat)
        T["b", "majority"], R["b", "majority"] = _time(lambda: numpy_majority(cs), repeat)
    parts = ("gap", "curves", "majority")
    diffs = {}
    for tag in ("a_read", "a_mem"):  # (a) from the files and from the parsed records must give the same numbers
        paper = {"gap": R[tag, "gap"], "best_of_n": R[tag, "curves"]}
        diffs.update(compare(df, {k: R["gbg", k] for k in parts}, paper, {k: R["b", k] for k in parts}))
    worst_a = max(v for k, v in diffs.items() if "(a)" in k)
    worst_b = max(v for k, v in diffs.items() if "(b)" in k)
    print(f"agreement (asserted <= {TOL:g}, {len(diffs)} checks): max |gbg - (a)| {worst_a:.1e}, max |gbg - (b)| {worst_b:.1e}")

    def f(x):
        return "-" if x is None else f"{x:.3f}"

    def ratio(x, y):
        return "-" if x is None or not y else f"{x / y:.1f}x"

    rows = [
        ("gap table / run stats", "gap"),
        ("best-of-N curves", "curves"),
        ("maj@k curves", "majority"),
    ]
    head = f"{'seconds':<24s}{'gbg':>8s}{'(a) read+comp':>15s}{'(a) comp':>10s}{'(b) numpy':>11s}"
    head += f"{'(a)r/gbg':>10s}{'(a)c/gbg':>10s}{'(b)/gbg':>9s}"
    print(head)
    tot = {k: 0.0 for k in ("gbg", "a_read", "a_mem", "b")}
    for label, part in rows + [("(b) table -> item arrays", "cells")]:
        v = {k: T.get((k, part)) for k in tot}
        for k, x in v.items():
            tot[k] += x or 0.0
        print(
            f"{label:<24s}{f(v['gbg']):>8s}{f(v['a_read']):>15s}{f(v['a_mem']):>10s}{f(v['b']):>11s}"
            f"{ratio(v['a_read'], v['gbg']):>10s}{ratio(v['a_mem'], v['gbg']):>10s}{ratio(v['b'], v['gbg']):>9s}"
        )
    no_maj = {k: tot[k] - (T.get((k, "majority")) or 0.0) for k in tot}
    for label, v in (("total", tot), ("total without maj@k", no_maj)):
        print(
            f"{label:<24s}{f(v['gbg']):>8s}{f(v['a_read']):>15s}{f(v['a_mem']):>10s}{f(v['b']):>11s}"
            f"{ratio(v['a_read'], v['gbg']):>10s}{ratio(v['a_mem'], v['gbg']):>10s}{ratio(v['b'], v['gbg']):>9s}"
        )
    print(
        f"includes: gbg and (b) start from the table in memory (no file or store reading; each gbg call splits the table "
        f"into cells itself, (b) splits it once, its own row) and compute greedy, mean, std, "
        f"best, worst, gap, SEs, a paired t-test and {N_BOOT}-resample bootstrap CIs, and oracle/pass@k/random/reward "
        f"curves (+ maj@k) exact at every k = 1..{n_samples} with {N_BOOT}-resample bands; (a) computes mean/std/max/min "
        f"of the run accuracies, the greedy accuracy, one random.choice draw, and first-N any()/reward-argmax at "
        f"N = {', '.join(map(str, ns))} (no SEs, CIs, tests, maj@k), re-reading the per-run JSONL files once per script "
        f"and per N as the paper's shell scripts do (read+comp; files in the page cache) or on records parsed beforehand (comp)."
    )
    g = R["gbg", "gap"].iloc[0]
    a = R["a_read", "curves"]
    print(
        f"gap table: greedy {g.greedy:.3f}, sampling mean {g['mean']:.3f} ± {g['std']:.3f} (ddof=0) over {g.n_runs} runs, "
        f"gap {g.gap:+.3f} [{g.gap_ci_low:+.3f}, {g.gap_ci_high:+.3f}], p = {g.p_value:.1e}"
    )
    t = R["gbg", "curves"].set_index(["selector", "k"]).value
    print(
        "best-of-N, paper's first-N vs gbg's all-subset mean: "
        + "; ".join(
            f"N={m} oracle {a['reward'][m]['Oracle Sample']:.3f}/{t['oracle', m]:.3f} "
            f"reward {a['reward'][m][f'{RM} Reward Max Sample']:.3f}/{t['reward', m]:.3f}"
            for m in ns
        )
        + f"; random: one draw {a['baseline']['Random Sample']:.3f} vs mean {t['random', 1]:.3f}"
    )


if __name__ == "__main__":
    main()
