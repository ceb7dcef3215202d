"""The sample store: every completion and every score, append-only, crash-safe, in one SQLite file.

Why SQLite (WAL mode): each batch of completions is one transaction, so a SIGKILL at any moment leaves
either the whole batch or none of it (a half-written record cannot exist: the journal rolls it back on
the next open); primary keys make a rerun's inserts idempotent (nothing duplicated); several processes
(two notebooks, a notebook and a CLI run) can share one store safely; and it ships with Python. JSONL
would need our own torn-line detection and dedup; Parquet cannot be appended to row by row.

    >>> store = SampleStore("outputs/store.sqlite")
    >>> store.samples(benchmark="humaneval")          # a DataFrame
    >>> store.frame(scorer="humaneval")               # the tidy table the statistics take
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from .decoding import DecodingConfig

SCHEMA_VERSION = 1
KEY = ("model", "benchmark", "item_id", "config_key", "sample_idx")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, created REAL NOT NULL, provenance TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS configs (
    config_key TEXT PRIMARY KEY, config TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    model TEXT NOT NULL, benchmark TEXT NOT NULL, item_id TEXT NOT NULL, config_key TEXT NOT NULL,
    sample_idx INTEGER NOT NULL, text TEXT NOT NULL, n_tokens INTEGER NOT NULL, finish_reason TEXT,
    mean_logprob REAL, seed INTEGER, prompt_hash TEXT, run_id TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (model, benchmark, item_id, config_key, sample_idx));
CREATE TABLE IF NOT EXISTS scores (
    model TEXT NOT NULL, benchmark TEXT NOT NULL, item_id TEXT NOT NULL, config_key TEXT NOT NULL,
    sample_idx INTEGER NOT NULL, scorer TEXT NOT NULL, scorer_version TEXT NOT NULL,
    score REAL, extracted TEXT, reason TEXT, item_group TEXT, created REAL NOT NULL,
    PRIMARY KEY (model, benchmark, item_id, config_key, sample_idx, scorer, scorer_version));
"""


@dataclass
class Sample:
    """One completion, keyed by its identity."""

    model: str
    benchmark: str
    item_id: str
    config_key: str
    sample_idx: int
    text: str
    n_tokens: int
    finish_reason: str | None = None
    mean_logprob: float | None = None
    seed: int | None = None
    prompt_hash: str | None = None


class SampleStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            v = int(con.execute("SELECT v FROM meta WHERE k='schema_version'").fetchone()[0])
        if v != SCHEMA_VERSION:
            raise RuntimeError(f"store {self.path} has schema version {v}, this gbg reads {SCHEMA_VERSION}")

    @contextmanager
    def _connect(self):
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable against process death
            yield con
        finally:
            con.close()

    @contextmanager
    def _tx(self):
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # --- runs and configs ----------------------------------------------------------------------
    def new_run(self, provenance: dict) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:8]
        with self._tx() as con:
            con.execute("INSERT INTO runs VALUES (?, ?, ?)", (run_id, time.time(), json.dumps(provenance, default=str)))
        return run_id

    def runs(self) -> pd.DataFrame:
        with self._connect() as con:
            df = pd.read_sql("SELECT * FROM runs ORDER BY created", con)
        df["provenance"] = df["provenance"].map(json.loads)
        return df

    def add_config(self, config: DecodingConfig) -> str:
        with self._tx() as con:
            con.execute("INSERT OR IGNORE INTO configs VALUES (?, ?)", (config.key, json.dumps(config.identity(), sort_keys=True)))
        return config.key

    def configs(self) -> pd.DataFrame:
        with self._connect() as con:
            rows = con.execute("SELECT config_key, config FROM configs").fetchall()
        return pd.DataFrame([{"config_key": k, **json.loads(c)} for k, c in rows])

    # --- samples -------------------------------------------------------------------------------
    def existing(self, model: str, benchmark: str, config_key: str) -> dict[str, set[int]]:
        """Sample indices already stored, per item id."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT item_id, sample_idx FROM samples WHERE model=? AND benchmark=? AND config_key=?",
                (model, benchmark, config_key),
            ).fetchall()
        out: dict[str, set[int]] = {}
        for item, idx in rows:
            out.setdefault(item, set()).add(idx)
        return out

    def add_samples(self, samples: Iterable[Sample], run_id: str) -> int:
        """Insert a batch in one transaction; samples already present are kept as they were."""
        now = time.time()
        rows = [
            (s.model, s.benchmark, str(s.item_id), s.config_key, int(s.sample_idx), s.text, int(s.n_tokens),
             s.finish_reason, s.mean_logprob, s.seed, s.prompt_hash, run_id, now)
            for s in samples
        ]
        with self._tx() as con:
            before = con.total_changes
            con.executemany("INSERT OR IGNORE INTO samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            return con.total_changes - before

    def samples(self, model: str | None = None, benchmark: str | None = None, config_key: str | None = None) -> pd.DataFrame:
        """All stored completions matching the filters, as a DataFrame."""
        where, args = _where(model=model, benchmark=benchmark, config_key=config_key)
        with self._connect() as con:
            return pd.read_sql(f"SELECT * FROM samples {where} ORDER BY model, benchmark, config_key, item_id, sample_idx", con, params=args)

    # --- scores --------------------------------------------------------------------------------
    def scored_keys(self, scorer: str, scorer_version: str, benchmark: str | None = None) -> set[tuple]:
        where, args = _where(scorer=scorer, scorer_version=scorer_version, benchmark=benchmark)
        with self._connect() as con:
            return set(con.execute(f"SELECT {', '.join(KEY)} FROM scores {where}", args).fetchall())

    def add_scores(self, rows: Iterable[dict]) -> int:
        """Each row: the sample key, scorer, scorer_version, score, extracted, reason, item_group."""
        now = time.time()
        vals = [
            (r["model"], r["benchmark"], str(r["item_id"]), r["config_key"], int(r["sample_idx"]), r["scorer"], r["scorer_version"],
             None if r.get("score") is None else float(r["score"]), r.get("extracted"), r.get("reason"), r.get("item_group"), now)
            for r in rows
        ]
        with self._tx() as con:
            before = con.total_changes
            con.executemany("INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", vals)
            return con.total_changes - before

    def scores(self, scorer: str | None = None, benchmark: str | None = None) -> pd.DataFrame:
        where, args = _where(scorer=scorer, benchmark=benchmark)
        with self._connect() as con:
            return pd.read_sql(f"SELECT * FROM scores {where}", con, params=args)

    # --- the tidy table ------------------------------------------------------------------------
    def frame(self, scorer: str | None = None, scorer_version: str | None = None, model: str | None = None,
              benchmark: str | None = None, extra_scorers: Iterable[str] = ()) -> pd.DataFrame:
        """Samples joined with their decoding config and (latest-version) score: the statistics' input.

        Columns: model, benchmark, item_id, group, config_key, greedy, temperature, top_p, top_k,
        repetition_penalty, max_new_tokens, seed, sample_idx, score, extracted, reason, n_tokens,
        finish_reason, mean_logprob, text, plus one column per name in `extra_scorers` (e.g. rewards).
        `scorer` defaults to the benchmark name (each benchmark's own scorer).
        """
        df = self.samples(model=model, benchmark=benchmark)
        cfg = self.configs()
        if df.empty:
            return df
        df = df.merge(cfg, on="config_key", how="left")
        df["greedy"] = df["temperature"] == 0
        sc = self.scores(benchmark=benchmark)
        own = sc[sc["scorer"] == scorer] if scorer else sc[sc["scorer"] == sc["benchmark"]]
        if scorer_version:
            own = own[own["scorer_version"] == scorer_version]
        own = _latest(own)[list(KEY) + ["score", "extracted", "reason", "item_group"]]
        df = df.merge(own, on=list(KEY), how="left").rename(columns={"item_group": "group"})
        for name in extra_scorers:
            ex = _latest(sc[sc["scorer"] == name])[list(KEY) + ["score"]].rename(columns={"score": name})
            df = df.merge(ex, on=list(KEY), how="left")
        return df


def _latest(sc: pd.DataFrame) -> pd.DataFrame:
    """One score per sample: the newest scorer version wins (versions are strings like '1', '2')."""
    if sc.empty:
        return sc
    return sc.sort_values(["scorer_version", "created"]).drop_duplicates(list(KEY) + ["scorer"], keep="last")


def _where(**kw) -> tuple[str, list]:
    conds = [(k, v) for k, v in kw.items() if v is not None]
    if not conds:
        return "", []
    return "WHERE " + " AND ".join(f"{k}=?" for k, _ in conds), [v for _, v in conds]
