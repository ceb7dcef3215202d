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


GARBAGE = ["\n" * 10000, "is " * 5000, "1e99999", "nan", "\udcff", "\x00\ud800", "(" * 5000, "9" * 100000 + ","]


@pytest.mark.timeout(60)  # MixEval's number regexes were quadratic: "9" * 100000 + "," took minutes
@pytest.mark.parametrize("protocol", ["gbg", "paper"])
@pytest.mark.parametrize("bad", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_never_raises(task, protocol, bad):
    # `score` itself, not `safe_score` (which turns an exception into a 0 and so hides it), under every rule;
    # a lone surrogate reached the paper rule's seed hash (UTF-8 encode)
    t = get_task("mixeval", protocol)
    for rule in [t, *t.rule_variants()]:
        for it in (task.items["free-form/19"], task.items["multiple-choice/14"]):
            s = rule.score(bad, it)
            assert s.score in (0.0, 1.0) and (s.extracted is None or isinstance(s.extracted, str))


# --- the paper protocol: Psycoy/MixEval @ 906374455 (2024-07-12) -----------------------------------------------
# An independent reconstruction of MixEval's prompts, written from mix_eval/prompts/evaluation_prompts.py
# (parse_options l.127-130, construct_prompt_multichoice l.132-140, construct_prompt_freeform l.142-159).
def mixeval_parse_options(options):
    option_letters = [chr(ord("A") + i) for i in range(len(options))]
    return "\n".join([f"{letter}. {option}" for letter, option in zip(option_letters, options)])


def _mixeval_context(entry):
    c = entry.get("context", "none")
    return "context" in entry and str(c).lower() != "none" and str(c).lower() != "null" and str(c).replace(" ", "") != ""


def mixeval_construct_prompt_multichoice(entry):
    prompt, parsed_options = entry["prompt"], mixeval_parse_options(entry["options"])
    tail = "Answer with the option letter from the given choices directly."
    if _mixeval_context(entry):
        return f"{entry['context']}\n{prompt}\n{parsed_options}\n{tail}"
    return f"{prompt}\n{parsed_options}\n{tail}"


def mixeval_construct_prompt_freeform(entry):
    prompt = entry["prompt"]
    if entry["benchmark_name"] in ("BBH", "GSM8k", "MATH"):  # three constants with the same text
        prompt = f"{prompt}\nAnswer the question. \nLet's think step by step."
    else:
        prompt = f"{prompt}\nAnswer the question shortly."
    if _mixeval_context(entry):
        return f"Question: {entry['context']}\n{prompt}"
    return f"Question: {prompt}"


@pytest.mark.parametrize("name, split", [("mixeval", "mixeval"), ("mixeval_hard", "mixeval-hard")])
def test_paper_prompts_are_mixevals(name, split):
    import json

    from gbg_utils.tasks.base import PrefilledChat

    paper = get_task(name, "paper")
    items = {it.id: it for it in paper.load(data_dir=DATA)}
    for fmt, build in (
        ("free-form", mixeval_construct_prompt_freeform),
        ("multiple-choice", mixeval_construct_prompt_multichoice),
    ):
        raw = json.loads((DATA / "mixeval" / "mixeval-2024-06-01" / split / f"{fmt}.json").read_text("utf-8"))
        for i, (key, entry) in enumerate(list(raw.items())[:20]):  # MixEval's dataset.py iterates data.items()
            p = paper.prompt(items[f"{fmt}/{i}"])
            assert (
                key == str(i) and isinstance(p, PrefilledChat) and p.prefill == ""
            )  # no system message, nothing after the header
            assert p.message_list() == [{"role": "user", "content": build(entry)}]


def test_paper_protocol_is_named_and_versioned():
    gbg, paper, hard = get_task("mixeval"), get_task("mixeval", "paper"), get_task("mixeval_hard", "paper")
    assert (gbg.protocol, gbg.version, gbg.default_max_new_tokens) == ("gbg", "1", 1024)  # gbg's protocol unchanged
    assert (paper.version, paper.default_max_new_tokens, paper.stop) == ("paper-1", 512, ())  # base.py l.21
    assert hard.protocol_spec is paper.protocol_spec
    spec = paper.protocol_spec
    assert "Psycoy/MixEval" in spec.harness and "906374455" in spec.harness
    for text in (spec.rule, spec.differs):  # said plainly wherever the protocol is named
        assert "in place of the paper's GPT-3.5" in text and "approximation" in text


# (reply, MixEval's parse, found) for options A-D of GRAPHITE, from mix_eval/utils/metric_utils.py
# parse_multi_choice_response_rule (l.28-89): strip , . ! ? ; : ' (l.45-46), pad with spaces, the earliest
# letter pattern (l.84, GET_FIRST), else an option's text in a reply of more than 5 words (l.73-77), else random (l.80).
MIXEVAL_MC = [
    ("C", "C", True),
    ("C.", "C", True),
    ("D\n", "D", True),
    ("The answer is C.", "C", True),
    ("(C) to make pencil leads", "C", True),
    ("A or B? I'd say B, since A is wrong", "A", True),  # the earliest, not the last
    ("I believe graphite is used to make pencil leads, mostly", "C", True),  # option text, > 5 words
    ("**C**", None, False),  # neither "**C " nor " C**" matches: random
    ("pencil leads", None, False),  # no letter, 2 words: random
    ("c", None, False),  # lower case never matches
    ("", None, False),
]


@pytest.mark.parametrize("reply, letter, found", MIXEVAL_MC)
def test_paper_multichoice_rule_is_mixevals(reply, letter, found):
    paper = get_task("mixeval", "paper")
    item = Item("multiple-choice/14", {"format": "multiple-choice", "options": GRAPHITE, "target": [2]})
    s = paper.score(reply, item)
    assert s.extracted in "ABCD" and len(s.extracted) == 1 and s.score == float(s.extracted == "C")
    assert paper.score(reply, item) == s and paper.extract(reply, item) == s.extracted  # the random pick is reproducible
    if found:
        assert s.extracted == letter and s.reason is None
    else:
        assert "random" in s.reason
        gbg = get_task("mixeval").score(reply, item)  # gbg's rule: 0, with the reason
        assert gbg.score == 0.0 and gbg.reason in ("no option found", "empty response")


def test_paper_random_option_is_spread_over_the_options():
    paper = get_task("mixeval", "paper")
    picks = {
        paper.extract("pencil leads", Item(f"multiple-choice/{i}", {"format": "multiple-choice", "options": GRAPHITE}))
        for i in range(40)
    }
    assert picks == set("ABCD")


def test_paper_empty_option_text_matches_everywhere():
    # find_all_sub(response.lower(), "") (l.22-26, l.75): an empty pattern matches at every index, so an empty option
    # wins the text fallback at index 0; gbg's rule skips empty options.
    options = ["red", "", "green", "blue"]
    item = Item("multiple-choice/x", {"format": "multiple-choice", "options": options, "target": [1]})
    reply = "none of these colours looks right to me"
    assert get_task("mixeval", "paper").score(reply, item).extracted == "B"
    assert get_task("mixeval").score(reply, item).extracted is None


# (reply, gold, correct) from parse_freeform_response_rule (l.208-267) and eval_freeform_rule (l.343-368).
MIXEVAL_FF = [
    ("The answer is 36.", ["36"], True),
    ("So the final answer is: 65.", ["65"], True),  # the shortest tail: "is: 65", then its numbers
    ("The total is 1,080", ["1080"], True),  # numbers are floats rounded to 2 decimals
    ("x = 3.14159", ["3.14"], True),  # "=" only in the last line
    ("It was written by James Elroy in 1990", ["JAMES ELROY"], True),  # no indicator: the whole reply
    ("James Ellroy", ["JAMES ELROY"], False),  # containment, not similarity
    ("b", ["B"], True),  # one letter, gold and reply alike, is padded: " b" / "b " (normalize_str l.162-184)
    ("the answer is b", ["B"], True),  # the shortest tail, "b"
    ("Option b is right", ["B"], False),  # the tail after "is " replaces the whole reply
]


@pytest.mark.parametrize("reply, gold, correct", MIXEVAL_FF)
def test_paper_freeform_rule_is_mixevals(reply, gold, correct):
    item = Item("free-form/x", {"format": "free-form", "target": gold})
    assert get_task("mixeval", "paper").score(reply, item).score == float(correct)


def test_rule_variants_score_the_other_rule_on_the_same_completions():
    (v,) = get_task("mixeval", "paper").rule_variants()
    assert (v.scorer, v.version) == ("mixeval:gbg-rule", "1")
    (w,) = get_task("mixeval_hard").rule_variants()
    assert (w.scorer, w.version) == ("mixeval_hard:paper-rule", "paper-1")
    item = Item("multiple-choice/14", {"format": "multiple-choice", "options": GRAPHITE, "target": [2]})
    assert v.score("pencil leads", item).reason == "no option found" and "random" in w.score("pencil leads", item).reason
