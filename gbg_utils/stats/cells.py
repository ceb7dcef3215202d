"""Cells: one `by` group times one decoding config, as an items x N matrix (the unit every statistic works on)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

BY = ("model", "benchmark")
CONFIG_COLS = ("config_key", "temperature", "top_p", "top_k", "repetition_penalty")
PARAM_COLS = CONFIG_COLS[1:]


class _Table:
    """The tidy frame plus a cache of its columns as numpy arrays (cells index into them)."""

    def __init__(self, df: pd.DataFrame):
        for c in ("item_id", "greedy", "sample_idx", "score"):
            if c not in df.columns:
                raise KeyError(f"column {c!r} missing from the scored table")
        self.df = df
        self.item_codes, self.item_ids = pd.factorize(df["item_id"], sort=True)
        self._cols: dict[str, np.ndarray] = {}

    def col(self, name: str) -> np.ndarray:
        if name not in self._cols:
            if name not in self.df.columns:
                raise KeyError(f"column {name!r} missing from the scored table")
            self._cols[name] = self.df[name].to_numpy()
        return self._cols[name]


@dataclass
class Cell:
    """One (by..., decoding config) group as an items x N grid of row positions into the table."""

    key: dict
    greedy: bool
    items: np.ndarray  # item codes, sorted
    take: np.ndarray  # (n_items, n) row positions, samples ordered by sample_idx
    table: _Table

    @property
    def n_items(self) -> int:
        return self.take.shape[0]

    @property
    def n(self) -> int:
        return self.take.shape[1]

    def matrix(self, col: str, dtype=float) -> np.ndarray:
        a = self.table.col(col)[self.take]
        return a if dtype is None else a.astype(dtype)

    def item_ids(self) -> np.ndarray:
        return np.asarray(self.table.item_ids[self.items])

    def groups(self) -> np.ndarray | None:
        if "group" not in self.table.df.columns:
            return None
        G = self.table.col("group")[self.take]
        na = pd.isna(G)
        # first sample with a group: an unscored sample comes out of store.frame without one
        g = G[np.arange(len(G)), np.argmax(~na, axis=1)] if G.size else G[:, 0]
        return None if pd.isna(g).all() else g

    def subset(self, pos) -> Cell:
        return Cell(self.key, self.greedy, self.items[pos], self.take[pos], self.table)


def _key_cols(df: pd.DataFrame, by) -> tuple[list[str], list[str]]:
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in by if c not in df.columns]
    if missing:
        raise KeyError(f"by= columns not in the table: {missing}")
    return by, [c for c in CONFIG_COLS if c in df.columns and c not in by]


def cells(df: pd.DataFrame, by=BY, ragged: str = "truncate") -> list[Cell]:
    """Split the table into cells (``by`` x decoding config, greedy separate), each an items x N grid.

    >>> [(c.key["model"], c.greedy, c.n_items, c.n) for c in cells(df)]
    [('m1', False, 1319, 128), ('m1', True, 1319, 1)]
    """
    if ragged not in ("truncate", "raise"):
        raise ValueError("ragged must be 'truncate' or 'raise'")
    by, cfg = _key_cols(df, by)
    tab = _Table(df)
    sidx = df["sample_idx"].to_numpy(np.int64)
    names = by + cfg + ["greedy"]
    out = []
    for key, pos in df.groupby(names, dropna=False, sort=True).indices.items():
        key = dict(zip(names, key if isinstance(key, tuple) else (key,)))
        greedy = bool(key.pop("greedy"))
        ic = tab.item_codes[pos]
        order = np.lexsort((sidx[pos], ic))
        pos, ic = pos[order], ic[order]
        si = sidx[pos]
        if np.any((ic[1:] == ic[:-1]) & (si[1:] == si[:-1])):
            raise ValueError(
                f"duplicate (item_id, sample_idx) rows in cell {key} (greedy={greedy}); "
                "are two models/configs sharing one key? add the distinguishing column to by="
            )
        items, start, counts = np.unique(ic, return_index=True, return_counts=True)
        n = int(counts.min())
        if (counts != n).any():
            msg = f"cell {key} (greedy={greedy}): items have {n}..{counts.max()} samples"
            if ragged == "raise":
                raise ValueError(msg + "; pass ragged='truncate' to keep the first N_min of every item")
            warnings.warn(msg + f"; keeping the first {n} samples of every item (by sample_idx)", stacklevel=3)
        out.append(Cell(key, greedy, items, pos[start[:, None] + np.arange(n)], tab))
    return out


def _by_groups(cs: list[Cell], by: list[str]):
    """Yield (greedy cell or None, sampled cells) per ``by`` group."""
    groups: dict[tuple, list[Cell]] = {}
    for c in cs:
        groups.setdefault(tuple(c.key[b] for b in by), []).append(c)
    for k, lst in groups.items():
        gs = [c for c in lst if c.greedy]
        if len(gs) > 1:
            raise ValueError(
                f"{len(gs)} greedy configs for {dict(zip(by, k))}; add the column that tells "
                "them apart (e.g. 'repetition_penalty') to by="
            )
        yield (gs[0] if gs else None), [c for c in lst if not c.greedy]


def _align(a: Cell, b: Cell) -> tuple[Cell, Cell]:
    common, ia, ib = np.intersect1d(a.items, b.items, assume_unique=True, return_indices=True)
    if len(common) < max(a.n_items, b.n_items):
        warnings.warn(
            f"{b.key}: greedy has {a.n_items} items, sampling {b.n_items}; paired statistics use the {len(common)} shared",
            stacklevel=3,
        )
    return a.subset(ia), b.subset(ib)


def _one_cell(df: pd.DataFrame, ragged: str) -> Cell:
    cs = cells(df, by=[c for c in BY if c in df.columns], ragged=ragged)
    if len(cs) != 1:
        raise ValueError(f"expected rows of one (model, benchmark, config), got {len(cs)} cells; filter first")
    return cs[0]


def score_matrix(df: pd.DataFrame, value: str = "score", ragged: str = "truncate") -> pd.DataFrame:
    """Items x samples matrix of ``value`` for the rows of one cell (one model, benchmark, config).

    >>> score_matrix(df[(df.model == "m1") & ~df.greedy]).shape
    (1319, 128)
    """
    c = _one_cell(df, ragged)
    return pd.DataFrame(
        c.matrix(value, dtype=None), index=pd.Index(c.item_ids(), name="item_id"), columns=pd.RangeIndex(c.n, name="sample")
    )
