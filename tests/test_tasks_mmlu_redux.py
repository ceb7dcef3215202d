"""MMLU-Redux: both CSV delimiters, the error-type labels, the prompt, and letter extraction."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from gbg_utils.tasks import Item, get_task
from gbg_utils.tasks.mmlu_redux import LETTER_RULE, SUBJECTS, extract_letter, read_csv

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OPTIONS = ["Dyslexia", "Epilepsy", "Hydrocephalus", "Narcolepsy"]


@pytest.fixture(scope="module")
def task():
    t = get_task("mmlu_redux")
    t.items = t.load(data_dir=DATA)
    return t


def test_items(task):
    items = task.items
    assert len(items) == 3000 and len({it.id for it in items}) == 3000
    assert Counter(it.group for it in items) == {s: 100 for s in SUBJECTS}
    assert items[0].id == "anatomy/0" and items[-1].id == "virology/99"
    assert all(len(it.data["choices"]) == 4 and 0 <= it.data["answer"] < 4 for it in items)
    # all error types kept (the paper reports 3000 instances); counts from SOURCES.md
    assert Counter(it.data["error_type"] for it in items) == {
        "ok": 2724,
        "bad question clarity": 85,
        "wrong groundtruth": 84,
        "multiple correct answers": 35,
        "no correct answer": 30,
        "expert": 27,
        "bad options clarity": 15,
    }
    assert (task.paper_n_samples, task.name) == (32, "mmlu_redux") and LETTER_RULE.endswith("/v1")


@pytest.mark.parametrize(
    "subject, delimiter", [("anatomy", ";"), ("philosophy", ";"), ("virology", ","), ("professional_law", ",")]
)
def test_both_delimiters_parse(task, subject, delimiter):
    path = DATA / "mmlu_redux" / "v1_30_subjects" / f"mmlu_{subject}.csv"
    assert path.read_text("utf-8").splitlines()[0].count(delimiter) == 6
    rows = read_csv(path)
    assert len(rows) == 100 and set(rows[0]) >= {"question", "choices", "answer", "error_type"}
    first = next(it for it in task.items if it.id == f"{subject}/0")
    assert first.data["question"] == rows[0]["question"]


def test_known_item(task):
    it = task.items[0]
    assert it.data["choices"] == OPTIONS and it.data["answer"] == 3 and it.group == "anatomy"
    text = task.prompt(it)[0]["content"]
    assert text.startswith("Which of the following is a disorder")
    assert "- (A) Dyslexia\n- (B) Epilepsy\n- (C) Hydrocephalus\n- (D) Narcolepsy\n" in text
    assert '"### Answer: (C) candles"' in text and text.endswith("Let's think step by step, and then choose the best answer.")


# (completion, extracted letter) for a question with options A-D
EXTRACT = [
    ("### Answer: (D) Narcolepsy", "D"),
    ("Narcolepsy causes sudden sleep attacks during the day.\n\n### Answer: (D) Narcolepsy", "D"),
    ("The answer is **B**.", "B"),
    ("**Answer:** C", "C"),
    ("Answer: B", "B"),
    ("answer is option D", "D"),
    ("The correct answer is (A) Dyslexia.", "A"),
    ("The correct option is C because hydrocephalus...", "C"),
    ('```json\n{\n    "reasoning": "Narcolepsy is a sleep disorder.",\n    "answer": "D"\n}\n```', "D"),
    ("Therefore the answer is $\\boxed{D}$.", "D"),
    ("\\boxed{\\text{B}}", "B"),
    ("D", "D"),
    ("(C)", "C"),
    ("C.", "C"),
    ("**A**", "A"),
    ("B) Epilepsy", "B"),
    ("C. Hydrocephalus is the accumulation of fluid", "C"),
    # several letters: the final statement wins
    (
        "Option A is a reading disorder. Option B causes seizures. Option C is fluid in the brain.\n\n### Answer: (D) Narcolepsy",
        "D",
    ),
    ("I first thought the answer is A, but on reflection the answer is D.", "D"),
    ("Let me check each. A is wrong. B is wrong.\n\nSo it must be (D).", "D"),
    ("The answer is D, not A.\n\nFinal answer: D", "D"),
    # option text only
    ("Narcolepsy", "D"),
    ("**Narcolepsy**", "D"),
    # nothing usable: lower-case "a", out-of-range letters, no letter at all
    ("The answer is a sleep disorder.", None),
    ("A patient with this condition falls asleep suddenly.", None),
    ("Answer: E", None),
    ("I am not sure.", None),
    ("", None),
]


@pytest.mark.parametrize("completion, expected", EXTRACT)
def test_extract_letter(completion, expected):
    assert extract_letter(completion, OPTIONS) == expected


def test_score(task):
    it = task.items[0]
    assert task.score("### Answer: (D) Narcolepsy", it).score == 1.0
    assert task.score("### Answer: (B) Epilepsy", it) == task.score("### Answer: (B)", it)
    s = task.score("no idea", it)
    assert (s.score, s.extracted, s.reason) == (0.0, None, "no answer letter found")
    two = Item("x/0", {"choices": ["yes", "no"], "answer": 1})
    assert task.score("Answer: B", two).score == 1.0 and task.score("Answer: C", two).extracted is None


@pytest.mark.parametrize("bad", ["(" * 10000, "Answer:" * 5000, "\udcff\x00", "A" * 100000])
def test_garbage_never_raises(task, bad):
    assert task.safe_score(bad, task.items[0]).score in (0.0, 1.0)
