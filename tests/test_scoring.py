"""Scoring the sample store: scores land next to the samples, reruns only score what is new, a new scorer
version re-scores everything and keeps the old rows, a killed run resumes, and bad output never crashes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gbg_utils.decoding import DecodingConfig
from gbg_utils.score.scoring import score_store
from gbg_utils.store import Sample, SampleStore
from gbg_utils.tasks import get_task
from gbg_utils.tasks.gsm8k import GSM8K

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# gsm8k items 0-2 have golds 18, 3, 70000
GSM_COMPLETIONS = {
    "0": [
        "Janet sells 16 - 3 - 4 = 9 eggs. She makes 9 * 2 = $18. So the answer is 18.",
        "She has 16 - 3 = 13 eggs, sells them for 13 * 2 = 26. So the answer is 26.",
        "#### 18",
        "The answer is $18.00.",
        "I don't know.",
    ],
    "1": [
        "2 bolts of blue and 2 / 2 = 1 bolt of white: 2 + 1 = 3. So the answer is 3.",
        "\\boxed{3}",
        "It takes 2 + 2 = 4 bolts. The answer is 4.",
        "**3**",
        "",
    ],
    "2": [
        "The profit is $70,000. So the answer is 70000.",
        "So the answer is 70,000 dollars.",
        "He made 200000 - 130000 = 70000... the answer is 130000",
        "The answer is 7e4",
        "He profits 70000 dollars",
    ],
}
CORRECT = {("0", 0), ("0", 2), ("0", 3), ("1", 0), ("1", 1), ("1", 3), ("2", 0), ("2", 1), ("2", 4)}


@pytest.fixture(scope="module")
def gsm_items():
    return GSM8K().load(data_dir=DATA)[:3]


def _fill(store: SampleStore, benchmark: str, completions: dict, model="m1", start=0) -> int:
    run = store.new_run({"test": True})
    config = store.add_config(
        DecodingConfig(temperature=1.0, n=8), {"backend": "vllm", "dtype": "bfloat16", "weights": {"name": model}}
    )
    rows = [
        Sample(model, benchmark, item, "p", config, start + j, text, len(text.split()))
        for item, texts in completions.items()
        for j, text in enumerate(texts)
    ]
    return store.add_samples(rows, run)


def _scores(store: SampleStore, scorer: str, version: str | None = None):
    sc = store.scores(scorer=scorer)
    if version is not None:
        sc = sc[sc["scorer_version"] == version]
    return sc


def test_score_rescore_and_version_bump(tmp_path, gsm_items):
    store = SampleStore(tmp_path / "store.sqlite")
    task = get_task("gsm8k")
    assert score_store(store, task, items=gsm_items, progress=False) == 0  # nothing stored yet
    _fill(store, "gsm8k", GSM_COMPLETIONS)
    _fill(store, "gsm8k", {"0": ["So the answer is 18."]}, model="m2")
    assert score_store(store, task, items=gsm_items, progress=False) == 16

    sc = _scores(store, "gsm8k")
    assert len(sc) == 16 and set(sc["scorer_version"]) == {task.version}
    got = {(r.item_id, r.sample_idx) for r in sc.itertuples() if r.model == "m1" and r.score == 1.0}
    assert got == CORRECT
    row = sc[(sc.model == "m1") & (sc.item_id == "0") & (sc.sample_idx == 4)].iloc[0]
    assert (row.score, pd.isna(row.extracted), row.reason) == (0.0, True, "no number found")
    assert sc[(sc.item_id == "2") & (sc.sample_idx == 2)].iloc[0].extracted == "130000"

    # a rerun scores nothing; new samples only get scored
    assert score_store(store, task, items=gsm_items, progress=False) == 0
    _fill(store, "gsm8k", {"1": ["So the answer is 3.", "So the answer is 5."]}, start=5)
    assert score_store(store, task, items=gsm_items, progress=False) == 2
    assert score_store(store, task, model="m2", items=gsm_items, progress=False) == 0

    # a new scorer version re-scores everything and keeps the old rows
    class GSM8Kv2(GSM8K):
        version = task.version + ".1"

    n = len(store.samples(benchmark="gsm8k"))
    assert score_store(store, GSM8Kv2(), items=gsm_items, progress=False) == n
    assert len(_scores(store, "gsm8k", task.version)) == n and len(_scores(store, "gsm8k", GSM8Kv2.version)) == n
    assert store.samples(benchmark="gsm8k")["text"].tolist().count("#### 18") == 1  # nothing regenerated

    # the tidy table takes the newest version, with the item group
    frame = store.frame(scorer="gsm8k")
    assert len(frame) == n and frame["score"].notna().all()


def test_killed_run_resumes(tmp_path, gsm_items, monkeypatch):
    store = SampleStore(tmp_path / "store.sqlite")
    task = get_task("gsm8k")
    _fill(store, "gsm8k", GSM_COMPLETIONS)
    real, calls = SampleStore.add_scores, []

    def dies_on_third_batch(self, rows):
        calls.append(len(rows))
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real(self, rows)

    monkeypatch.setattr(SampleStore, "add_scores", dies_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        score_store(store, task, items=gsm_items, progress=False, batch_size=4)
    monkeypatch.setattr(SampleStore, "add_scores", real)
    assert len(_scores(store, "gsm8k")) == 8  # two whole batches committed, the third not at all
    assert score_store(store, task, items=gsm_items, progress=False, batch_size=4) == 7
    sc = _scores(store, "gsm8k")
    assert len(sc) == 15 and not sc.duplicated(["item_id", "sample_idx"]).any()


def test_unknown_items_are_skipped_with_a_warning(tmp_path, gsm_items):
    store = SampleStore(tmp_path / "store.sqlite")
    _fill(store, "gsm8k", {"0": ["So the answer is 18."], "99999": ["So the answer is 1."], "not-an-id": ["x"], "5": ["#### 1"]})
    assert score_store(store, get_task("gsm8k"), items=gsm_items[:1], progress=False) == 1  # a chosen subset: no warning
    with pytest.warns(RuntimeWarning, match="2 stored samples have item ids that are not among the task's 1319 items"):
        assert score_store(store, get_task("gsm8k"), data_dir=DATA, progress=False) == 1
    assert set(_scores(store, "gsm8k")["item_id"]) == {"0", "5"}


def test_groups_and_bad_output(tmp_path):
    store = SampleStore(tmp_path / "store.sqlite")
    task = get_task("mmlu_redux")
    items = task.load(data_dir=DATA)
    weird = [
        "### Answer: (D) Narcolepsy",
        "",
        "\x00\x01",
        "(" * 20000,
        "Answer: " * 3000,
        "\udcff".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    ]
    _fill(store, "mmlu_redux", {"anatomy/0": weird, "virology/99": ["The answer is (A)."]})
    assert score_store(store, task, items=items, progress=False) == 7
    sc = _scores(store, "mmlu_redux")
    assert dict(zip(sc.item_id, sc.item_group)) == {"anatomy/0": "anatomy", "virology/99": "virology"}
    assert sc[sc.score == 0.0]["reason"].notna().sum() >= 4
    assert sc[(sc.item_id == "anatomy/0") & (sc.sample_idx == 0)].iloc[0].score == 1.0


def test_humaneval_store_scoring_in_the_sandbox(tmp_path):
    store = SampleStore(tmp_path / "store.sqlite")
    task = get_task("humaneval")
    items = task.load(data_dir=DATA, limit=4)
    completions = {
        it.id: [
            "```python\n" + it.data["prompt"] + it.data["canonical_solution"] + "```",
            "    return None\n",
            "    import os\n    os._exit(0)\n",
        ]
        for it in items
    }
    _fill(store, "humaneval", completions)
    assert score_store(store, task, items=items, workers=2, progress=False) == 12
    sc = _scores(store, "humaneval")
    assert sorted(sc.groupby("sample_idx")["score"].sum().tolist()) == [0.0, 0.0, 4.0]
    assert set(sc[sc.sample_idx == 2]["reason"].str.slice(0, 12)) == {"exited early"}


def test_a_broken_sandbox_records_nothing(tmp_path, monkeypatch):
    from gbg_utils import sandbox

    store = SampleStore(tmp_path / "store.sqlite")
    task = get_task("humaneval")
    items = task.load(data_dir=DATA, limit=2)
    _fill(store, "humaneval", {it.id: [it.data["canonical_solution"]] for it in items})
    monkeypatch.setattr(sandbox.subprocess, "Popen", lambda *a, **k: (_ for _ in ()).throw(OSError("EAGAIN")))
    with pytest.raises(sandbox.SandboxError, match="EAGAIN"):
        score_store(store, task, items=items, progress=False)
    assert _scores(store, "humaneval").empty
    monkeypatch.undo()
    assert score_store(store, task, items=items, progress=False) == 2  # fixed: it resumes
