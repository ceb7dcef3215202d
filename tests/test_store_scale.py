"""The store at scale: the tidy table without texts unless asked, indexes that serve its filters, and
`merge_stores` / `gbg store merge` for runs split across machines (nothing lost, nothing doubled, conflicts
reported, never resolved)."""

from __future__ import annotations

import functools
import sqlite3

import pandas as pd
import pytest
from conftest import schema_1_store

from gbg_utils.cli import main
from gbg_utils.decoding import DecodingConfig
from gbg_utils.identity import prompt_hash
from gbg_utils.score.scoring import score_store
from gbg_utils.store import JUDGMENT_COLS, KEY, Sample, SampleStore, StoreSchemaError, merge_stores
from gbg_utils.tasks import get_task

MODEL = "policy"
ENGINE = {"backend": "openai", "served_model": MODEL, "host": "127.0.0.1:1"}  # what the policy received: the messages as they are
ROW = ["model", "benchmark", "item_id", "prompt_hash", "config_key", "sample_idx"]


@pytest.fixture(scope="module")
def gsm():
    task = get_task("gsm8k")
    return task, task.load()[:12]  # the first 12: the tests name items "0", "1", ...


def default_text(it, j) -> str:
    return f"Step {j}. So the answer is {it.data['gold'] if (int(it.id) + j) % 2 else 7}."


def fill(path, task, items, n=3, text=default_text) -> SampleStore:
    """Greedy + n samples per item written as Sample rows (no model), then scored by the real scorer."""
    store = SampleStore(path)
    run = store.new_run({"kind": "generation", "part": str(path)})
    rows = []
    for cfg, k in ((DecodingConfig(), 1), (DecodingConfig(temperature=1.0, n=n), n)):
        key = store.add_config(cfg, ENGINE)
        for it in items:
            for j in range(k):
                t = text(it, j)
                rows.append(Sample(MODEL, task.name, str(it.id), prompt_hash(task.prompt(it)), key, j, t, 9, "stop", -0.5, j))
    store.add_samples(rows, run)
    score_store(store, task, items=items, progress=False)
    return store


def judgments(store: SampleStore, task, items, error=None, verdict="A") -> None:
    """One judgments row per sample 0 of each config (the judged tables are copied like the others)."""
    s = store.samples()
    rows = []
    for r in s[s["sample_idx"] == 0].itertuples():
        row = dict(zip(KEY, (r.model, r.benchmark, r.item_id, r.prompt_hash, r.config_key, r.sample_idx)))
        row.update(sample_prompt_hash=r.prompt_hash, judge_model="judge", template_version="t1", game=0, prompt_hash="req")
        row.update(raw=None if error else f"[[{verdict}]]", verdict=None if error else verdict, value=None if error else 1.0)
        row.update(parsed_ok=0 if error else 1, error=error, detail=None, judge_run="jr1", created=1.0)
        rows.append(tuple(row[c] for c in JUDGMENT_COLS))
    store.add_judgments(rows)
    store.add_judge_run("jr1", {"judge": "judge"})


def rows_of(store: SampleStore) -> pd.DataFrame:
    return store.samples().sort_values(ROW).reset_index(drop=True)[ROW + ["text", "run_id"]]


# --- the tidy table -----------------------------------------------------------------------------
def test_frame_leaves_the_texts_out_unless_asked(tmp_path, gsm):
    task, items = gsm
    store = fill(tmp_path / "s.sqlite", task, items)
    bare, full = store.frame(benchmark="gsm8k"), store.frame(benchmark="gsm8k", text=True)
    assert "text" not in bare.columns and "text" in full.columns
    assert len(bare) == len(full) == 12 * 4 and bare["score"].notna().all()
    pd.testing.assert_frame_equal(bare, full.drop(columns="text"))
    # the texts belong to their rows
    got = full.set_index(["item_id", "config_key", "sample_idx"])["text"].sort_index()
    want = store.samples().set_index(["item_id", "config_key", "sample_idx"])["text"].sort_index()
    pd.testing.assert_series_equal(got, want, check_names=False)
    assert list(bare.columns[:6]) == ROW and {"sample_seed", "base_seed", "greedy", "group", "temperature"} <= set(bare.columns)


def test_frame_is_one_indexed_query_without_a_sort(tmp_path, gsm, monkeypatch):
    task, items = gsm
    store = fill(tmp_path / "s.sqlite", task, items[:2])
    statements = []

    class Traced(sqlite3.Connection):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.set_trace_callback(statements.append)  # the SQL as run, parameters bound

    monkeypatch.setattr(sqlite3, "connect", functools.partial(sqlite3.connect, factory=Traced))
    df = store.frame(model=MODEL, benchmark="gsm8k", scorer_version=task.version)
    monkeypatch.undo()
    reads = [q for q in statements if "FROM samples" in q or "FROM scores" in q]
    assert len(df) == 8 and len(reads) == 1, reads  # samples and their scores: one query
    con = sqlite3.connect(store.path)
    plan = " | ".join(r[3] for r in con.execute("EXPLAIN QUERY PLAN " + reads[0]))
    assert "samples_by_benchmark (benchmark=? AND model=?)" in plan and "TEMP B-TREE" not in plan, plan


def test_an_older_store_gets_the_indexes_on_open(tmp_path, gsm):
    task, items = gsm
    path = tmp_path / "s.sqlite"
    fill(path, task, items[:2])
    con = sqlite3.connect(path)
    con.executescript("DROP INDEX samples_by_benchmark; DROP INDEX scores_by_scorer;")
    con.close()
    SampleStore(path)
    con = sqlite3.connect(path)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"samples_by_benchmark", "scores_by_scorer"} <= names
    assert con.execute("SELECT v FROM meta WHERE k='schema_version'").fetchone() == ("2",)  # no schema bump


def test_unscored_is_what_a_scoring_run_has_left(tmp_path, gsm):
    task, items = gsm
    store = fill(tmp_path / "s.sqlite", task, items[:3])  # scored
    run = store.new_run({})
    key = store.add_config(DecodingConfig(), ENGINE)
    late = [Sample(MODEL, task.name, "3", prompt_hash(task.prompt(items[3])), key, 0, "So the answer is 5.", 9)]
    store.add_samples(late + [Sample("other", task.name, "0", "p", key, 0, "So the answer is 5.", 9)], run)
    left = store.unscored(task.name, task.version, model=MODEL, benchmark=task.name)
    assert left[["item_id", "text"]].values.tolist() == [["3", "So the answer is 5."]]
    assert "text" not in store.unscored(task.name, task.version, text=False).columns
    assert len(store.unscored(task.name, task.version)) == 2 and len(store.unscored(task.name, "older")) == 3 * 4 + 2
    assert len(store.scored_keys(task.name, task.version, benchmark=task.name, model="other")) == 0
    assert len(store.scored_keys(task.name, task.version, model=MODEL)) == 3 * 4


# --- merging ------------------------------------------------------------------------------------
def test_merging_disjoint_item_ranges_loses_nothing_and_doubles_nothing(tmp_path, gsm):
    task, items = gsm
    a = fill(tmp_path / "a.sqlite", task, items[:5])
    b = fill(tmp_path / "b.sqlite", task, items[5:])
    judgments(b, task, items[5:])
    rep = merge_stores(tmp_path / "out" / "all.sqlite", [a.path, b.path])
    assert rep.ok and rep.merged == [a.path, b.path] and not rep.refused
    out = SampleStore(tmp_path / "out" / "all.sqlite")
    ca, cb, co = a.counts(), b.counts(), out.counts()
    for t in ("runs", "samples", "scores"):
        assert co[t] == ca[t] + cb[t] == rep.added[t], t
    assert co["configs"] == ca["configs"] == cb["configs"] == 2 and rep.identical["configs"] == 2  # shared configs, once
    assert co["judgments"] == cb["judgments"] == 2 * 7 and co["judge_runs"] == 1
    # every row of each input, as it was there
    pd.testing.assert_frame_equal(rows_of(out), pd.concat([rows_of(a), rows_of(b)]).sort_values(ROW).reset_index(drop=True))
    whole = fill(tmp_path / "whole.sqlite", task, items)  # one machine doing it all gives the same tidy table
    cols = [c for c in whole.frame().columns if c not in ("run_id", "created")]
    pd.testing.assert_frame_equal(out.frame()[cols], whole.frame()[cols])
    pd.testing.assert_frame_equal(out.judgments().drop(columns="created"), b.judgments().drop(columns="created"))


def test_merging_the_same_store_again_doubles_nothing(tmp_path, gsm):
    task, items = gsm
    a = fill(tmp_path / "a.sqlite", task, items[:4])
    first = merge_stores(tmp_path / "out.sqlite", [a.path])
    counts = SampleStore(tmp_path / "out.sqlite").counts()
    again = merge_stores(tmp_path / "out.sqlite", [a.path, a.path])
    assert first.ok and again.ok and SampleStore(tmp_path / "out.sqlite").counts() == counts
    assert set(again.added.values()) == {0} and again.identical == {t: 2 * n for t, n in counts.items()}


def test_a_conflict_is_reported_and_its_input_is_not_merged(tmp_path, gsm):
    task, items = gsm
    a = fill(tmp_path / "a.sqlite", task, items[:3])
    # b: the same identities (and items[3] besides), but item 1's sample 0 (greedy and sampled) has another text
    b = fill(
        tmp_path / "b.sqlite", task, items[:4], text=lambda it, j: "other" if (it.id, j) == ("1", 0) else default_text(it, j)
    )
    b_before = rows_of(b)
    rep = merge_stores(tmp_path / "out.sqlite", [a.path, b.path])
    assert not rep.ok and rep.merged == [a.path] and rep.refused == [b.path]
    assert rep.conflicts[str(b.path)]["samples"] == 2 and rep.conflicts[str(b.path)]["scores"] == 2  # their scores differ too
    ex = next(e for e in rep.examples if e["table"] == "samples")
    assert (ex["input"], ex["item_id"], ex["sample_idx"]) == (str(b.path), "1", 0) and "CONFLICT" in str(rep)
    out = SampleStore(tmp_path / "out.sqlite")
    pd.testing.assert_frame_equal(rows_of(out), rows_of(a))  # a's texts kept, nothing of b written ...
    pd.testing.assert_frame_equal(rows_of(b), b_before)  # ... and b as it was: nothing lost
    # through the command line: the report, and exit 1
    assert main(["store", "merge", str(tmp_path / "cli.sqlite"), str(a.path), str(b.path)]) == 1


def test_a_failed_judgment_is_replaced_by_a_successful_one_but_two_verdicts_conflict(tmp_path, gsm):
    task, items = gsm
    a, b, c = (fill(tmp_path / f"{n}.sqlite", task, items[:2]) for n in "abc")
    judgments(a, task, items[:2], error="HTTP 503")
    judgments(b, task, items[:2])
    judgments(c, task, items[:2], verdict="B")
    rep = merge_stores(tmp_path / "out.sqlite", [a.path, b.path])
    assert rep.ok and rep.replaced_failed == 4  # sample 0 of greedy and sampled, 2 items
    assert SampleStore(tmp_path / "out.sqlite").judgments()["verdict"].tolist() == ["A"] * 4
    rep = merge_stores(tmp_path / "out.sqlite", [c.path])
    assert rep.refused == [c.path] and rep.conflicts[str(c.path)]["judgments"] == 4


def test_gbg_store_merge(tmp_path, gsm, capsys):
    task, items = gsm
    a = fill(tmp_path / "a.sqlite", task, items[:2])
    b = fill(tmp_path / "b.sqlite", task, items[2:4])
    out = tmp_path / "all.sqlite"
    assert main(["store", "merge", str(out), str(a.path), str(b.path)]) == 0
    text = capsys.readouterr().out
    assert f"merged 2 of 2 stores into {out}" in text and "samples" in text and "16 added" in text
    assert SampleStore(out).counts()["samples"] == 16


def test_merge_refuses_bad_inputs_with_one_line(tmp_path, gsm, capsys):
    task, items = gsm
    a = fill(tmp_path / "a.sqlite", task, items[:1])
    old = schema_1_store(tmp_path / "old.sqlite")
    (tmp_path / "junk.sqlite").write_text("not a database" * 100)
    out = tmp_path / "out.sqlite"
    with pytest.raises(StoreSchemaError, match="schema 1; this gbg merges schema 2 only -- nothing merged"):
        merge_stores(out, [a.path, old])
    assert not out.exists()  # checked before anything is written
    for bad, msg in (
        (str(old), "was written by gbg store schema 1"),
        (str(tmp_path / "none.sqlite"), "no store at"),
        (str(tmp_path / "junk.sqlite"), "cannot read"),
        (str(out), "is both the output and an input"),
    ):
        SampleStore(out)
        assert main(["store", "merge", str(out), str(a.path), bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("gbg: error: store merge:") and msg in err and "\n" not in err, err


# --- one machine's share of the items -----------------------------------------------------------
def test_generate_items_takes_one_range_of_the_benchmark(tmp_path, monkeypatch, capsys):
    import gbg_utils.generate.runner as runner

    seen = {}

    def fake_run(store, model, task, items=None, **kw):
        seen["items"] = [it.id for it in items]
        return "fake summary"

    monkeypatch.setattr(runner, "run_generation", fake_run)
    store = str(tmp_path / "s.sqlite")
    assert main(["generate", "--benchmark", "gsm8k", "--items", "3:6", "--store", store]) == 0
    assert seen["items"] == ["3", "4", "5"]
    assert main(["generate", "--benchmark", "gsm8k", "--items", "1317:", "--store", store]) == 0
    assert seen["items"] == ["1317", "1318"]
    assert main(["generate", "--benchmark", "gsm8k", "--items", "7", "--store", store]) == 2
    assert "gbg: error: --items takes START:END" in capsys.readouterr().err
