"""The sample store and the resumable runner: nothing lost, nothing twice, nothing torn."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import schema_1_store

from gbg_utils.decoding import DecodingConfig
from gbg_utils.generate.runner import missing_samples, run_generation
from gbg_utils.store import Sample, SampleStore
from gbg_utils.tasks import get_task

ENGINE = {"backend": "transformers", "dtype": "bfloat16", "weights": {"kind": "embedded", "name": "m"}}


def _sample(item, idx, key="k", text="x", ph="p"):
    return Sample("m", "b", str(item), ph, key, idx, text, 3, "stop")


def test_inserts_are_idempotent_and_keyed(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    run = store.new_run({"model": "m"})
    assert store.add_samples([_sample(1, 0), _sample(1, 1), _sample(2, 0)], run) == 3
    assert store.add_samples([_sample(1, 0, text="other"), _sample(2, 1)], run) == 1  # the stored one is kept
    df = store.samples()
    assert len(df) == 4 and df.set_index(["item_id", "sample_idx"]).loc[("1", 0), "text"] == "x"
    assert store.existing("m", "b", "k") == {("1", "p"): {0, 1}, ("2", "p"): {0, 1}}
    # another prompt for the same item is another sample, never the stored one
    assert store.add_samples([_sample(1, 0, text="new prompt", ph="q")], run) == 1
    assert store.existing("m", "b", "k")[("1", "q")] == {0}
    assert store.runs()["provenance"][0] == {"model": "m"}


def test_frame_joins_configs_and_latest_scores(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    cfg = DecodingConfig(temperature=0.5)
    key_ = store.add_config(cfg, ENGINE)
    run = store.new_run({})
    store.add_samples([Sample("m", "b", "1", "p", key_, 0, "t", 5, "stop")], run)
    key = dict(model="m", benchmark="b", item_id="1", prompt_hash="p", config_key=key_, sample_idx=0)
    store.add_scores([{**key, "scorer": "b", "scorer_version": "1", "score": 0.0, "extracted": "a", "item_group": "g"}])
    store.add_scores([{**key, "scorer": "b", "scorer_version": "2", "score": 1.0, "extracted": "b", "item_group": "g"}])
    store.add_scores([{**key, "scorer": "reward:rm", "scorer_version": "1", "score": 0.25}])
    df = store.frame(extra_scorers=["reward:rm"])
    row = df.iloc[0]
    assert (row.score, row.extracted, row.group, row.temperature, bool(row.greedy), row["reward:rm"]) == (
        1.0,
        "b",
        "g",
        0.5,
        False,
        0.25,
    )
    assert (row["backend"], row["dtype"]) == ("transformers", "bfloat16")
    assert store.frame(scorer_version="1").iloc[0].score == 0.0  # a pinned version is that version


def test_scorer_versions_compare_as_numbers_not_strings(tmp_path):
    """'10' is newer than '9' (as strings it sorts first)."""
    store = SampleStore(tmp_path / "s.sqlite")
    k = store.add_config(DecodingConfig(temperature=1.0), ENGINE)
    store.add_samples([Sample("m", "b", "1", "p", k, 0, "t", 5)], store.new_run({}))
    key = dict(model="m", benchmark="b", item_id="1", prompt_hash="p", config_key=k, sample_idx=0)
    store.add_scores(
        [{**key, "scorer": "b", "scorer_version": v, "score": s} for v, s in (("10", 1.0), ("9", 0.0), ("1.10", 0.5))]
    )
    assert store.frame().iloc[0].score == 1.0 and store.frame().iloc[0].scorer_version == "10"


def test_a_config_key_names_the_engine_too(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    cfg = DecodingConfig(temperature=1.0)
    keys = {
        store.add_config(cfg, {**ENGINE, **change})
        for change in (
            {},
            {"dtype": "float32"},
            {"backend": "vllm"},
            {"weights": {"kind": "hub", "repo": "a/b", "revision": "r2"}},
        )
    }
    assert len(keys) == 4
    # each sampled config knows its greedy twin on its own engine
    assert store.configs()["greedy_key"].nunique() == 4


def test_a_store_of_the_previous_schema_is_refused_with_one_line(tmp_path):
    from gbg_utils.cli import main
    from gbg_utils.store import StoreSchemaError

    old = schema_1_store(tmp_path / "old.sqlite")
    with pytest.raises(StoreSchemaError, match="schema 1.*start a new store"):
        SampleStore(old)
    assert main(["score", "--benchmark", "humaneval", "--store", str(old)]) == 2


def test_a_complete_run_does_not_load_the_model(tmp_path, smol_path):
    from gbg_utils.generate.backends import LazyBackend
    from gbg_utils.identity import Engine

    store = SampleStore(tmp_path / "s.sqlite")
    task = get_task("humaneval")
    items = task.load(limit=2)

    def explode():
        raise AssertionError("the model must not be loaded")

    be = LazyBackend(Engine("transformers", "smollm2-135m"), loader=explode)
    # fill the store by hand with exactly what the run asks for: same prompts (token ids), configs and engine
    from gbg_utils.decoding import greedy
    from gbg_utils.identity import prompt_hash

    cfg = DecodingConfig(temperature=1.0, max_new_tokens=8, stop=tuple(task.stop))
    run = store.new_run({})
    for c, n in ((greedy(cfg), 1), (cfg, 3)):
        key = store.add_config(c, be.engine.identity())
        store.add_samples(
            [
                Sample("smollm2-135m", "humaneval", it.id, prompt_hash(be.encode(task.prompt(it))), key, j, "t", 1)
                for it in items
                for j in range(n)
            ],
            run,
        )
    s = run_generation(store, "smollm2-135m", task, items, n_samples=3, max_new_tokens=8, backend=be, progress=False)
    assert not s.loaded_model and sum(s.generated.values()) == 0 and sum(s.reused.values()) == 8


def test_plan_finds_contiguous_gaps(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    run = store.new_run({})
    store.add_samples([Sample("m", "b", "A", "pa", "k", i, "t", 1) for i in (0, 1, 4)], run)
    store.add_samples([Sample("m", "b", "B", "old", "k", i, "t", 1) for i in range(6)], run)  # B's prompt has changed

    class It:
        def __init__(self, i):
            self.id = i

    todo = missing_samples(store, "m", "b", [It("A"), It("B")], "k", 6, {"A": "pa", "B": "pb"})
    assert [(it.id, s, c) for it, s, c in todo] == [("A", 2, 2), ("A", 5, 1), ("B", 0, 6)]


KILLED_RUN = textwrap.dedent("""
    import sys
    from gbg_utils.generate.runner import run_generation
    from gbg_utils.store import SampleStore
    from gbg_utils.tasks import get_task
    run_generation(SampleStore(sys.argv[1]), "smollm2-135m", get_task("humaneval"), limit=3, n_samples=4,
                   max_new_tokens=int(sys.argv[2]), backend="transformers", chunk_size=1, progress=False)
""")


@pytest.mark.slow
def test_sigkill_then_resume_loses_nothing_and_duplicates_nothing(tmp_path):
    path = tmp_path / "store.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(path), "24"], stderr=subprocess.PIPE)
    deadline = time.time() + 300
    stored = 0
    while time.time() < deadline and proc.poll() is None:
        if path.exists():
            try:
                stored = len(SampleStore(path).samples())
            except Exception:
                stored = 0
            if stored >= 4:
                break
        time.sleep(0.2)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = SampleStore(path).samples()
    assert 4 <= len(before) < 15  # killed part-way: 3 greedy + 12 sampled in all
    out = subprocess.run([sys.executable, "-c", KILLED_RUN, str(path), "24"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    after = SampleStore(path).samples()
    assert len(after) == 15 and not after.duplicated(["item_id", "config_key", "sample_idx"]).any()
    kept = after.merge(before, on=["item_id", "config_key", "sample_idx"], suffixes=("", "_before"))
    assert len(kept) == len(before) and (kept["text"] == kept["text_before"]).all()  # nothing completed was lost or redone
    assert (kept["run_id"] == kept["run_id_before"]).all()
    # An uninterrupted run produces the very same texts: the resume is invisible in the data.
    fresh = tmp_path / "fresh.sqlite"
    subprocess.run([sys.executable, "-c", KILLED_RUN, str(fresh), "24"], check=True, capture_output=True, timeout=600)
    a = after.sort_values(["item_id", "config_key", "sample_idx"])["text"].tolist()
    b = SampleStore(fresh).samples().sort_values(["item_id", "config_key", "sample_idx"])["text"].tolist()
    assert a == b
