"""The sample store: every completion, every score and every judgment, append-only, crash-safe, in one SQLite file.

Why SQLite (WAL mode): each batch of completions is one transaction, so a SIGKILL at any moment leaves
either the whole batch or none of it (a half-written record cannot exist: the journal rolls it back on
the next open); primary keys make a rerun's inserts idempotent (nothing duplicated); several processes
(two notebooks, a notebook and a CLI run) can share one store safely; and it ships with Python. JSONL
would need our own torn-line detection and dedup; Parquet cannot be appended to row by row.

    >>> store = SampleStore("outputs/store.sqlite")
    >>> store.samples(benchmark="humaneval")          # a DataFrame
    >>> store.frame(scorer="humaneval")               # the tidy table the statistics take
    >>> store.judgments(benchmark="alpaca_eval")      # the LLM judge's cached answers (score/judge.py writes them)

Tables: runs, configs, samples, scores; and, for the judged benchmarks, judgments (one row per judged sample,
judge model, template version and game) and judge_runs (their provenance). This module is the only one that
speaks SQL.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .decoding import DecodingConfig, greedy
from .identity import config_key

SCHEMA_VERSION = 2
# A sample's identity (see identity.py): config_key covers the decoding config *and* the engine (backend,
# dtype, weights); prompt_hash the exact prompt the model received.
KEY = ("model", "benchmark", "item_id", "prompt_hash", "config_key", "sample_idx")

# The judged sample's identity (KEY: its prompt_hash is `sample_prompt_hash` here), then the judgment's.
JUDGMENT_KEY = (
    "model",
    "benchmark",
    "item_id",
    "sample_prompt_hash",
    "config_key",
    "sample_idx",
    "judge_model",
    "template_version",
    "game",
)
# A judgments row, in column order (what `add_judgments` takes); its `prompt_hash` hashes the judge request.
JUDGMENT_COLS = (*JUDGMENT_KEY, "prompt_hash", "raw", "verdict", "value", "parsed_ok", "error", "detail", "judge_run", "created")

_SAMPLE_COLS = (
    "model",
    "benchmark",
    "item_id",
    "prompt_hash",
    "config_key",
    "sample_idx",
    "text",
    "n_tokens",
    "finish_reason",
    "mean_logprob",
    "seed",
    "run_id",
    "created",
)


class StoreSchemaError(RuntimeError):
    """A store written by another schema: never read silently."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, created REAL NOT NULL, provenance TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS configs (
    config_key TEXT PRIMARY KEY, config TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    model TEXT NOT NULL, benchmark TEXT NOT NULL, item_id TEXT NOT NULL, prompt_hash TEXT NOT NULL, config_key TEXT NOT NULL,
    sample_idx INTEGER NOT NULL, text TEXT NOT NULL, n_tokens INTEGER NOT NULL, finish_reason TEXT,
    mean_logprob REAL, seed INTEGER, run_id TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (model, benchmark, item_id, prompt_hash, config_key, sample_idx));
CREATE TABLE IF NOT EXISTS scores (
    model TEXT NOT NULL, benchmark TEXT NOT NULL, item_id TEXT NOT NULL, prompt_hash TEXT NOT NULL, config_key TEXT NOT NULL,
    sample_idx INTEGER NOT NULL, scorer TEXT NOT NULL, scorer_version TEXT NOT NULL,
    score REAL, extracted TEXT, reason TEXT, item_group TEXT, created REAL NOT NULL,
    PRIMARY KEY (model, benchmark, item_id, prompt_hash, config_key, sample_idx, scorer, scorer_version));
"""
# The judge's tables, created on first use (a store that is never judged has none). `prompt_hash` here is the
# hash of the judge request (score.judge.request_hash), kept under its historical column name.
_JUDGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgments (
    model TEXT NOT NULL, benchmark TEXT NOT NULL, item_id TEXT NOT NULL, sample_prompt_hash TEXT NOT NULL, config_key TEXT NOT NULL,
    sample_idx INTEGER NOT NULL, judge_model TEXT NOT NULL, template_version TEXT NOT NULL, game INTEGER NOT NULL,
    prompt_hash TEXT NOT NULL, raw TEXT, verdict TEXT, value REAL, parsed_ok INTEGER NOT NULL, error TEXT,
    detail TEXT, judge_run TEXT, created REAL NOT NULL,
    PRIMARY KEY (model, benchmark, item_id, sample_prompt_hash, config_key, sample_idx, judge_model, template_version, game));
CREATE TABLE IF NOT EXISTS judge_runs (run_id TEXT PRIMARY KEY, created REAL NOT NULL, provenance TEXT NOT NULL);
"""


@dataclass
class Sample:
    """One completion, keyed by its identity."""

    model: str
    benchmark: str
    item_id: str
    prompt_hash: str
    config_key: str
    sample_idx: int
    text: str
    n_tokens: int
    finish_reason: str | None = None
    mean_logprob: float | None = None
    seed: int | None = None


class SampleStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
            row = con.execute("SELECT v FROM meta WHERE k='schema_version'").fetchone()
            has_samples = con.execute("SELECT 1 FROM sqlite_master WHERE name='samples'").fetchone()
            v = int(row[0]) if row else (1 if has_samples else SCHEMA_VERSION)
            if v != SCHEMA_VERSION:
                raise StoreSchemaError(
                    f"store {self.path} was written by gbg store schema {v}; this gbg reads schema {SCHEMA_VERSION}, whose samples are "
                    "keyed by engine (backend, dtype, weights) and exact prompt, which schema 1 did not record -- "
                    f"start a new store (move {self.path.name} aside, or pass another --store / `store:` path)"
                )
            con.executescript(_SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

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

    def add_config(self, config: DecodingConfig, engine: dict) -> str:
        """Register one decoding config on one engine; returns its config_key (identity.config_key)."""
        key = config_key(config.identity(), engine)
        twin = config_key(greedy(config).identity(), engine)
        row = {
            **config.identity(),
            "backend": engine.get("backend"),
            "dtype": engine.get("dtype"),
            "engine": json.dumps(engine, sort_keys=True),
            "greedy_key": twin,
        }
        with self._tx() as con:
            con.execute("INSERT OR IGNORE INTO configs VALUES (?, ?)", (key, json.dumps(row, sort_keys=True)))
        return key

    def configs(self) -> pd.DataFrame:
        with self._connect() as con:
            rows = con.execute("SELECT config_key, config FROM configs").fetchall()
        cols = [
            "config_key",
            "temperature",
            "top_p",
            "top_k",
            "repetition_penalty",
            "max_new_tokens",
            "seed",
            "stop",
            "backend",
            "dtype",
            "engine",
            "greedy_key",
        ]
        return pd.DataFrame([{"config_key": k, **json.loads(c)} for k, c in rows], columns=cols)

    # --- samples -------------------------------------------------------------------------------
    def existing(self, model: str, benchmark: str, config_key: str) -> dict[tuple[str, str], set[int]]:
        """Sample indices already stored, per (item id, prompt hash)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT item_id, prompt_hash, sample_idx FROM samples WHERE model=? AND benchmark=? AND config_key=?",
                (model, benchmark, config_key),
            ).fetchall()
        out: dict[tuple[str, str], set[int]] = {}
        for item, ph, idx in rows:
            out.setdefault((item, ph), set()).add(idx)
        return out

    def add_samples(self, samples: Iterable[Sample], run_id: str) -> int:
        """Insert a batch in one transaction; samples already present are kept as they were."""
        now = time.time()
        rows = [
            (
                s.model,
                s.benchmark,
                str(s.item_id),
                s.prompt_hash,
                s.config_key,
                int(s.sample_idx),
                s.text,
                int(s.n_tokens),
                s.finish_reason,
                s.mean_logprob,
                s.seed,
                run_id,
                now,
            )
            for s in samples
        ]
        with self._tx() as con:
            before = con.total_changes
            con.executemany("INSERT OR IGNORE INTO samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            return con.total_changes - before

    def samples(
        self, model: str | None = None, benchmark: str | None = None, config_key: str | None = None, text: bool = True
    ) -> pd.DataFrame:
        """All stored completions matching the filters, as a DataFrame (`text=False`: without the texts)."""
        where, args = _where(model=model, benchmark=benchmark, config_key=config_key)
        cols = "*" if text else ", ".join(c for c in _SAMPLE_COLS if c != "text")
        with self._connect() as con:
            return pd.read_sql(
                f"SELECT {cols} FROM samples {where} ORDER BY model, benchmark, config_key, item_id, sample_idx", con, params=args
            )

    # --- scores --------------------------------------------------------------------------------
    def scored_keys(self, scorer: str, scorer_version: str, benchmark: str | None = None) -> set[tuple]:
        where, args = _where(scorer=scorer, scorer_version=scorer_version, benchmark=benchmark)
        with self._connect() as con:
            return set(con.execute(f"SELECT {', '.join(KEY)} FROM scores {where}", args).fetchall())

    def add_scores(self, rows: Iterable[dict]) -> int:
        """Each row: the sample key, scorer, scorer_version, score, extracted, reason, item_group."""
        now = time.time()
        vals = [
            (
                r["model"],
                r["benchmark"],
                str(r["item_id"]),
                r["prompt_hash"],
                r["config_key"],
                int(r["sample_idx"]),
                r["scorer"],
                r["scorer_version"],
                None if r.get("score") is None else float(r["score"]),
                r.get("extracted"),
                r.get("reason"),
                r.get("item_group"),
                now,
            )
            for r in rows
        ]
        with self._tx() as con:
            before = con.total_changes
            con.executemany("INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", vals)
            return con.total_changes - before

    def scores(self, scorer: str | None = None, benchmark: str | None = None) -> pd.DataFrame:
        where, args = _where(scorer=scorer, benchmark=benchmark)
        with self._connect() as con:
            return pd.read_sql(f"SELECT * FROM scores {where}", con, params=args)

    # --- the tidy table ------------------------------------------------------------------------
    def frame(
        self,
        scorer: str | None = None,
        scorer_version: str | None = None,
        model: str | None = None,
        benchmark: str | None = None,
        extra_scorers: Iterable[str] = (),
        text: bool = True,
    ) -> pd.DataFrame:
        """Samples joined with their decoding config and engine and one score each: the statistics' input.

        Columns: model, benchmark, item_id, prompt_hash, group, config_key, greedy, temperature, top_p, top_k,
        repetition_penalty, max_new_tokens, seed, backend, dtype, engine, greedy_key, sample_idx, score,
        scorer_version, extracted, reason, n_tokens, finish_reason, mean_logprob, run_id, text, plus one
        column per name in `extra_scorers` (e.g. rewards). `scorer` defaults to the benchmark name (each
        benchmark's own scorer); `scorer_version` pins its version (else the highest, compared as versions:
        "10" after "9").
        """
        df = self.samples(model=model, benchmark=benchmark, text=text)
        cfg = self.configs()
        if df.empty:
            return df
        df = df.merge(cfg, on="config_key", how="left")
        df["greedy"] = df["temperature"] == 0
        sc = self.scores(benchmark=benchmark)
        own = sc[sc["scorer"] == scorer] if scorer else sc[sc["scorer"] == sc["benchmark"]]
        if scorer_version:
            own = own[own["scorer_version"] == scorer_version]
        own = _latest(own)[list(KEY) + ["score", "scorer_version", "extracted", "reason", "item_group"]]
        df = df.merge(own, on=list(KEY), how="left").rename(columns={"item_group": "group"})
        for name in extra_scorers:
            ex = _latest(sc[sc["scorer"] == name])[list(KEY) + ["score"]].rename(columns={"score": name})
            df = df.merge(ex, on=list(KEY), how="left")
        return df

    # --- the LLM judge's cache ----------------------------------------------------------------------
    def _judge_tables(self) -> None:
        with self._connect() as con:
            con.executescript(_JUDGE_SCHEMA)

    def judgments(
        self,
        benchmark: str | None = None,
        judge_model: str | None = None,
        template_version: str | None = None,
        model: str | None = None,
    ) -> pd.DataFrame:
        """The cached judgments matching the filters, as a DataFrame (`detail` decoded)."""
        self._judge_tables()
        conds = [
            (k, v)
            for k, v in dict(benchmark=benchmark, judge_model=judge_model, template_version=template_version, model=model).items()
            if v is not None
        ]
        where = ("WHERE " + " AND ".join(f"{k}=?" for k, _ in conds)) if conds else ""
        with self._connect() as con:
            df = pd.read_sql(
                f"SELECT * FROM judgments {where} ORDER BY {', '.join(JUDGMENT_KEY)}", con, params=[v for _, v in conds]
            )
        # pandas >= 3 reads SQL NULL in a text column as NaN: keep None, which the code and the user test for.
        for c in ("raw", "verdict", "error", "detail", "judge_run"):
            df[c] = df[c].astype(object).where(df[c].notna(), None)
        df["detail"] = df["detail"].map(lambda s: json.loads(s) if s else None)
        return df

    def add_judgments(self, rows: list[tuple]) -> None:
        """Insert or replace judgments rows (tuples in JUDGMENT_COLS order; `detail` already JSON text), in one transaction."""
        self._judge_tables()
        with self._tx() as con:
            con.executemany(f"INSERT OR REPLACE INTO judgments VALUES ({','.join('?' * len(JUDGMENT_COLS))})", rows)

    def add_judge_run(self, run_id: str, provenance: dict) -> None:
        self._judge_tables()
        with self._tx() as con:
            con.execute(
                "INSERT OR IGNORE INTO judge_runs VALUES (?, ?, ?)", (run_id, time.time(), json.dumps(provenance, default=str))
            )

    def judge_runs(self) -> pd.DataFrame:
        self._judge_tables()
        with self._connect() as con:
            df = pd.read_sql("SELECT * FROM judge_runs ORDER BY created", con)
        df["provenance"] = df["provenance"].map(json.loads)
        return df


def version_order(v: str) -> tuple:
    """Sort key for version strings: digit runs compare as numbers ('10' after '9', '1.10' after '1.9')."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"\d+|[^\d]+", str(v)))


def _latest(sc: pd.DataFrame) -> pd.DataFrame:
    """One score per sample: the highest scorer version wins (then the newest row)."""
    if sc.empty:
        return sc
    rank = {v: i for i, v in enumerate(sorted(set(sc["scorer_version"]), key=version_order))}
    order = sc["scorer_version"].map(rank)
    return (
        sc.assign(_v=order).sort_values(["_v", "created"]).drop_duplicates(list(KEY) + ["scorer"], keep="last").drop(columns="_v")
    )


def _where(**kw) -> tuple[str, list]:
    conds = [(k, v) for k, v in kw.items() if v is not None]
    if not conds:
        return "", []
    return "WHERE " + " AND ".join(f"{k}=?" for k, _ in conds), [v for _, v in conds]
