"""A sample stored without its mean log-prob, filled in by a run that asks for log-probs: one row per sample,
and scores only of the text the row holds (real SQLite; the generation path itself: test_identity.py)."""

from gbg_utils.generate.runner import missing_samples
from gbg_utils.store import Sample, SampleStore
from gbg_utils.tasks.base import Item


def _sample(j, text, lp=None):
    return Sample("m", "toy", "0", "ph", "ck", j, text, 3, "stop", lp, 100 + j)


def _score(j):
    return dict(
        model="m",
        benchmark="toy",
        item_id="0",
        prompt_hash="ph",
        config_key="ck",
        sample_idx=j,
        scorer="exact",
        scorer_version="1",
        score=1.0,
    )


def test_plan_counts_a_sample_without_logprob_as_missing_only_for_a_logprob_run(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    store.add_samples([_sample(0, "a", -0.5), _sample(1, "b"), _sample(2, "c")], store.new_run({}))
    item = Item("0", {})
    assert missing_samples(store, "m", "toy", [item], "ck", 3, {"0": "ph"}) == []
    assert [(j, c) for _, j, c in missing_samples(store, "m", "toy", [item], "ck", 3, {"0": "ph"}, logprobs=True)] == [(1, 2)]


def test_a_filled_sample_replaces_its_row_and_drops_the_scores_of_a_text_it_no_longer_holds(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    store.add_samples([_sample(0, "same"), _sample(1, "old"), _sample(2, "kept", -0.1)], store.new_run({}))
    store.add_scores([_score(j) for j in range(3)])
    store.add_judgments(
        [("m", "toy", "0", "ph", "ck", j, "judge", "1", 0, "req", "A", "A", 1.0, 1, None, None, "r", 0.0) for j in range(3)]
    )
    run = store.new_run({})
    store.add_samples([_sample(0, "same", -0.2), _sample(1, "new", -0.3), _sample(2, "other", -0.4)], run)
    df = store.samples().set_index("sample_idx")
    assert len(df) == 3 and df["text"].tolist() == ["same", "new", "kept"]  # a row with a log-prob is never replaced
    assert df["mean_logprob"].tolist() == [-0.2, -0.3, -0.1]
    assert sorted(k[-1] for k in store.scored_keys("exact", "1")) == [0, 2]  # sample 1's score was of "old"
    assert store.judgments()["sample_idx"].tolist() == [0, 2]  # and so was its judgment
