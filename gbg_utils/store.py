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

Where a store lives: one host, local disk. SQLite's WAL locking needs shared memory between the processes
that write, which a network filesystem (NFS, SMB, a synced folder) does not give; stores filled on several
hosts are merged (`merge_stores`). Commits sit in `store.sqlite-wal` until a checkpoint folds them into
`store.sqlite`: commands that write checkpoint at their end, and `SampleStore.export` / `gbg store export` makes
the single-file copy to move between hosts (copying `store.sqlite` alone while a run is going misses its commits).

Scale: the paper's setting (7 models x 6 benchmarks x 16-128 samples per item, ~3 M completions, ~9 GB) is
measured by scripts/speed/bench_store.py. `frame()` is one SQL query (samples joined to their scores through the
primary keys) that leaves the texts out unless asked, and the secondary indexes serve the filters the code uses.

Tables: runs, configs, samples, scores; and, for the judged benchmarks, judgments (one row per judged sample,
judge model, template version and game) and judge_runs (their provenance). This module is the only one that
speaks SQL.
"""

from __future__ import annotations

import json
import os
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


# Seconds a writer waits for another process's write lock before it gives up with a one-line error.
BUSY_TIMEOUT = 60.0
BUSY_ENV = "GBG_STORE_BUSY_TIMEOUT"


class StoreError(RuntimeError):
    """A store that cannot be opened, read or written (locked, disk full, not a store): one line that says what to do."""


class StoreSchemaError(StoreError):
    """A store written by another schema, or a database that is no gbg store: never read or changed silently."""


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
    """One store file. A writer (the default) creates the file if it is missing and adds gbg's tables; a reader
    (`readonly=True`: notebooks that only read, `gbg plan`, `gbg store export`) opens it read-only, so a store
    in a read-only folder can be read. Either way the file is checked through a read-only connection first:
    a database that is no gbg store, or one of another schema, is refused before anything is written.

    `create=False`: a missing store is an error rather than a new empty one (commands that read what is there).
    `busy_timeout`: seconds a write waits for another process's lock (default $GBG_STORE_BUSY_TIMEOUT, else 60).
    `max_pages`: a cap on the file's size in pages (SQLite's max_page_count): past it a write fails as a full disk.
    The store lives on one host's local disk: SQLite's WAL locking does not hold over network filesystems."""

    def __init__(
        self,
        path: str | Path,
        *,
        readonly: bool = False,
        create: bool = True,
        busy_timeout: float | None = None,
        max_pages: int | None = None,
    ):
        self.path = Path(path)
        self.readonly = readonly
        self.busy_timeout = _busy_timeout() if busy_timeout is None else float(busy_timeout)
        self.max_pages = max_pages
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"store {self.path} is a folder, not a store file: pass the path of a .sqlite file")
        if not self.path.exists():
            if readonly or not create:
                raise FileNotFoundError(
                    f"no store at {self.path}: check the path, or fill it first (gbg generate --store {self.path})"
                )
        elif _check_schema(self.path, empty_ok=not readonly) or readonly:
            return  # a complete store: opening it writes nothing (and waits for no lock)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")  # persistent in the file: set once, after the check
            con.executescript(_SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @contextmanager
    def _connect(self, uri: bool = False):
        """A connection; every SQLite fault inside the block becomes a one-line StoreError (`_fault`).
        uri=True: file: URIs in ATTACH work (merge_stores reads its inputs read-only); self.path stays a plain path."""
        con = None
        try:
            if self.readonly:
                con = _open_ro(self.path, self.busy_timeout)
            else:
                con = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, uri=uri)
                con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable against process death
                if self.max_pages is not None:
                    con.execute(f"PRAGMA max_page_count={int(self.max_pages)}")
            con.create_collation("gbg_version", _version_cmp)  # frame()'s newest scorer version, in SQL
            yield con
        except Exception as e:
            fault = _fault(e, self.path, self.busy_timeout)
            if fault is None:
                raise
            raise fault from None
        finally:
            if con is not None:
                con.close()

    @contextmanager
    def _tx(self):
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                # SQLite has already rolled back after some faults (SQLITE_FULL): a second ROLLBACK would
                # replace the real error with "cannot rollback - no transaction is active".
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def checkpoint(self) -> bool:
        """Copy every commit from the -wal file into the store file and empty the WAL (TRUNCATE), so that the
        .sqlite file alone holds all of it. False when a reader kept it from finishing (the data is safe either
        way; the WAL is folded in later). Commands that write call this at their end."""
        if self.readonly:
            return False
        with self._connect() as con:
            con.execute(f"PRAGMA busy_timeout={int(min(self.busy_timeout, 5.0) * 1000)}")
            busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return busy == 0

    def export(self, dest: str | Path) -> Path:
        """A single-file copy of the store (SQLite's backup API: a consistent snapshot even while others write,
        every commit in the WAL included): what to copy to another host. DEST must not exist."""
        dest = Path(dest)
        if dest.exists():
            raise StoreError(f"store export: {dest} exists; export writes a new file: pass another path or remove it")
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".partial")
        part.unlink(missing_ok=True)
        with self._connect() as con:
            out = sqlite3.connect(part, isolation_level=None)
            try:
                con.backup(out)
                out.execute("PRAGMA journal_mode=DELETE")  # one file: no -wal beside the copy
            except sqlite3.Error as e:
                out.close()
                part.unlink(missing_ok=True)
                raise _fault(e, dest, self.busy_timeout) or e from None
            out.close()
        os.replace(part, dest)
        return dest

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

    def scores(self, scorer: str | None = None, benchmark: str | None = None, scorer_version: str | None = None) -> pd.DataFrame:
        """Score rows matching the filters: every version of a scorer unless `scorer_version` names one."""
        where, args = _where(scorer=scorer, benchmark=benchmark, scorer_version=scorer_version)
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
        mean_logprob, sample_seed (the sample's seed), run_id, created, temperature, top_p, top_k, repetition_penalty,
        max_new_tokens, base_seed (the config's base seed), stop, backend, dtype, engine, greedy_key, greedy, score,
        scorer_version, extracted, reason, group, plus one column per name in `extra_scorers` (e.g. rewards).
        `text` only with `text=True` (at the paper's scale the texts are most of the bytes). `scorer` defaults
        to the benchmark name (each benchmark's own scorer); `scorer_version` pins its version (else the
        highest, compared as versions: "10" after "9"); extra scorers take their highest version.
        Rows are ordered by model, benchmark, config_key, item_id, sample_idx.
        """
        extra = list(dict.fromkeys(extra_scorers))
        head = [c if c != "seed" else "sample_seed" for c in _SAMPLE_COLS if text or c != "text"]
        const = {c: v for c, v in (("model", model), ("benchmark", benchmark)) if v is not None}  # filled in, not read
        cols = [f"s.{c}" if c != "sample_seed" else "s.seed AS sample_seed" for c in head if c not in const]
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
        df = df.merge(cfg.rename(columns={"seed": "base_seed"}), on="config_key", how="left")
        df["greedy"] = df["temperature"] == 0
        config = [c if c != "seed" else "base_seed" for c in _CONFIG_COLS if c != "config_key"]
        return df[[*head, *config, "greedy", "score", "scorer_version", "extracted", "reason", "group", *extra]]

    # --- the LLM judge's cache ----------------------------------------------------------------------
    def _judge_tables(self) -> bool:
        """Create the judge's tables (writers); False when a reader finds none (then it reads nothing)."""
        with self._connect() as con:
            if self.readonly:
                return con.execute("SELECT 1 FROM sqlite_master WHERE name='judgments'").fetchone() is not None
            con.executescript(_JUDGE_SCHEMA)
        return True

    def judgments(
        self,
        benchmark: str | None = None,
        judge_model: str | None = None,
        template_version: str | None = None,
        model: str | None = None,
    ) -> pd.DataFrame:
        """The cached judgments matching the filters, as a DataFrame (`detail` decoded)."""
        if not self._judge_tables():
            return pd.DataFrame(columns=list(JUDGMENT_COLS))
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
        if not self._judge_tables():
            return pd.DataFrame(columns=["run_id", "created", "provenance"])
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
    dest.checkpoint()  # OUT's file alone holds the merge, even while a notebook keeps it open
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
        con = _open_ro(path, _busy_timeout())
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


# --- opening a store, and its faults --------------------------------------------------------------------
def _busy_timeout() -> float:
    raw = os.environ.get(BUSY_ENV)
    if raw is None:
        return BUSY_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise StoreError(f"{BUSY_ENV} takes seconds (e.g. 300), got {raw!r}") from None
    if value < 0:
        raise StoreError(f"{BUSY_ENV} takes seconds >= 0, got {raw!r}")
    return value


def _open_ro(path: Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection that changes nothing. A WAL store needs its -shm file, which a read-only folder
    cannot get: there, with no -wal file beside it (so every commit is in the file), it is read as immutable."""
    con = sqlite3.connect(_ro_uri(path), uri=True, timeout=timeout, isolation_level=None)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the open happens here
        return con
    except sqlite3.OperationalError as e:
        con.close()
        wal = path.with_name(path.name + "-wal")
        if (
            getattr(e, "sqlite_errorname", "").startswith("SQLITE_CANTOPEN")
            and not wal.exists()
            and not os.access(path.parent, os.W_OK)
        ):
            con = sqlite3.connect(_ro_uri(path) + "&immutable=1", uri=True, timeout=timeout, isolation_level=None)
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return con
        raise


def _check_schema(path: Path, empty_ok: bool) -> bool:
    """Refuse, through a read-only connection and before anything is written: a file that is no SQLite database,
    a database without gbg's tables (`empty_ok`: an empty one is a new store), and a store of another schema.
    True when the store is complete (WAL mode, every table and index of _SCHEMA, its version row)."""
    try:
        con = _open_ro(path, _busy_timeout())
        try:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            row = con.execute("SELECT v FROM meta WHERE k='schema_version'").fetchone() if "meta" in tables else None
            wal = con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            con.close()
    except sqlite3.Error as e:
        raise _fault(e, path, _busy_timeout()) or StoreError(f"cannot read store {path} ({e})") from None
    if not tables and empty_ok:
        return False
    if "samples" not in tables:
        held = f"it holds tables {', '.join(sorted(tables))}" if tables else "it is empty"
        raise StoreSchemaError(
            f"{path} is not a gbg store ({held}); gbg adds its tables only to a new file or a gbg store: pass another --store / `store:` path"
        )
    v = int(row[0]) if row else 1
    if v > SCHEMA_VERSION:
        raise StoreSchemaError(
            f"store {path} was written by a newer gbg (store schema {v}; this gbg reads schema {SCHEMA_VERSION}): "
            "upgrade gbg (pip install -U gbg_utils, or git pull) to read or extend it; nothing was changed"
        )
    if v < SCHEMA_VERSION:
        raise StoreSchemaError(
            f"store {path} was written by gbg store schema {v}; this gbg reads schema {SCHEMA_VERSION}, whose samples are "
            f"keyed by engine (backend, dtype, weights) and exact prompt, which schema {v} did not record -- "
            f"start a new store (move {path.name} aside, or pass another --store / `store:` path)"
        )
    return wal and row is not None and set(re.findall(r"EXISTS (\w+)", _SCHEMA)) <= names


def _fault(e: BaseException, path: Path, wait: float) -> StoreError | None:
    """The one-line error for an SQLite fault a user can meet and act on; None for anything else (a bug)."""
    err = e if isinstance(e, sqlite3.Error) else e.__cause__  # pandas.read_sql wraps SQLite's errors
    if isinstance(e, StoreError) or not isinstance(err, sqlite3.Error):
        return None
    name, text = getattr(err, "sqlite_errorname", "") or "", str(err)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        who = _holders(path)
        return StoreError(
            f"store {path} is locked by another process ({'; '.join(who) if who else 'not visible from here: another user, container or host'}), "
            f"still held after {wait:g} s; nothing of this write was stored (earlier batches are whole, a rerun resumes): "
            f"let it finish, or wait longer with {BUSY_ENV}=<seconds>"
        )
    if name.startswith("SQLITE_FULL") or "database or disk is full" in text:
        return StoreError(
            f"the store's disk is full ({path}): nothing of this write was stored (earlier batches are whole, a rerun "
            "resumes): free space or move the store, then rerun"
        )
    if name == "SQLITE_NOTADB" or "file is not a database" in text:
        return StoreError(f"{path} is not an SQLite database, so not a gbg store: pass another --store / `store:` path")
    if name.startswith("SQLITE_READONLY"):
        return StoreError(
            f"store {path} is read-only here ({text}): commands that only read open it read-only; to add to it, "
            "copy it somewhere writable (gbg store export)"
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return StoreError(f"cannot open store {path} ({text}): check the path and that its folder is readable")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_IOERR")):
        return StoreError(f"store {path} cannot be read ({text}): the file is damaged or its disk failed; use a copy")
    return None


def _holders(path: Path) -> list[str]:
    """The other processes of this host that have the store open (Linux /proc), named by what they run."""
    names = {str(path.resolve()) + tail for tail in ("", "-wal", "-shm", "-journal")}
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if proc.name == str(os.getpid()):
            continue
        try:
            if not any(os.readlink(fd) in names for fd in (proc / "fd").iterdir()):
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone, or another user's
            continue
        found.append(f"pid {proc.name}: {_process_kind([a.decode(errors='replace') for a in argv if a])}")
    return found


def _process_kind(argv: list[str]) -> str:
    line = " ".join(argv)
    if "ipykernel" in line:
        return "a Jupyter kernel"
    if "gbg_utils.cli" in line or (argv and Path(argv[0]).name == "gbg"):
        rest = argv[argv.index("gbg_utils.cli") + 1 :] if "gbg_utils.cli" in argv else argv[1:]
        return "gbg " + " ".join(rest[:2])
    if "papermill" in line:
        return "a papermill notebook run"
    short = " ".join(a.replace("\n", " ").strip() for a in argv)
    return short[:60] + ("..." if len(short) > 60 else "")


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
