"""Greedy stability: agreement rates on hand-made outputs, batch size and batch-invariant mode in a sample's identity,
the stability grid and its parameters, and one real run of the study on the embedded test model."""

import warnings

import nbformat
import numpy as np
import pandas as pd
import pytest

from gbg_utils.identity import CPU_MAX_NUM_SEQS, TRANSFORMERS_BATCH_SIZE, Engine, config_key
from gbg_utils.params import NOTEBOOK_DIR, NOTEBOOKS, PARAMS_DIR, STANDALONE_NOTEBOOKS, ParamError, validate
from gbg_utils.stats.agreement import (
    agreement_table,
    first_divergence,
    same_answer,
    total_agreement,
    total_agreement_rates,
)

# --- agreement on hand-made outputs ------------------------------------------------------------------------------
REF = [  # item, token ids, text, extracted answer, score
    ("a", [1, 2, 3, 4], "t-a", "5", 1.0),
    ("b", [1, 2, 3], "t-b", "7", 0.0),
    ("c", [9, 9], "t-c", None, 0.0),
    ("d", [4, 5, 6], "t-d", "2", 1.0),
]
OTHER = [
    ("a", [1, 2, 3, 4], "t-a", "5", 1.0),  # identical
    ("b", [1, 2, 8], "t-b2", "7", 1.0),  # diverges at 2, same answer, now correct
    ("c", [9, 9], "t-c", None, 0.0),  # identical, both without an answer: they agree
    ("d", [4], "t-d3", None, 0.0),  # a prefix of the reference: diverges at 1; no answer now
]


def _frame(point, rows):
    return pd.DataFrame(
        [{"point": point, "item_id": i, "token_ids": t, "text": x, "extracted": e, "score": s} for i, t, x, e, s in rows]
    )


def test_first_divergence():
    assert first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert first_divergence([1, 2, 3], [1, 5, 3]) == 1
    assert first_divergence([1, 2], [1, 2, 3]) == 2 and first_divergence([1, 2, 3], [1, 2]) == 2
    assert first_divergence([], [7]) == 0 and first_divergence([], []) is None


def test_same_answer_and_total_agreement():
    assert same_answer("5", "5", "x", "y") and not same_answer("5", "6", "x", "y")
    assert same_answer(None, None, "same", "same") and not same_answer(None, None, "x", "y")
    assert not same_answer(None, float("nan"), "x", "y") and not same_answer("5", None, "x", "y")
    assert total_agreement([[1, 1, 1], [1, 2, 1], [3, 3, 3], [4, 4, 5]]) == 0.5
    assert np.isnan(total_agreement([]))


def test_agreement_table_counts_by_hand():
    df = pd.concat([_frame("ref", REF), _frame("other", OTHER)], ignore_index=True)
    df["backend"] = df["point"].map({"ref": "transformers", "other": "vllm"})
    t = agreement_table(df, "ref", factors=["backend"], n_boot=200).set_index("point")
    r, o = t.loc["ref"], t.loc["other"]
    assert r.reference and r.exact_match == 1 and r.tar_r == 1 and r.tar_a == 1 and r["diff"] == 0 and r.n_diverged == 0
    assert o.backend == "vllm" and o.n_items == 4
    assert o.exact_match == 2 / 4  # a, c
    assert o.n_diverged == 2 and o.first_div_median == 1.5 and o.first_div_min == 1  # b at 2, d at 1
    assert o.tar_r == 2 / 4  # a, c
    assert o.tar_a == 3 / 4  # a, b (same answer "7"), c (same text, no answer); not d
    assert o.score_ref == 0.5 and o.score == 0.5 and o["diff"] == 0.0  # b gained, d lost
    assert o.ci_low < 0 < o.ci_high and o.p_value == pytest.approx(1.0)


def test_score_change_ci_excludes_zero_when_every_item_moves_one_way():
    ref = _frame("ref", [(str(i), [i], "r", "1", 0.0) for i in range(12)])
    up = _frame("up", [(str(i), [i], "r", "1", 1.0 if i < 9 else 0.0) for i in range(12)])
    (o,) = agreement_table(pd.concat([ref, up]), "ref", n_boot=500).query("point == 'up'").itertuples()
    assert o.diff == 0.75 and 0 < o.ci_low <= o.ci_high <= 1 and o.p_value < 0.01
    assert o.exact_match == 1 and o.tar_a == 1  # the same outputs can score differently only by hand; the rates don't care


def test_missing_items_warn_and_unknown_reference_or_duplicates_refuse():
    df = pd.concat([_frame("ref", REF), _frame("other", OTHER[:3])], ignore_index=True)
    with pytest.warns(UserWarning, match="other: 1 of the reference's 4 items missing"):
        t = agreement_table(df, "ref", n_boot=0)
    assert t.set_index("point").loc["other", "n_items"] == 3 and np.isnan(t.ci_low).all()
    with pytest.raises(ValueError, match="reference 'nope' is not among the grid points"):
        agreement_table(df, "nope")
    with pytest.raises(ValueError, match="1 duplicate"):
        agreement_table(pd.concat([df, df.iloc[:1]]), "ref")
    with pytest.raises(ValueError, match=r"missing \['extracted'\]"):
        agreement_table(df.drop(columns="extracted"), "ref")


def test_total_agreement_rates_over_all_points():
    third = _frame("third", [("a", [1, 2, 3, 4], "t-a", "5", 1.0), ("b", [0], "t-b3", "7", 0.0), ("c", [9, 9], "t-c", None, 0.0)])
    df = pd.concat([_frame("ref", REF), _frame("other", OTHER), third], ignore_index=True)
    r = total_agreement_rates(df)  # item d is not in every point: left out
    assert r == {"n_points": 3, "n_items": 3, "exact": 2 / 3, "tar_r": 2 / 3, "tar_a": 1.0}


# --- identity ----------------------------------------------------------------------------------------------------
DEC = {"temperature": 0.0, "max_new_tokens": 16}


@pytest.mark.parametrize("backend, option", [("transformers", "batch_size"), ("vllm", "max_num_seqs")])
def test_batch_size_is_part_of_the_identity(backend, option):
    one = Engine(backend, "smollm2-135m", "float32", {option: 1}).identity()
    many = Engine(backend, "smollm2-135m", "float32", {option: 8}).identity()
    assert one["batch_size"] == 1 and many["batch_size"] == 8
    assert config_key(DEC, one) != config_key(DEC, many)
    again = Engine(backend, "smollm2-135m", "float32", {option: 8, "max_model_len": 2048}).identity()
    assert config_key(DEC, again) == config_key(DEC, many)  # options that change no output do not split the identity


def test_the_default_batch_size_is_resolved_not_none(monkeypatch):
    import gbg_utils.identity as ident

    monkeypatch.setattr(ident, "_cuda", lambda: False)
    assert Engine("transformers", "smollm2-135m", "float32").identity()["batch_size"] == TRANSFORMERS_BATCH_SIZE
    vllm = Engine("vllm", "smollm2-135m", "float32").identity()
    assert vllm["batch_size"] == CPU_MAX_NUM_SEQS and vllm["batch_invariant"] is False
    explicit = Engine("vllm", "smollm2-135m", "float32", {"max_num_seqs": CPU_MAX_NUM_SEQS}).identity()
    assert config_key(DEC, explicit) == config_key(DEC, vllm)  # the default, named or not, is one sample
    monkeypatch.setattr(ident, "_cuda", lambda: True)
    assert Engine("vllm", "smollm2-135m", "float32").identity()["batch_size"] == ident.GPU_MAX_NUM_SEQS
    # a server batches as it likes (declared weights: no /models request to a server this test does not have)
    assert "batch_size" not in Engine("openai", "gpt-x", options={"weights": "org/gpt-x"}).identity()


def test_batch_invariant_mode_is_part_of_the_identity(monkeypatch):
    monkeypatch.delenv("VLLM_BATCH_INVARIANT", raising=False)
    plain = Engine("vllm", "smollm2-135m", "float32", {"max_num_seqs": 8}).identity()
    inv = Engine("vllm", "smollm2-135m", "float32", {"max_num_seqs": 8, "batch_invariant": True}).identity()
    assert not plain["batch_invariant"] and inv["batch_invariant"]
    assert config_key(DEC, plain) != config_key(DEC, inv)
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", "1")  # on for the whole process: every vLLM engine of it is invariant
    assert config_key(DEC, Engine("vllm", "smollm2-135m", "float32", {"max_num_seqs": 8}).identity()) == config_key(DEC, inv)


def test_batch_invariance_is_refused_on_a_cpu_in_one_line(monkeypatch):
    import gbg_utils.generate.engine_settings as be
    from gbg_utils.generate.vllm_backend import VLLMBackend

    monkeypatch.setattr(be, "no_cuda", lambda: True)
    assert "not available on a CPU" in be.batch_invariance_unavailable()
    with pytest.raises(be.BackendError, match="batch_invariant=True: not available on a CPU"):
        VLLMBackend("smollm2-135m", "float32", batch_invariant=True)


def test_batch_invariance_is_refused_once_vllm_is_imported(monkeypatch):
    import sys
    import types

    import gbg_utils.generate.engine_settings as be

    monkeypatch.setattr(be, "no_cuda", lambda: False)
    # setenv first so that teardown restores the variable's absence (delenv of an absent variable records nothing):
    # a VLLM_BATCH_INVARIANT=1 left behind would put every later vLLM engine of this process in batch-invariant mode
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", "0")
    monkeypatch.delenv("VLLM_BATCH_INVARIANT")
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    with pytest.raises(be.BackendError, match="must come before vLLM is imported"):
        be.enable_batch_invariance()
    monkeypatch.delitem(sys.modules, "vllm")
    be.enable_batch_invariance()
    import os

    assert os.environ.pop("VLLM_BATCH_INVARIANT") == "1"


# --- the grid and its parameters ---------------------------------------------------------------------------------
def test_grid_puts_the_reference_first_and_leaves_out_what_exclude_names():
    from gbg_utils.stability_grid import points as stability_grid

    P = validate(
        "stability",
        {
            "backends": ["vllm", "transformers"],
            "dtypes": ["bfloat16", "float32"],
            "batch_sizes": [4, 1],
            "batch_invariant": True,
            "exclude": ["vllm/bfloat16/bs1"],
        },
    )
    labels = [g.label for g in stability_grid(P)]
    assert labels[0] == "transformers/float32/bs1" and len(labels) == len(set(labels)) == 8 - 1 + 4
    assert "vllm/bfloat16/bs1" not in labels and "vllm/bfloat16/bs1/invariant" in labels
    assert stability_grid(P)[-1].options() == {"max_num_seqs": 1, "batch_invariant": True}


@pytest.mark.parametrize(
    "ns, msg",
    [
        ({"backends": ["openai"]}, "backends must be some of vllm, transformers"),
        ({"dtypes": ["auto"]}, "dtypes must be some of bfloat16, float32, float16"),
        ({"batch_sizes": [0, 8]}, "batch_sizes must be >= 1"),
        (
            {"reference_batch_size": 4, "batch_sizes": [1, 8]},
            r"reference_batch_size 4 must be one of the grid's batch_sizes \[1, 8\]",
        ),
        ({"reference_backend": "vllm", "backends": ["transformers"]}, "reference_backend 'vllm' must be one of"),
        ({"batch_invariant": True, "backends": ["transformers"]}, "batch_invariant needs the vllm backend"),
        ({"exclude": ["vllm/bf16/bs1"]}, r"exclude names \['vllm/bf16/bs1'\]: a grid point is backend/dtype/bsN"),
        ({"exclude": ["transformers/float32/bs1"]}, "exclude must not name the reference"),
    ],
)
def test_bad_stability_parameters_are_refused(ns, msg):
    with pytest.raises(ParamError, match=msg):
        validate("stability", ns)


def test_stability_is_a_notebook_of_its_own_not_part_of_all():
    """Kept out of `gbg run all` (NOTEBOOKS): the main job's time budget. Its notebook is checked as the others are."""
    from gbg_utils.report.papermill import check_params_file, parameters_mismatches

    assert "stability" in STANDALONE_NOTEBOOKS and "stability" not in NOTEBOOKS
    assert parameters_mismatches("stability") == []
    nb = nbformat.read(NOTEBOOK_DIR / "stability.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert len([c for c in code if "parameters" in c.metadata.get("tags", [])]) == 1
    assert nb.metadata["kernelspec"]["name"] == "python3"
    body = "\n".join(c.source for c in code)
    assert "stability_grid.run(P" in body and "study.save(P.output_path" in body
    assert sorted(p.stem for p in (PARAMS_DIR / "stability").glob("*.yaml")) == ["gpu", "offline", "paper", "smoke"]
    for name in ("smoke", "offline", "gpu", "paper"):
        check_params_file("stability", name)


# --- one real run ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_study_runs_the_grid_on_the_test_model(smol_path, tmp_path):
    """smollm2-135m, transformers backend, two batch sizes x two dtypes: four engines, four distinct samples per
    item, each compared with the reference; a second call regenerates nothing."""
    from gbg_utils import stability_grid, study
    from gbg_utils.report.stability import plot_stability
    from gbg_utils.store import SampleStore

    P = validate(
        "stability",
        {
            "models": ["smollm2-135m"],
            "benchmarks": ["gsm8k"],
            "limit": 3,
            "max_new_tokens": 12,
            "backends": ["transformers"],
            "dtypes": ["float32", "bfloat16"],
            "batch_sizes": [1, 3],
            "exclude": [],
            "store": str(tmp_path / "s.sqlite"),
            "n_boot": 100,
        },
    )
    outputs, table = stability_grid.run(P, progress=False)
    labels = ["transformers/float32/bs1", "transformers/float32/bs3", "transformers/bfloat16/bs1", "transformers/bfloat16/bs3"]
    assert list(table["point"]) == labels and table["reference"].tolist() == [True, False, False, False]
    assert len(outputs) == 4 * 3 and outputs.groupby("point").size().tolist() == [3] * 4
    assert outputs["config_key"].nunique() == 4  # four engines, four samples of the same greedy config
    assert (outputs["token_ids"].map(len) > 0).all() and outputs["score"].notna().all()
    ref = table.iloc[0]
    assert ref.exact_match == 1 and ref["diff"] == 0 and ref.n_items == 3
    assert table["exact_match"].between(0, 1).all() and (table["tar_a"] >= table["tar_r"]).all()
    # the table's numbers are those of the stored texts
    o = outputs.set_index(["point", "item_id"])["text"]
    for r in table.itertuples():
        same = [o[(r.point, i)] == o[(labels[0], i)] for i in outputs["item_id"].unique()]
        assert r.tar_r == pytest.approx(np.mean(same))
    engines = SampleStore(P.store_path).configs()["engine"].tolist()
    assert sorted(e.count('"batch_size": 1,') for e in engines) == [0, 0, 1, 1]
    fig = plot_stability(table)
    assert fig.axes and fig.axes[0].get_title()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again, again_table = stability_grid.run(P, progress=False)
    assert again_table["generated"].tolist() == [0, 0, 0, 0] and table["generated"].tolist() == [3, 3, 3, 3]
    assert (again["text"].tolist(), again["config_key"].tolist()) == (outputs["text"].tolist(), outputs["config_key"].tolist())
    prov = study.provenance(P, "stability", again)  # the inputs ride with the table the grid returned
    assert prov["inputs"][0]["point"] == labels[0] and prov["inputs"][0]["engine"]["batch_size"] == 1
    assert prov["generation_runs"]  # the runs behind the rows, from the store


@pytest.mark.slow
def test_a_point_run_in_its_own_process_is_read_back_without_loading(smol_path, tmp_path):
    """The path batch-invariant points take (a fresh process: vLLM's mode is fixed per process), here with a
    transformers point: the child generates, the parent finds it all stored and never loads a model."""
    from gbg_utils import stability_grid
    from gbg_utils.store import SampleStore
    from gbg_utils.tasks import get_task

    P = validate("stability", {"limit": 2, "max_new_tokens": 8, "store": str(tmp_path / "s.sqlite")})
    task = get_task("gsm8k")
    items = task.load(limit=2)
    g = stability_grid.GridPoint("transformers", "float32", 2)
    store = SampleStore(P.store_path)
    s = stability_grid.run_point(P, store, "smollm2-135m", task, items, g, progress=False, isolated=True)
    assert not s.loaded_model and sum(s.reused.values()) == 2 and s.engine["batch_size"] == 2
    assert len(store.samples()) == 2


def test_the_figure_and_readings_of_a_hand_made_table():
    from gbg_utils.report.stability import describe_factors, describe_stability, plot_stability

    df = pd.concat([_frame("ref", REF), _frame("other", OTHER)], ignore_index=True)
    df["batch_size"] = df["point"].map({"ref": 1, "other": 8})
    t = agreement_table(df, "ref", factors=["batch_size"], n_boot=100).assign(note="", model="m", benchmark="gsm8k")
    skipped = {
        "model": "m",
        "benchmark": "gsm8k",
        "point": "inv",
        "reference": False,
        "batch_size": 8,
        "note": "not available on a CPU: x",
    }
    t = pd.concat([t, pd.DataFrame([skipped])], ignore_index=True)
    text = describe_stability(t, {("m", "gsm8k"): total_agreement_rates(df)})
    assert "- other: 50% of items identical token for token, the others first differ at token 2 (median)" in text
    assert "same answer on 75% (TARa), same text on 50% (TARr); score +0.0 points" in text
    assert "- inv: not run -- not available on a CPU: x." in text and "least stable: other" in text
    assert "all 2 grid points together, on 4 items: identical token ids on 50%, TARr@2 50%, TARa@2 75%" in text
    assert describe_factors(t) == "- no factor varies across the points that ran"  # one non-reference level only
    t2 = pd.concat([t, t.iloc[[1]].assign(point="other2", batch_size=4, exact_match=1.0, tar_a=1.0)], ignore_index=True)
    assert "batch size: 4 100% / 100%, 8 50% / 75%." in describe_factors(t2)
    fig = plot_stability(t)
    rate_ax = fig.axes[0]
    bars = [p for p in rate_ax.patches if p.get_gid() == "tar_a"]
    assert np.nan_to_num([b.get_width() for b in bars]).round().tolist() == [100, 75, 0]  # the last did not run
    assert any("not run: not available on a CPU" in x.get_text() for x in rate_ax.texts)
