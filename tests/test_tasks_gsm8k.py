"""GSM8K: the final-number rule on what real models write, the 8-shot prompt, and where exemplars come from."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gbg_utils.tasks import TaskDataError, get_task
from gbg_utils.tasks.gsm8k import ANSWER_RULE, extract_answer, normalize_number

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def task():
    t = get_task("gsm8k")
    t.items = t.load(data_dir=DATA)
    return t


# (completion, extracted)
EXTRACT = [
    # open-instruct / lm-eval exemplar styles
    (
        "Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether in April and May. So the answer is 72.",
        "72",
    ),
    ("There are 15 trees originally. Then there were 21 trees. So there must have been 21 - 15 = 6. The answer is 6.", "6"),
    ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18", "18"),
    ("#### 72", "72"),
    ("####72", "72"),
    # currency, commas, decimals, units
    ("He earns 1080.5 in total. The answer is $1,080.50.", "1080.5"),
    ("The total cost is $1,250.", "1250"),
    ("So the answer is 5,600 dollars.", "5600"),
    ("She bought 3 packs, so 3 x $2.50 = $7.50. The answer is $7.50", "7.5"),
    ("72 clips", "72"),
    ("The answer is 72 clips.", "72"),
    ("It takes 45 minutes per day, so the answer is 45 minutes.", "45"),
    ("The discount is 25%. The answer is 25%.", "25"),
    ("The answer is 18.00", "18"),
    ("The answer is 0.5 hours.", "0.5"),
    ("The answer is .75", "0.75"),
    # markdown, LaTeX
    ("**72**", "72"),
    ("Total: 48 + 24 = 72.\n\n**Answer: 72**", "72"),
    ("The answer is: **42**", "42"),
    ("Therefore, Natalia sold $\\boxed{72}$ clips.", "72"),
    ("The final answer is $\\boxed{1,000}$. I hope it is correct.", "1000"),
    ("\\boxed{72 \\text{ clips}}", "72"),
    ("\\boxed{\\$18}", "18"),
    ("\\boxed{\\frac{3}{2}}", "1.5"),
    ("\\boxed{\\dfrac{144}{2}}", "72"),
    ("We get 2 + 3 = 5 and later \\boxed{7}. Not 9.", "7"),
    # several numbers: the final answer, not the first (and not a number after it)
    ("The answer is 18 dollars, i.e. 9 * 2.", "18"),
    ("First 5 apples, then 7 more, then 3 eaten: 5 + 7 - 3 = 9.", "9"),
    ("The final answer is 18.\n\nI hope this helps! Here are 3 tips for similar problems.", "18"),
    ("The answer is below.\nWe compute 12 + 13 = 25", "25"),
    # negative numbers and minus signs
    ("The temperature dropped to -5 degrees. So the answer is -5.", "-5"),
    ("The balance is −12 dollars. The answer is −12.", "-12"),
    ("10-5 = 5 left, so the answer is 5", "5"),
    # a model that goes on to invent the next exemplar
    ("So the answer is 6.\nQuestion: Leah had 32 chocolates...\nAnswer: ... So the answer is 39.", "6"),
    # nothing to extract
    ("I don't know.", None),
    ("", None),
]


@pytest.mark.parametrize("completion, expected", EXTRACT)
def test_extract(completion, expected):
    assert extract_answer(completion) == expected


# Fractions: the extracted answer is the fraction's value (a decimal when it has a finite one, else p/q).
EXTRACT_FRACTIONS = [
    ("Each friend gets 3 of the 4 slices. So the answer is 3/4.", "0.75"),
    ("So the answer is \\frac{3}{4}.", "0.75"),
    ("So the answer is $\\dfrac{18}{2}$.", "9"),
    ("The answer is 18/2 = 9 dollars.", "9"),
    ("The answer is 36 / 2.", "18"),
    ("She needs 1 1/2 cups of flour. So the answer is 1 1/2.", "1.5"),
    ("So the answer is -3/4.", "-0.75"),
    ("Each gets 10/3 of a pizza.", "10/3"),
    ("#### 18/2", "9"),
    ("\\boxed{3/4}", "0.75"),
    ("The answer is 1,000/8 pounds.", "125"),
    # not fractions: a rate, a date, an improper "mixed number" (two numbers)
    ("He drives 60 km/h for 2 hours. The answer is 120.", "120"),
    ("The answer is 5 per day, since 12/25/2023 was a Monday.", "5"),
    ("It was due on 12/25/2023", "2023"),
    ("First 3 laps, then 3 12/4 = 9 laps.", "9"),
]


@pytest.mark.parametrize("completion, expected", EXTRACT_FRACTIONS)
def test_extract_fractions(completion, expected):
    assert extract_answer(completion) == expected


@pytest.mark.parametrize(
    "completion, correct",
    [
        ("She makes 36/2 dollars. So the answer is 36/2.", True),
        ("So the answer is \\frac{36}{2}.", True),
        ("So the answer is 18/1.", True),
        ("So the answer is 37/2.", False),
        ("So the answer is 18 1/2.", False),  # 18.5, not 18
        ("So the answer is 1/18.", False),
    ],
)
def test_fractions_are_compared_by_value(task, completion, correct):
    item = task.items[0]  # gold 18
    assert task.score(completion, item).score == float(correct)


@pytest.mark.parametrize(
    "completion, correct",
    [
        ("She sells 9 eggs at $2 each. So the answer is 18.", True),
        ("She sells 9 eggs at $2 each, making $18.00 a day.", True),
        ("#### 18", True),
        ("\\boxed{18}", True),
        ("So the answer is 9.", False),  # wrong
        ("She makes 18 dollars. So the answer is 1.8.", False),
    ],
)
def test_score_against_gold(task, completion, correct):
    item = task.items[0]  # Janet's ducks, gold 18
    assert item.data["gold"] == "18"
    s = task.score(completion, item)
    assert s.score == float(correct) and s.reason is None


def test_unparseable_scores_zero_with_reason(task):
    assert task.score("No idea, sorry.", task.items[0]) == task.score("", task.items[0])
    s = task.score("No idea, sorry.", task.items[0])
    assert (s.score, s.extracted, s.reason) == (0.0, None, "no number found")


GARBAGE = [
    "\\boxed{",
    "\\boxed{10^{10^{10}}}",
    "\\boxed{10^{5000}}",
    "\\boxed{" * 50 + "1",
    "\x00\udcff",
    "#### " * 1000,
    "9" * 5000,
    "#### " + "9" * 5000,
    "The answer is " + "9" * 5000,
    "\\boxed{" + "9" * 5000 + "}",  # int()'s 4300 digits
    "1/" + "9" * 5000,
    "\\frac{" + "9" * 5000 + "}{3}",
    "1 1/" + "9" * 5000,
    "0." + "9" * 5000,
    "9" * 100000,
]


@pytest.mark.parametrize("protocol", ["gbg", "paper"])
@pytest.mark.parametrize("bad", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_never_raises(task, protocol, bad):
    # `score` itself, not `safe_score` (which turns an exception into a 0 and so hides it), under every rule
    t = get_task("gsm8k", protocol)
    for rule in [t, *t.rule_variants()]:
        s = rule.score(bad, task.items[0])
        assert s.score == 0.0 and (s.extracted is None or isinstance(s.extracted, str))


def test_a_huge_number_is_read_not_dropped(task):
    got = task.score("So the answer is " + "9" * 5000 + ".", task.items[0])
    assert (got.score, got.extracted) == (0.0, "9" * 5000)
    assert task.score("So the answer is 18.000.", task.items[0]).score == 1.0


def test_normalize_number():
    assert [normalize_number(s) for s in ["1,080.50", "-7", "72.00", "abc", "0.50"]] == ["1080.5", "-7", "72", None, "0.5"]


def test_items_and_settings(task):
    assert len(task.items) == 1319 and task.items[0].id == "0" and task.items[-1].id == "1318"
    assert len({it.id for it in task.items}) == 1319
    assert all(it.data["gold"] is not None for it in task.items)
    assert sum(it.data["gold"].startswith("-") for it in task.items) == 2
    assert (task.paper_n_samples, task.default_max_new_tokens) == (128, 512)
    assert task.stop == ("\nQuestion:",) and ANSWER_RULE.endswith("/v2") and task.version == "2"  # v2: fractions
    assert [it.id for it in task.load(data_dir=DATA)[:3]] == ["0", "1", "2"]


def test_prompt_is_open_instruct_8_shot(task):
    msgs = task.prompt(task.items[0])
    assert [m["role"] for m in msgs] == ["user"]
    text = msgs[0]["content"]
    assert text.startswith("Answer the following questions.\n\nQuestion: There are 15 trees")
    assert text.count("Question: ") == 9 and text.count("So the answer is") == 8
    assert text.endswith("Question: " + task.items[0].data["question"].strip())


def _mini_data_dir(tmp_path: Path, with_exemplars: str | None) -> Path:
    (tmp_path / "gsm8k").mkdir()
    lines = (DATA / "gsm8k" / "test.jsonl").read_text("utf-8").splitlines()[:2]
    (tmp_path / "gsm8k" / "test.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    if with_exemplars:
        name = f"gsm8k_8shot_cot_exemplars.{with_exemplars}.json"
        (tmp_path / "gsm8k" / name).write_text((DATA / "gsm8k" / name).read_text("utf-8"), "utf-8")
    return tmp_path


def test_lm_eval_exemplars_give_the_same_prompt(task, tmp_path):
    t = get_task("gsm8k")
    items = t.load(data_dir=_mini_data_dir(tmp_path, "lm_eval"))
    assert t.prompt(items[0]) == task.prompt(task.items[0])


def test_exemplars_from_an_installed_lm_eval(task, tmp_path, monkeypatch):
    """Online users without a data dir: the exemplars come from lm-eval's gsm8k-cot.yaml."""
    ex = json.loads((DATA / "gsm8k" / "gsm8k_8shot_cot_exemplars.lm_eval.json").read_text("utf-8"))["exemplars"]
    pkg = tmp_path / "site" / "lm_eval"
    (pkg / "tasks" / "gsm8k").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    yaml_text = "task: gsm8k_cot\nprocess_results: !function utils.process\nfewshot_config:\n  sampler: first_n\n  samples:\n"
    for e in ex:
        yaml_text += f"  - question: {json.dumps(e['question'])}\n    target: {json.dumps(e['target'])}\n"
    (pkg / "tasks" / "gsm8k" / "gsm8k-cot.yaml").write_text(yaml_text)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "lm_eval", raising=False)
    t = get_task("gsm8k")
    (tmp_path / "d").mkdir()
    items = t.load(data_dir=_mini_data_dir(tmp_path / "d", None))
    assert t.prompt(items[0]) == task.prompt(task.items[0])


def test_missing_exemplars_is_a_clear_error(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a))
    with pytest.raises(TaskDataError) as e:
        get_task("gsm8k").load(data_dir=_mini_data_dir(tmp_path, None))
    msg = str(e.value)
    assert "gsm8k" in msg and "gsm8k_8shot_cot_exemplars.open_instruct.json" in msg and "lm-eval" in msg
