"""The sample store and the resumable runner: nothing lost, nothing twice, nothing torn."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from gbg_utils.decoding import DecodingConfig
from gbg_utils.runner import plan, run_generation
from gbg_utils.store import Sample, SampleStore
from gbg_utils.tasks import get_task


def _sample(item, idx, key="k", text="x"):
    return Sample("m", "b", str(item), key, idx, text, 3, "stop")


def test_inserts_are_idempotent_and_keyed(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    run = store.new_run({"model": "m"})
    assert store.add_samples([_sample(1, 0), _sample(1, 1), _sample(2, 0)], run) == 3
    assert store.add_samples([_sample(1, 0, text="other"), _sample(2, 1)], run) == 1  # the stored one is kept
    df = store.samples()
    assert len(df) == 4 and df.set_index(["item_id", "sample_idx"]).loc[("1", 0), "text"] == "x"
    assert store.existing("m", "b", "k") == {"1": {0, 1}, "2": {0, 1}}
    assert store.runs()["provenance"][0] == {"model": "m"}


def test_frame_joins_configs_and_latest_scores(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    cfg = DecodingConfig(temperature=0.5)
    store.add_config(cfg)
    run = store.new_run({})
    store.add_samples([Sample("m", "b", "1", cfg.key, 0, "t", 5, "stop")], run)
    key = dict(model="m", benchmark="b", item_id="1", config_key=cfg.key, sample_idx=0)
    store.add_scores([{**key, "scorer": "b", "scorer_version": "1", "score": 0.0, "extracted": "a", "item_group": "g"}])
    store.add_scores([{**key, "scorer": "b", "scorer_version": "2", "score": 1.0, "extracted": "b", "item_group": "g"}])
    store.add_scores([{**key, "scorer": "reward:rm", "scorer_version": "1", "score": 0.25}])
    df = store.frame(extra_scorers=["reward:rm"])
    row = df.iloc[0]
    assert (row.score, row.extracted, row.group, row.temperature, bool(row.greedy), row["reward:rm"]) == (1.0, "b", "g", 0.5, False, 0.25)


def test_plan_finds_contiguous_gaps(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    cfg = DecodingConfig(temperature=1.0)
    run = store.new_run({})
    store.add_samples([Sample("m", "b", "A", cfg.key, i, "t", 1) for i in (0, 1, 4)], run)

    class It:
        def __init__(self, i):
            self.id = i

    todo = plan(store, "m", "b", [It("A"), It("B")], cfg, 6)
    assert [(it.id, s, c) for it, s, c in todo] == [("A", 2, 2), ("A", 5, 1), ("B", 0, 6)]


def test_a_complete_run_does_not_load_the_model(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    task = get_task("humaneval")
    items = task.load(limit=2)
    cfg = DecodingConfig(temperature=1.0, max_new_tokens=8)
    from gbg_utils.decoding import greedy

    run = store.new_run({})
    for c, n in ((greedy(cfg), 1), (cfg, 3)):
        store.add_config(c)
        store.add_samples([Sample("m", "humaneval", it.id, c.key, j, "t", 1) for it in items for j in range(n)], run)

    def explode():
        raise AssertionError("the model must not be loaded")

    s = run_generation(store, "m", task, items, n_samples=3, max_new_tokens=8, backend=explode, progress=False)
    assert not s.loaded_model and sum(s.generated.values()) == 0 and sum(s.reused.values()) == 8


KILLED_RUN = textwrap.dedent("""
    import sys
    from gbg_utils.runner import run_generation
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
