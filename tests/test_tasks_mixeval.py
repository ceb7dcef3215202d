"""MixEval: both formats and the Hard split, MixEval's chat prompts, and its rule-based parsers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from gbg_utils.tasks import Item, get_task
from gbg_utils.tasks.mixeval import FREEFORM_RULE, MULTICHOICE_RULE, eval_freeform, parse_freeform, parse_multichoice

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def task():
    t = get_task("mixeval")
    t.items = {it.id: it for it in t.load(data_dir=DATA)}
    return t


def test_items(task):
    items = list(task.items.values())
    assert len(items) == 4000 and Counter(it.data["format"] for it in items) == {"free-form": 2000, "multiple-choice": 2000}
    groups = Counter(it.group for it in items if it.data["format"] == "free-form")
    assert groups == {"TriviaQA": 1247, "DROP": 496, "GSM8k": 142, "BBH": 88, "MATH": 20, "AGIEval": 7}
    assert Counter(it.group for it in items if it.data["format"] == "multiple-choice")["MMLU"] == 855
    mc = [it for it in items if it.data["format"] == "multiple-choice"]
    assert all(len(it.data["target"]) == 1 and 0 <= it.data["target"][0] < len(it.data["options"]) for it in mc)
    assert task.paper_n_samples == 16 and "rule" in task.description and FREEFORM_RULE and MULTICHOICE_RULE


def test_hard_split():
    hard = get_task("mixeval_hard")
    items = hard.load(data_dir=DATA)
    assert len(items) == 1000 and Counter(it.data["format"] for it in items) == {"free-form": 500, "multiple-choice": 500}
    assert hard.name == "mixeval_hard" and items[0].id == "free-form/0" and items[-1].id == "multiple-choice/499"


def test_prompts_are_mixevals(task):
    ff = task.prompt(task.items["free-form/0"])[0]["content"]
    assert ff == "Question: Who wrote the book 'LA Confidential'?\nAnswer the question shortly."
    with_context = task.prompt(task.items["free-form/1"])[0]["content"]
    assert with_context.startswith("Question: The services sector made up") and with_context.endswith(
        "How many years did it take for the services sector to rebound?\nAnswer the question shortly."
    )
    gsm = task.prompt(task.items["free-form/19"])[0]["content"]
    assert gsm.endswith("\nAnswer the question. \nLet's think step by step.")
    mc = task.prompt(task.items["multiple-choice/14"])[0]["content"]
    assert mc == (
        "What is a common use of the mineral graphite?\nA. to make glass\nB. as a source of iron\n"
        "C. to make pencil leads\nD. as a household cleaner\nAnswer with the option letter from the given choices directly."
    )
    piqa = task.prompt(task.items["multiple-choice/1"])[0]["content"]
    assert piqa.startswith("Will rising prices correct a recession?\nWhich solution is correct?\nA. ")


# --- multiple choice: (reply, parsed) for options A-D of "What is a common use of the mineral graphite?"
GRAPHITE = ["to make glass", "as a source of iron", "to make pencil leads", "as a household cleaner"]
MC = [
    ("C", "C"),
    ("C.", "C"),
    ("(C)", "C"),
    ("C. to make pencil leads", "C"),
    ("**C**", None),  # MixEval's patterns need a space or '.' beside the asterisks
    ("**C. to make pencil leads**", "C"),
    ("The answer is C.", "C"),
    ("The answer is (C) to make pencil leads.", "C"),
    ("Answer: C", "C"),
    ("C\n\nGraphite is soft and leaves marks on paper.", "C"),
    ("Graphite is used to make pencil leads because it is soft.", "C"),  # > 5 words: option text
    ("B or C? I would say C", "B"),  # the earliest letter wins, as in MixEval
    ("to make pencil leads", None),  # option text but only 4 words
    ("I don't know", None),
    ("", None),
]


@pytest.mark.parametrize("reply, expected", MC)
def test_parse_multichoice(reply, expected):
    assert parse_multichoice(reply, GRAPHITE) == expected


def test_score_multichoice(task):
    it = task.items["multiple-choice/14"]
    assert task.score("C", it).score == 1.0 and task.score("A", it).score == 0.0
    s = task.score("I don't know", it)
    assert (s.score, s.reason) == (0.0, "no option found")
    assert task.score("   ", it).reason == "empty response"


# --- free form: (reply, gold targets, correct?)
FF = [
    ("James Elroy", ["JAMES ELROY"], True),
    ("The book 'LA Confidential' is by James Elroy.", ["JAMES ELROY"], True),
    ("It was written by James Ellroy.", ["JAMES ELROY"], False),  # spelling differs from MixEval's gold
    ("Stomach", ["Stomach", "Gastric"], True),
    ("1", ["1", "1"], True),
    ("It took 1 year.", ["1", "1"], True),
    ("It took 2 years.", ["1", "1"], False),
    ("There are 60 girls and 120 boys, so 180 students. 180 / 5 = 36 teachers.\nSo the answer is 36.", ["36"], True),
    ("180 / 5 = 36", ["36"], True),
    ("The result is 36.0", ["36"], True),
    ("So the final answer is: 1,200", ["1200"], True),
    ("Therefore the answer is 3.2", ["3.2"], True),
    ("Yes", ["Yes"], True),
    ("Let's think step by step.\nWe end where we started.\nSo the answer is Yes.", ["Yes"], True),
    ("No", ["Yes"], False),
    ("The answer is A", ["A"], True),
    ("Bananas", ["A"], False),  # one-letter golds are padded with a space: no match inside a word
]


@pytest.mark.parametrize("reply, gold, correct", FF)
def test_freeform_rule(reply, gold, correct):
    assert eval_freeform(gold, parse_freeform(reply)) is correct


def test_score_freeform(task):
    it = task.items["free-form/19"]  # GSM8k item, gold 36
    s = task.score("60 girls, 120 boys: 180 students. 180 / 5 = 36.\nSo the answer is 36.", it)
    assert s.score == 1.0 and "36.0" in s.extracted
    assert task.score("", it).reason == "empty response"
    free = Item("free-form/x", {"format": "free-form", "target": ["Paris"]})
    assert task.score("The capital of France is Paris.", free).score == 1.0


@pytest.mark.parametrize("bad", ["\n" * 10000, "is " * 5000, "1e99999", "nan", "\udcff", "(" * 5000])
def test_garbage_never_raises(task, bad):
    for it in (task.items["free-form/19"], task.items["multiple-choice/14"]):
        assert task.safe_score(bad, it).score in (0.0, 1.0)
