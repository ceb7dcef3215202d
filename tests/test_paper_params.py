"""Every params/<notebook>/paper*.yaml is the paper's own setting: the models and benchmarks of the table or figure
its notebook answers, N per benchmark as Table 1, the paper's sampling (T = 1.0, top-p = 1.0), its harness (protocol
"paper"), every item, each benchmark's own length, and each judged benchmark's own judge.

The expectations are read from the paper's numbers that gbg ships (gbg_utils/findings/paper_numbers.json: Table 1,
the rows of Tables 2, 4, 5 and Figure 4, the `setups` of Table 3 and Figures 1, 2a, 2b), never from the YAML files.
The files are read as plain YAML and put into their notebook's schema without its checks, so this test does not
depend on which benchmarks have a paper protocol yet (tests/test_notebooks.py validates the files).
"""

from __future__ import annotations

import pytest
import yaml

from gbg_utils.findings import paper
from gbg_utils.params import PARAMS_DIR, ParamError, schema, validate
from gbg_utils.tasks import get_task

DATA = paper.load()
TABLE1 = {b: v["n_samples"] for b, v in DATA["benchmarks"].items()}  # N per benchmark (Table 1)
SETUPS = DATA["setups"]
API_MODEL = "GPT-4-Turbo"  # the paper's one model behind an API (Table 2); the others are open weights
# The paper protocol of these two needs what a chat API does not offer: GSM8K a prefilled assistant turn
# ("Answer:"), HumanEval a raw completion (codex_humaneval nochat). GPT-4-Turbo's files leave them out.
NOT_THROUGH_A_CHAT_API = {"gsm8k", "humaneval"}


def _rows(table: str) -> list[dict]:
    return DATA["tables"][table]["rows"]


def _of(rows: list[dict], key: str) -> list:
    return list(dict.fromkeys(r[key] for r in rows))


def _open(models: list[str]) -> list[str]:
    return [m for m in models if m != API_MODEL]


def _api_benchmarks(table: str) -> set[str]:
    return {r["benchmark"] for r in _rows(table) if r["model"] == API_MODEL} - NOT_THROUGH_A_CHAT_API


# (notebook, file) -> the paper's models (its names) and benchmarks that file must hold, and where they come from.
EXPECTED = {
    ("gap", "paper"): ("Table 2", _open(_of(_rows("table2"), "model")), set(_of(_rows("table2"), "benchmark"))),
    ("gap", "paper-gpt4"): ("Table 2", [API_MODEL], _api_benchmarks("table2")),
    ("gap", "paper-wildbench"): ("Table 3", SETUPS["table3"]["models"], set(SETUPS["table3"]["benchmarks"])),
    ("scaling", "paper"): ("Table 4", _of(_rows("table4"), "model"), set(_of(_rows("table4"), "benchmark"))),
    ("alignment", "paper"): ("Figure 1", [SETUPS["figure1"]["base_model"]], set(SETUPS["figure1"]["benchmarks"])),
    ("temperature", "paper"): ("Figure 2a", SETUPS["figure2a"]["models"], set(SETUPS["figure2a"]["benchmarks"])),
    ("repetition", "paper"): ("Figure 2b", SETUPS["figure2b"]["models"], set(SETUPS["figure2b"]["benchmarks"])),
    ("length", "paper"): ("Table 5", _open(_of(_rows("table5"), "model")), set(_of(_rows("table5"), "benchmark"))),
    ("length", "paper-gpt4"): ("Table 5", [API_MODEL], _api_benchmarks("table5")),
    ("best_of_n", "paper"): ("Figure 4", [DATA["tables"]["figure4"]["model"]], set(_of(_rows("figure4"), "benchmark"))),
}
# gbg's own study, not one of the paper's: only the paper's harness, every item and the benchmarks' own length.
NOT_IN_THE_PAPER = {("stability", "paper")}


def _paper_files():
    return sorted(PARAMS_DIR.glob("*/paper*.yaml"))


def _load(notebook: str, name: str):
    """The file's mapping and its parameters with the notebook's defaults filled in (no validation)."""
    data = yaml.safe_load((PARAMS_DIR / notebook / f"{name}.yaml").read_text())
    return data, schema(notebook)(**data)


def test_the_paper_files_are_those_checked_here():
    found = {(p.parent.name, p.stem) for p in _paper_files()}
    assert found == set(EXPECTED) | NOT_IN_THE_PAPER


@pytest.mark.parametrize("key", sorted(EXPECTED | dict.fromkeys(NOT_IN_THE_PAPER)), ids="/".join)
def test_the_papers_harness_every_item_its_own_length(key):
    data, _ = _load(*key)
    assert data.get("protocol") == "paper", "the paper protocol, said in the file"
    assert "limit" in data and data["limit"] is None, "every item (limit: null)"
    assert "max_new_tokens" in data and data["max_new_tokens"] is None, "each benchmark's own length limit"


@pytest.mark.parametrize("key", sorted(EXPECTED), ids="/".join)
def test_models_and_benchmarks_are_the_papers(key):
    where, models, benchmarks = EXPECTED[key]
    _, p = _load(*key)
    mine = [paper.match_model(m) for m in p.models]
    if key[0] == "alignment":  # the base model first, then one checkpoint per method (test_alignment_methods_are_figure1s)
        assert mine[0] == models[0] and len(p.models) == len(SETUPS["figure1"]["methods"])
    else:
        assert None not in mine, f"{where}: every model is one of the paper's, got {p.models}"
        assert sorted(mine) == sorted(models), f"{where}'s models"
    assert set(p.benchmarks) == benchmarks, f"{where}'s benchmarks"
    assert len(set(p.benchmarks)) == len(p.benchmarks)
    if API_MODEL in models:
        assert p.backend == "openai"
    else:
        assert p.backend == "vllm" and all(m.count("/") == 1 for m in p.models), "open weights from the hub (org/name)"


@pytest.mark.parametrize("key", sorted(EXPECTED), ids="/".join)
def test_n_per_benchmark_is_table1_and_sampling_is_the_papers(key):
    _, p = _load(*key)
    assert {b: p.samples_for(b) for b in p.benchmarks} == {b: TABLE1[b] for b in p.benchmarks}
    # Table 2's caption / Sec. 2: temperature 1.0, top-p 1.0; nothing else changed
    assert (p.temperature, p.top_p, p.top_k, p.repetition_penalty) == (1.0, 1.0, -1, 1.0)


@pytest.mark.parametrize("key", sorted(EXPECTED), ids="/".join)
def test_judged_benchmarks_have_their_own_judge(key):
    _, p = _load(*key)
    judged = [b for b in p.benchmarks if getattr(get_task(b), "judged", False)]
    for b in judged:
        assert p.judge_model == get_task(b).paper_judge, f"{b} is judged by {get_task(b).paper_judge}"
    if not judged:
        assert p.judge_model is None


def test_figure4_ns_are_table1s_and_its_reward_models_are_named():
    rows = _rows("figure4")
    assert {r["benchmark"]: r["n"] for r in rows} == {r["benchmark"]: TABLE1[r["benchmark"]] for r in rows}
    _, p = _load("best_of_n", "paper")
    for sel in _of(rows, "selector"):
        if sel != "oracle":
            assert sum(sel.lower() in m.lower() for m in p.reward_models) == 1, f"Figure 4's {sel}"
    assert "oracle" in p.selectors


def test_scaling_sizes_are_table4s():
    sizes = {r["model"]: r["size_b"] for r in _rows("table4")}
    _, p = _load("scaling", "paper")
    assert {paper.match_model(m): s for m, s in zip(p.models, p.sizes, strict=True)} == sizes


def test_alignment_methods_are_figure1s():
    fig = SETUPS["figure1"]
    _, p = _load("alignment", "paper")
    assert p.methods[1:] == fig["methods"][1:]
    for model, method in zip(p.models[1:], p.methods[1:], strict=True):  # each checkpoint is its method's
        assert f"-{method}".lower() in model.lower() and "llama-3" in model.lower() and "8b" in model.lower()


def test_figure2_grids():
    _, t = _load("temperature", "paper")
    assert t.temperatures == SETUPS["figure2a"]["temperatures"]
    _, r = _load("repetition", "paper")
    assert r.repetition_penalties == SETUPS["figure2b"]["repetition_penalties"]


def test_an_api_model_is_named_as_its_server_names_it():
    validate(
        "gap", {"models": ["gpt-4-turbo-2024-04-09"], "backend": "openai", "benchmarks": ["alpaca_eval"], "judge_model": "j"}
    )
    with pytest.raises(ParamError, match="unknown model 'gpt-4-turbo-2024-04-09'"):
        validate(
            "gap", {"models": ["gpt-4-turbo-2024-04-09"], "backend": "vllm", "benchmarks": ["alpaca_eval"], "judge_model": "j"}
        )
