"""Rankings: how the order of models changes with decoding (Kendall's tau-b, rank flips; ties are not flips)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .cells import PARAM_COLS, Cell, _key_cols, cells
from .uncertainty import _nanmean

TIE_TOL = 1e-12  # scores closer than this are tied (means of the same counts can differ in the last bit)


def _sgn(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) <= TIE_TOL, 0.0, np.sign(x))


def _tau_b(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Kendall tau-b between x (m,) and each row of Y (r, m)."""
    i, j = np.triu_indices(len(x), 1)
    sx, sy = _sgn(x[i] - x[j]), _sgn(Y[:, i] - Y[:, j])
    den = np.sqrt((sx != 0).sum() * (sy != 0).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (sx * sy).sum(1) / den, np.nan)


def _ranking_groups(df, by, ragged):
    """Per (by..., sampling params): models, greedy per-item scores, sampled items x N matrices, aligned."""
    by, _ = _key_cols(df, by)
    params = [c for c in PARAM_COLS if c in df.columns and c not in by]
    cs = cells(df, ["model"] + by, ragged)
    greedy: dict[tuple, Cell] = {}
    for c in cs:
        if c.greedy:
            k = tuple(c.key[b] for b in ["model"] + by)
            if k in greedy:
                raise ValueError(
                    f"several greedy configs for {dict(zip(['model'] + by, k))}; add the column "
                    "that tells them apart (e.g. 'repetition_penalty') to by="
                )
            greedy[k] = c
    groups: dict[tuple, dict[str, Cell]] = {}
    for c in cs:
        if c.greedy:
            continue
        k = tuple(c.key[b] for b in by + params)
        d = groups.setdefault(k, {})
        if c.key["model"] in d:
            raise ValueError(f"model {c.key['model']!r} has two sampled configs with params {k}")
        d[c.key["model"]] = c
    for k, d in groups.items():
        models = sorted(d)
        gcells = [greedy.get(tuple([m]) + k[: len(by)]) for m in models]
        items = d[models[0]].items
        for c in list(d.values()) + [g for g in gcells if g is not None]:
            items = np.intersect1d(items, c.items, assume_unique=True)
        if any(c.n_items != len(items) for c in d.values()):
            warnings.warn(
                f"{dict(zip(by + params, k))}: models cover different items; ranking on the {len(items)} shared", stacklevel=3
            )
        n = min(c.n for c in d.values())
        # unscored samples (NaN) are left out of a run's mean, as in gap_table
        runs = np.stack(
            [_nanmean(d[m].subset(np.searchsorted(d[m].items, items)).matrix("score")[:, :n], 0) for m in models], axis=1
        )  # (n_runs, models)
        g = np.array(
            [
                _nanmean(gc.subset(np.searchsorted(gc.items, items)).matrix("score").ravel(), 0) if gc is not None else np.nan
                for gc in gcells
            ]
        )
        yield dict(zip(by + params, k)), models, g, runs, len(items)


def rank_table(df: pd.DataFrame, by=("benchmark",), ragged: str = "truncate") -> pd.DataFrame:
    """Long table of model scores and ranks (1 = best; ties, within TIE_TOL, share the best rank) under
    greedy, the sampling mean and each sampled run, per (by..., sampling params), on the items all models
    share."""
    frames = []
    for key, models, g, runs, n_items in _ranking_groups(df, by, ragged):
        src = [("greedy", -1, g), ("mean", -1, runs.mean(0))] + [("run", j, r) for j, r in enumerate(runs)]
        for name, j, sc in src:
            rank = 1.0 + (sc[None, :] > sc[:, None] + TIE_TOL).sum(1)  # models better beyond a tie
            frames.append(
                pd.DataFrame(
                    {
                        **key,
                        "source": name,
                        "run": j,
                        "model": models,
                        "score": sc,
                        "rank": np.where(np.isnan(sc), np.nan, rank),
                        "n_items": n_items,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def rank_flips(df: pd.DataFrame, by=("benchmark",), ragged: str = "truncate") -> pd.DataFrame:
    """How often sampled runs reorder the models relative to greedy, per (by..., sampling params).

    A flip is a model pair strictly ordered under greedy and strictly reversed in a run; a tie (scores
    within TIE_TOL), under greedy or in the run, is never a flip. frac_runs_reordered: share of runs with at
    least one flip; frac_top_changed: share of runs whose top model(s) share none with greedy's (so breaking
    a greedy tie at the top is no change); pair_flip_rate: share of (strictly ordered pair, run) that flip;
    tau_mean/tau_min: Kendall tau-b of greedy vs run scores; tau_greedy_vs_mean. Orders write ties as "=".
    NaN where a model has no greedy score.
    """
    rows = []
    for key, models, g, runs, n_items in _ranking_groups(df, by, ragged):
        i, j = np.triu_indices(len(models), 1)
        sg = _sgn(g[i] - g[j])
        flips = (sg != 0) & (_sgn(runs[:, i] - runs[:, j]) == -sg)  # (n_runs, pairs)
        top_g = g >= np.max(g) - TIE_TOL
        top_r = runs >= runs.max(1, keepdims=True) - TIE_TOL
        has_g = bool(np.isfinite(g).all())
        taus = _tau_b(g, runs)

        def order(s):
            o = np.argsort(-s, kind="stable")
            return models[o[0]] + "".join(
                (" = " if abs(s[a] - s[b]) <= TIE_TOL else " > ") + models[b] for a, b in zip(o[:-1], o[1:])
            )

        rows.append(
            {
                **key,
                "n_models": len(models),
                "n_runs": runs.shape[0],
                "n_items": n_items,
                "greedy_order": order(g) if has_g else None,
                "mean_order": order(runs.mean(0)),
                "frac_runs_reordered": float(np.mean(flips.any(1))) if has_g else np.nan,
                "frac_top_changed": float(np.mean(~(top_r & top_g).any(1))) if has_g else np.nan,
                "pair_flip_rate": float(flips.sum() / max((sg != 0).sum() * runs.shape[0], 1)) if has_g else np.nan,
                "tau_mean": float(np.nanmean(taus)) if np.isfinite(taus).any() else np.nan,
                "tau_min": float(np.nanmin(taus)) if np.isfinite(taus).any() else np.nan,
                "tau_greedy_vs_mean": float(_tau_b(g, runs.mean(0)[None])[0]),
            }
        )
    return pd.DataFrame(rows)
