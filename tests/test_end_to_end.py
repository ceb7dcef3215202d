"""A real model, every judge-free benchmark: generate greedy + samples into a store, score, read the table."""

import pytest

from gbg_utils.generate.runner import run_generation
from gbg_utils.score.scoring import score_store
from gbg_utils.store import SampleStore
from gbg_utils.tasks import get_task


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gsm8k", "humaneval", "mmlu_redux", "mixeval"])
def test_generate_score_and_rerun(name, hf_backend, tmp_path):
    store = SampleStore(tmp_path / "store.sqlite")
    task = get_task(name)
    items = task.load(limit=2)
    s = run_generation(store, "smollm2-135m", task, items, n_samples=2, max_new_tokens=24, backend=hf_backend, progress=False)
    assert sum(s.generated.values()) == 2 * 3
    assert score_store(store, task, items=items, progress=False) == 6
    df = store.frame(benchmark=name)
    assert len(df) == 6 and df["score"].notna().all() and df["score"].isin([0.0, 1.0]).all()
    assert (df["greedy"].sum(), (~df["greedy"]).sum()) == (2, 4)
    # unparseable or failed completions say why; parsed ones say what they extracted
    assert (df["extracted"].notna() | df["reason"].notna()).all()
    # a rerun generates and scores nothing
    again = run_generation(store, "smollm2-135m", task, items, n_samples=2, max_new_tokens=24, backend=hf_backend, progress=False)
    assert sum(again.generated.values()) == 0 and score_store(store, task, items=items, progress=False) == 0
