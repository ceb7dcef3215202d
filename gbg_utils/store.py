"""The sample store: every completion, every score and every judgment, append-only, crash-safe, in one SQLite file.

Why SQLite (WAL mode): each batch of completions is one transaction, so a SIGKILL at any moment leaves
either the whole batch or none of it (a half-written record cannot exist: the journal rolls it back on
the next open); primary keys make a rerun's inserts idempotent (nothing duplicated); several processes
(two notebooks, a notebook and a CLI run) can share one store safely; and it ships with Python. JSONL
would need our own torn-line detection and dedup; Parquet cannot be appended to row by row.

    >>> store = SampleStore("outputs/store.sqlite")
    >>> store.samples(benchmark="humaneval")          # a DataFrame
    >>> store.frame(scorer="humaneval")               # the tidy table the statistics take (text=True: with the texts)
    >>> store.judgments(benchmark="alpaca_eval")      # the LLM judge's cached answers (score/judge.py writes them)
    >>> merge_stores("all.sqlite", ["a.sqlite", "b.sqlite"])   # stores filled on separate machines, into one

Scale: the paper's setting (7 models x 6 benchmarks x 16-128 samples per item, ~3 M completions, ~9 GB) is
measured by scripts/speed/bench_store.py. `frame()` is one SQL query (samples joined to their scores through the
primary keys) that leaves the texts out unless asked, and the secondary indexes serve the filters the code uses.

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
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

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


_CONFIG_COLS = (
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
)


_SCORE_COLS = (*KEY, "scorer", "scorer_version", "score", "extracted", "reason", "item_group", "created")

# Every table but meta, in the order a merge copies them.
_TABLES = ("runs", "configs", "samples", "scores", "judgments", "judge_runs")


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
-- The primary keys serve filters on model (+ benchmark). samples_by_benchmark serves benchmark [+ model
-- [+ config_key]] in frame()'s row order (config_key, item_id, sample_idx), and holds every column but the text, so
-- reads without texts (frame(), existing()) never touch the table's pages, which the texts fill; scores_by_scorer
-- serves scorer [+ benchmark [+ version]]. No schema bump: an index changes no row; a store that lacks one gets it
-- on open (once: ~30 s for the paper's 3.3 M samples).
CREATE INDEX IF NOT EXISTS samples_by_benchmark ON samples (
    benchmark, model, config_key, item_id, sample_idx, prompt_hash, n_tokens, finish_reason, mean_logprob, seed, run_id, created);
CREATE INDEX IF NOT EXISTS scores_by_scorer ON scores (scorer, benchmark, scorer_version);
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
CREATE INDEX IF NOT EXISTS judgments_by_benchmark ON judgments (benchmark, judge_model, template_version);
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
    def _connect(self, uri: bool = False):
        # uri=True: file: URIs in ATTACH work (merge_stores reads its inputs read-only); self.path stays a plain path
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None, uri=uri)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable against process death
            con.create_collation("gbg_version", _version_cmp)  # frame()'s newest scorer version, in SQL
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

    def counts(self) -> dict[str, int]:
        """Rows per table (the judge's tables only where they exist)."""
        with self._connect() as con:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in _TABLES if t in names}

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
        return pd.DataFrame([{"config_key": k, **json.loads(c)} for k, c in rows], columns=_CONFIG_COLS)

    # --- samples -------------------------------------------------------------------------------
    def existing(self, model: str, benchmark: str, config_key: str, logprobs: bool = False) -> dict[tuple[str, str], set[int]]:
        """Sample indices already stored, per (item id, prompt hash); `logprobs`: only those stored with their
        mean log-prob (a sample generated without one cannot serve a run that ranks by it)."""
        lp = " AND mean_logprob IS NOT NULL" if logprobs else ""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT item_id, prompt_hash, sample_idx FROM samples WHERE model=? AND benchmark=? AND config_key=?{lp}",
                (model, benchmark, config_key),
            ).fetchall()
        out: dict[tuple[str, str], set[int]] = {}
        for item, ph, idx in rows:
            out.setdefault((item, ph), set()).add(idx)
        return out

    def add_samples(self, samples: Iterable[Sample], run_id: str) -> int:
        """Insert a batch in one transaction. A sample already present is kept as it was, unless it lacks the
        mean log-prob the new one carries (regenerated by a run that asked for log-probs): then the new one
        replaces it, and where its text changed, the scores and judgments of the old text go with it."""
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
        on = " AND ".join(f"{k}=?" for k in KEY)
        stale = f"EXISTS (SELECT 1 FROM samples WHERE {on} AND mean_logprob IS NULL AND text != ?)"
        with self._tx() as con:
            filled = [r[:6] + r[:6] + (r[6],) for r in rows if r[9] is not None]
            if filled:
                con.executemany(f"DELETE FROM scores WHERE {on} AND {stale}", filled)
                if con.execute("SELECT 1 FROM sqlite_master WHERE name='judgments'").fetchone():
                    jon = on.replace("prompt_hash=?", "sample_prompt_hash=?")
                    con.executemany(f"DELETE FROM judgments WHERE {jon} AND {stale}", filled)
            before = con.total_changes
            con.executemany(
                f"INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
                "text=excluded.text, n_tokens=excluded.n_tokens, finish_reason=excluded.finish_reason, "
                "mean_logprob=excluded.mean_logprob, seed=excluded.seed, run_id=excluded.run_id, created=excluded.created "
                "WHERE samples.mean_logprob IS NULL AND excluded.mean_logprob IS NOT NULL",
                rows,
            )
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

    def unscored(
        self, scorer: str, scorer_version: str, model: str | None = None, benchmark: str | None = None, text: bool = True
    ) -> pd.DataFrame:
        """The stored completions matching the filters that have no score row of this scorer and version: what a
        scoring run has left to do, found in SQL (no texts read for the samples already scored)."""
        cols = ", ".join(f"s.{c}" for c in _SAMPLE_COLS if text or c != "text")
        where, args = _where(prefix="s.", model=model, benchmark=benchmark)
        on = " AND ".join(f"o.{k}=s.{k}" for k in KEY)
        missing = f"NOT EXISTS (SELECT 1 FROM scores o WHERE {on} AND o.scorer=? AND o.scorer_version=?)"
        where = f"{where} AND {missing}" if where else f"WHERE {missing}"
        with self._connect() as con:
            return pd.read_sql(
                f"SELECT {cols} FROM samples s {where} ORDER BY s.model, s.benchmark, s.config_key, s.item_id, s.sample_idx",
                con,
                params=[*args, scorer, scorer_version],
            )

    # --- scores --------------------------------------------------------------------------------
    def scored_keys(self, scorer: str, scorer_version: str, benchmark: str | None = None, model: str | None = None) -> set[tuple]:
        where, args = _where(scorer=scorer, scorer_version=scorer_version, benchmark=benchmark, model=model)
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
        text: bool = False,
    ) -> pd.DataFrame:
        """Samples joined with their decoding config and engine and one score each: the statistics' input.

        Columns: model, benchmark, item_id, prompt_hash, config_key, sample_idx, [text,] n_tokens, finish_reason,
        mean_logprob, seed_x (the sample's seed), run_id, created, temperature, top_p, top_k, repetition_penalty,
        max_new_tokens, seed_y (the config's base seed), stop, backend, dtype, engine, greedy_key, greedy, score,
        scorer_version, extracted, reason, group, plus one column per name in `extra_scorers` (e.g. rewards).
        `text` only with `text=True` (at the paper's scale the texts are most of the bytes). `scorer` defaults
        to the benchmark name (each benchmark's own scorer); `scorer_version` pins its version (else the
        highest, compared as versions: "10" after "9"); extra scorers take their highest version.
        Rows are ordered by model, benchmark, config_key, item_id, sample_idx.
        """
        extra = list(dict.fromkeys(extra_scorers))
        head = [c if c != "seed" else "seed_x" for c in _SAMPLE_COLS if text or c != "text"]
        const = {c: v for c, v in (("model", model), ("benchmark", benchmark)) if v is not None}  # filled in, not read
        cols = [f"s.{c}" if c != "seed_x" else "s.seed AS seed_x" for c in head if c not in const]
        cols += ["o.score", "o.scorer_version", "o.extracted", "o.reason", 'o.item_group AS "group"']
        own = "?" if scorer else "s.benchmark"  # no scorer: each benchmark's own
        joins = [_score_join("o", own, pinned=scorer_version is not None)]
        args = ([scorer] if scorer else []) + ([scorer_version] if scorer_version is not None else [])
        for i, name in enumerate(extra):
            joins.append(_score_join(f"e{i}", "?", pinned=False))
            cols.append(f"e{i}.score AS e{i}")
            args.append(name)
        where, wargs = _where(prefix="s.", **const)
        sql = (
            f"SELECT {', '.join(cols)} FROM samples s {' '.join(joins)} {where} "
            "ORDER BY s.model, s.benchmark, s.config_key, s.item_id, s.sample_idx"  # samples_by_benchmark's order: no sort
        )
        with self._connect() as con:
            df = pd.read_sql(sql, con, params=args + wargs)
            rows = con.execute("SELECT config_key, config FROM configs").fetchall()  # after the samples: theirs are all in
        for i, (c, v) in enumerate(const.items()):
            df.insert(i, c, v)
        df = df.rename(columns={f"e{i}": name for i, name in enumerate(extra)})
        # The configs (a few rows) join in pandas: in SQL their JSON would be decoded once per sample.
        cfg = pd.DataFrame([{"config_key": k, **json.loads(c)} for k, c in rows], columns=_CONFIG_COLS)
        df = df.merge(cfg.rename(columns={"seed": "seed_y"}), on="config_key", how="left")
        df["greedy"] = df["temperature"] == 0
        config = [c if c != "seed" else "seed_y" for c in _CONFIG_COLS if c != "config_key"]
        return df[[*head, *config, "greedy", "score", "scorer_version", "extracted", "reason", "group", *extra]]

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


# --- merging stores -------------------------------------------------------------------------------
# Per table: its columns, its key, and when an input's row and OUT's row with the same key are the same row
# (s: the input's, m: OUT's). Anything else with the same key is a conflict, never resolved here.
_MERGE = {
    "runs": (("run_id", "created", "provenance"), ("run_id",), "s.provenance IS m.provenance"),
    "configs": (("config_key", "config"), ("config_key",), "s.config IS m.config"),
    "samples": (_SAMPLE_COLS, KEY, "s.text IS m.text"),
    "scores": (_SCORE_COLS, (*KEY, "scorer", "scorer_version"), "s.score IS m.score AND s.extracted IS m.extracted"),
    # A failed judgment (error set) holds no verdict: judge_store retries it, and here a successful one replaces it.
    "judgments": (
        JUDGMENT_COLS,
        JUDGMENT_KEY,
        "s.error IS NOT NULL OR m.error IS NOT NULL OR (s.prompt_hash IS m.prompt_hash AND s.raw IS m.raw "
        "AND s.verdict IS m.verdict AND s.value IS m.value AND s.parsed_ok IS m.parsed_ok)",
    ),
    "judge_runs": (("run_id", "created", "provenance"), ("run_id",), "s.provenance IS m.provenance"),
}


@dataclass
class MergeReport:
    """What `merge_stores` did. Each input is merged whole or not at all: one with a conflict (a row whose key
    OUT already holds with other content, e.g. a sample with another text) is left out, and listed."""

    out: Path
    merged: list[Path] = field(default_factory=list)
    refused: list[Path] = field(default_factory=list)  # inputs with conflicts: nothing of them was written
    added: dict[str, int] = field(default_factory=dict)  # table -> rows copied into OUT
    identical: dict[str, int] = field(default_factory=dict)  # table -> rows OUT already held, the same
    replaced_failed: int = 0  # failed judgments in OUT replaced by an input's successful one
    conflicts: dict[str, dict[str, int]] = field(default_factory=dict)  # input -> table -> conflicting rows
    examples: list[dict] = field(default_factory=list)  # the first conflicting keys: input, table, key columns

    @property
    def ok(self) -> bool:
        return not self.refused

    def __str__(self) -> str:
        tables = [t for t in _TABLES if t in self.added or t in self.identical]
        lines = [f"merged {len(self.merged)} of {len(self.merged) + len(self.refused)} stores into {self.out}"]
        lines += [f"  {t:10s} {self.added.get(t, 0):>10,} added, {self.identical.get(t, 0):>10,} already there" for t in tables]
        if self.replaced_failed:
            lines.append(f"  {self.replaced_failed:,} failed judgments replaced by successful ones")
        for p in self.refused:
            what = ", ".join(f"{n:,} {t}" for t, n in self.conflicts[str(p)].items() if n)
            lines.append(f"CONFLICT: {p} not merged (nothing of it written): {what} with the same key but other content")
        for e in self.examples:
            lines.append("  e.g. " + ", ".join(f"{k}={v}" for k, v in e.items()))
        return "\n".join(lines)


def merge_stores(out: str | Path, inputs: Iterable[str | Path], max_examples: int = 10) -> MergeReport:
    """Copy runs, configs, samples, scores, judgments and judge_runs of each input store into OUT (created if
    missing). Rows OUT already holds unchanged are not doubled; each input is one transaction, refused whole when
    it conflicts (see MergeReport); inputs are opened read-only and never changed."""
    ins = [Path(p) for p in inputs]
    if not ins:
        raise ValueError("store merge: no input stores given")
    out = Path(out)
    if out.exists() and any(p.exists() and p.resolve() == out.resolve() for p in ins):
        raise ValueError(f"store merge: {out} is both the output and an input")
    judged = False
    for p in ins:  # all inputs checked before anything is written
        v, tables = _store_schema(p)
        if v != SCHEMA_VERSION:
            raise StoreSchemaError(
                f"store merge: {p} was written by gbg store schema {v}; this gbg merges schema {SCHEMA_VERSION} only -- nothing merged"
            )
        judged |= "judgments" in tables
    dest = SampleStore(out)
    if judged:
        dest._judge_tables()
    report = MergeReport(out=dest.path)
    with dest._connect(uri=True) as con:
        for p in ins:
            con.execute("ATTACH DATABASE ? AS src", (_ro_uri(p),))
            try:
                _merge_one(con, p, report, max_examples)
            finally:
                con.execute("DETACH DATABASE src")
    return report


def _merge_one(con: sqlite3.Connection, path: Path, report: MergeReport, max_examples: int) -> None:
    present = {r[0] for r in con.execute("SELECT name FROM src.sqlite_master WHERE type='table'")}
    tables = [t for t in _TABLES if t in present]
    con.execute("BEGIN IMMEDIATE")
    try:
        conflicts, examples = {}, []
        for t in tables:
            _, key, same = _MERGE[t]
            on = f"FROM src.{t} s JOIN main.{t} m USING ({', '.join(key)}) WHERE NOT ({same})"
            conflicts[t] = con.execute(f"SELECT count(*) {on}").fetchone()[0]
            if conflicts[t] and len(report.examples) + len(examples) < max_examples:
                rows = con.execute(f"SELECT {', '.join('s.' + k for k in key)} {on} LIMIT ?", (max_examples,)).fetchall()
                examples += [{"input": str(path), "table": t, **dict(zip(key, r))} for r in rows]
        if any(conflicts.values()):
            con.execute("ROLLBACK")
            report.refused.append(path)
            report.conflicts[str(path)] = conflicts
            report.examples += examples[: max_examples - len(report.examples)]
            return
        added, identical, replaced = {}, {}, 0
        for t in tables:
            cols, key, _ = _MERGE[t]
            names = ", ".join(cols)
            n_src = con.execute(f"SELECT count(*) FROM src.{t}").fetchone()[0]
            if t == "judgments":
                before = con.total_changes
                con.execute(
                    f"INSERT OR REPLACE INTO main.judgments ({names}) SELECT {', '.join('s.' + c for c in cols)} "
                    f"FROM src.judgments s JOIN main.judgments m USING ({', '.join(key)}) "
                    "WHERE s.error IS NULL AND m.error IS NOT NULL"
                )
                replaced = con.total_changes - before
            before = con.total_changes
            con.execute(f"INSERT OR IGNORE INTO main.{t} ({names}) SELECT {names} FROM src.{t}")
            added[t] = con.total_changes - before
            identical[t] = n_src - added[t] - (replaced if t == "judgments" else 0)
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    report.merged.append(path)
    report.replaced_failed += replaced
    for t in tables:
        report.added[t] = report.added.get(t, 0) + added[t]
        report.identical[t] = report.identical.get(t, 0) + identical[t]


def _ro_uri(path: Path) -> str:
    return f"file:{quote(str(path.resolve()))}?mode=ro"


def _store_schema(path: Path) -> tuple[int, set[str]]:
    """(schema version, table names) of the store at `path`, read without changing it; a one-line error else."""
    if not path.is_file():
        raise FileNotFoundError(f"store merge: no store at {path}")
    try:
        con = sqlite3.connect(_ro_uri(path), uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            row = con.execute("SELECT v FROM meta WHERE k='schema_version'").fetchone() if "meta" in tables else None
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise ValueError(f"store merge: cannot read {path} as a gbg store ({e})") from None
    if "samples" not in tables:
        raise ValueError(f"store merge: {path} is not a gbg store (no samples table)")
    return (int(row[0]) if row else 1), tables


def version_order(v: str) -> tuple:
    """Sort key for version strings: digit runs compare as numbers ('10' after '9', '1.10' after '1.9')."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"\d+|[^\d]+", str(v)))


def _where(prefix: str = "", **kw) -> tuple[str, list]:
    conds = [(k, v) for k, v in kw.items() if v is not None]
    if not conds:
        return "", []
    return "WHERE " + " AND ".join(f"{prefix}{k}=?" for k, _ in conds), [v for _, v in conds]


def _version_cmp(a: str, b: str) -> int:
    """SQLite collation: scorer versions compared as version_order does (then as strings, to be a total order)."""
    ka, kb = (version_order(a), a), (version_order(b), b)
    return (ka > kb) - (ka < kb)


def _score_join(alias: str, scorer_sql: str, pinned: bool) -> str:
    """LEFT JOIN of one scorer's score to each sample `s`: the pinned version (one more `?`), else its highest."""
    if pinned:
        on = " AND ".join(f"{alias}.{k}=s.{k}" for k in KEY)
        return f"LEFT JOIN scores {alias} ON {on} AND {alias}.scorer={scorer_sql} AND {alias}.scorer_version=?"
    # The primary key finds a sample's rows of this scorer (one per version); the collation picks the newest.
    on = " AND ".join(f"x.{k}=s.{k}" for k in KEY)
    newest = f"SELECT x.rowid FROM scores x WHERE {on} AND x.scorer={scorer_sql} ORDER BY x.scorer_version COLLATE gbg_version DESC LIMIT 1"
    return f"LEFT JOIN scores {alias} ON {alias}.rowid=({newest})"
