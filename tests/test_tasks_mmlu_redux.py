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


GARBAGE = [
    "(" * 10000,
    "Answer:" * 5000,
    "\udcff\x00",
    "A" * 100000,
    "{" * 10000 + "}" * 10000,
    '{"answer": ' + "9" * 5000 + "}",  # json.loads: int()'s 4300 digits
    '{"answer": ' + "[" * 100000 + "]" * 100000 + "}",  # json.loads: RecursionError
    '{"answer": ' + "[" * 900 + "]" * 900 + "}",
    '{"answer": NaN}',
    '{"answer": {"x": ["A"]}}',
    '{"answer": 1e999}',
]


@pytest.mark.parametrize("protocol", ["gbg", "paper"])
@pytest.mark.parametrize("bad", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_never_raises(task, protocol, bad):
    # `score` itself, not `safe_score` (which turns an exception into a 0 and so hides it), under every rule
    t = get_task("mmlu_redux", protocol)
    for rule in [t, *t.rule_variants()]:
        s = rule.score(bad, task.items[0])
        assert s.score in (0.0, 1.0) and (s.extracted is None or isinstance(s.extracted, str))


# --- the paper protocol: WildEval/ZeroEval @ dbcae2e8f (2024-07-15) -------------------------------------------
# An independent reconstruction of ZeroEval's prompt, written from src/templates/MCQA.py and src/_TEMPLATES.py
# (generate_choice_string l.9-13, apply_mc_template l.16-21) at that commit; gbg's functions are not used.
ZEROEVAL_MCQA_LINES = [
    "",
    "## Question: ",
    "",
    "{question}",
    "",
    "## Choices:",
    "",
    "{choices}",
    "",
    "## Instruction ",
    "",
    "Please answer this question by first reasoning and then selecting the correct choice. ",
    "Present your reasoning and solution in the following json format. ",
    'Please show your choice in the `answer` field with only the choice letter, e.g.,`"answer": "C"`.',
    "",
    "```json",
    "{",
    '    "reasoning": "___",',
    '    "answer": "___"',
    "}",
    "```",
    "",
]


def zeroeval_apply_mc_template(question: str, choices: list[str]) -> str:
    choice_string = ""
    for i, choice in enumerate(choices):
        choice_string += f"- ({chr(65 + i)}) {choice}\n"
    prompt_str = "\n".join(ZEROEVAL_MCQA_LINES)
    prompt_str = prompt_str.replace("{question}", question)
    return prompt_str.replace("{choices}", choice_string)


def _raw_rows(subject: str) -> list[dict]:
    import ast
    import csv

    path = DATA / "mmlu_redux" / "v1_30_subjects" / f"mmlu_{subject}.csv"
    with open(path, encoding="utf-8", newline="") as f:
        header = f.readline()
        f.seek(0)
        rows = list(csv.DictReader(f, delimiter=";" if header.count(";") > header.count(",") else ","))
    return [{**r, "choices": ast.literal_eval(r["choices"])} for r in rows]


@pytest.fixture(scope="module")
def paper():
    return get_task("mmlu_redux", "paper")


def test_paper_protocol_is_named_and_versioned(paper):
    gbg = get_task("mmlu_redux")
    assert (gbg.protocol, gbg.version) == ("gbg", "1")  # gbg's protocol unchanged: existing stores stay valid
    assert (paper.protocol, paper.version, paper.default_max_new_tokens, paper.stop) == ("paper", "paper-1", 4096, ())
    spec = paper.protocol_spec
    assert "WildEval/ZeroEval" in spec.harness and "dbcae2e8f" in spec.harness and spec.rule.startswith("zeroeval-mcqa-json/")
    assert "3000" in spec.differs


def test_paper_prompts_are_zeroevals(paper):
    from gbg_utils.tasks.base import PrefilledChat

    items = paper.load(data_dir=DATA)[:20]
    raw = _raw_rows("anatomy")[:20]
    for it, r in zip(items, raw, strict=True):
        p = paper.prompt(it)
        assert isinstance(p, PrefilledChat) and p.prefill == ""  # chat, nothing after the assistant header
        assert p.message_list() == [{"role": "user", "content": zeroeval_apply_mc_template(r["question"], r["choices"])}]


# (output, ZeroEval's answer, correct vs gold D) from src/evaluation/mcqa_eval.py l.25-41 and eval_utils.py.
ZEROEVAL_CASES = [
    ('{"reasoning": "sleep attacks", "answer": "D"}', "D", True),
    # a fenced block with a newline inside a string: eval_utils.py l.72 removes every "\n" before json.loads
    ('```json\n{\n    "reasoning": "first\nsecond",\n    "answer": "D"\n}\n```', "D", True),
    ('{"answer": "A"} on reflection: {"answer": "D"}', "D", True),  # the last complete object (l.50-69)
    ('{"reasoning": {"step": 1}, "answer": "D"}', "D", True),  # nested braces are counted
    ('{"answer": "D"', "D", True),  # no complete object: the regex (l.23)
    ('"answer": "A" then "answer": "D"', "A", False),  # the regex takes the first match (re.search)
    ('{"reasoning": "x"} "answer": "D"', "D", True),  # an object without "answer": the regex over the whole text
    ('{"reasoning": "x", "answer": D}', "D}", False),  # invalid JSON; quote-less value `[^,\s]*` (l.35) keeps the brace
    ('"answer": D, "reasoning": "x"', "D", True),
    ("answer: D", "D", True),  # quote-less key (l.41)
    ("Answer: D", None, False),  # case-sensitive: nothing found
    ("{'reasoning': 'x', 'answer': 'D'}", None, False),  # single quotes: neither JSON nor any pattern
    ('{"answer": "(D) Narcolepsy"}', "(D) Narcolepsy", False),  # exact equality with the letter (l.41)
    ('{"answer": "d"}', "d", False),
    ('{"answer": 4}', "4", False),
    ('{"reasoning": "x", "answer": "D"}<|endoftext|>', "D", True),  # unified_utils.py clear_output
    ("", None, False),
    ("The answer is (D) Narcolepsy.", None, False),
]


@pytest.mark.parametrize("output, answer, correct", ZEROEVAL_CASES)
def test_paper_rule_is_zeroevals(paper, output, answer, correct):
    item = Item("anatomy/0", {"question": "q", "choices": OPTIONS, "answer": 3})
    s = paper.score(output, item)
    assert (s.extracted, s.score) == (answer, float(correct))
    assert paper.extract(output, item) == answer
    if answer is None:
        assert s.reason == "no answer field found"


def test_paper_gold_is_the_first_equal_choice(paper):
    # mcqa_eval.py l.39: item["choices"].index(correct_answer): a repeated option's gold is its first occurrence
    item = Item("x/0", {"question": "q", "choices": ["same", "other", "same", "more"], "answer": 2})
    assert paper.score('{"answer": "A"}', item).score == 1.0 and paper.score('{"answer": "C"}', item).score == 0.0


def test_paper_rule_variant_is_gbgs_letter_rule(paper):
    (v,) = paper.rule_variants()
    assert (v.scorer, v.version, v.protocol) == ("mmlu_redux:gbg-rule", "1", "paper")
    item = Item("anatomy/0", {"question": "q", "choices": OPTIONS, "answer": 3})
    assert v.score('{"reasoning": "x", "answer": "D"}', item).score == 1.0
    assert v.score("The answer is (D) Narcolepsy.", item).score == 1.0  # paper rule: 0 (no JSON answer)
    assert get_task("mmlu_redux").rule_variants() == []  # ZeroEval's JSON rule can't read gbg's prompt's replies
