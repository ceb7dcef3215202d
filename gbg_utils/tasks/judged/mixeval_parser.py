r"""MixEval's model parser -- the one the paper scored MixEval with (GPT-3.5-Turbo-0125) -- as a judged scorer of the
stored MixEval samples, run through a configured OpenAI-compatible judge (`score/judge.py`'s `judge_store`).

MixEval (Psycoy/MixEval @ `MIXEVAL_COMMIT`, `mix_eval/compute_metrics.py` with its default `--free_form_parser model
--multi_choice_parser model`) asks a judge model, per response:

* multiple choice (`utils/judge_multichoice_parser.py`): which option the response chose, as "[[X]]"
  (`metric_utils.get_option_from_judge`: `\[\[([A-Z])\]\]`, else `\[([A-Z])\]`); the sample scores 1 when that letter
  is the gold one (`eval_multi_choice`);
* free form (`utils/judge_freeform_parser.py`): a correctness score in [0, 1] against the gold answers, as
  "[[0.5]]" (`get_score_from_judge`: `\[\[(\d+\.?\d*)\]\]`, else `\[(\d+\.?\d*)\]`); the sample scores that value.

The request is MixEval's: the system and user messages of `mix_eval/prompts/judge_prompts.py` (kept below verbatim,
`JUDGE_PROMPTS_PY`, and checked against the file's git blob in tests/test_mixeval_parser.py) with the item's question
(`prompt`, without its context), its options as "A. ..." lines or its golds as "<answer 1> ...; <answer 2> ...",
and the response; `max_tokens` 999 and `response_format` text, no temperature (OpenAI's default, 1: sent
explicitly here, as gbg sends every sampling field).

What differs: where the judge's answer holds no option or no score in [0, 1], MixEval asks again (up to 10
rounds) and then assigns a random option / a random score rounded to 0.1; gbg keeps the paid answer (one request
per sample, cached) and assigns the random one at once, seeded by the sample so a re-score agrees, with a
reason saying so. A request the judge refuses (10 times "Blocked" in MixEval: a random option, or 0.0) is
recorded as failed and retried on the next run. A judge other than gpt-3.5-turbo-0125 is an approximation,
labelled as such.
"""

from __future__ import annotations

import hashlib
import random
import re
from functools import cache

import pandas as pd

from ..base import Item
from ..base import Protocol as TaskProtocol
from ..mixeval import MIXEVAL_COMMIT, MixEval
from .base import JudgeClient, JudgedTask, Judgment, Template

JUDGE_PROMPTS_FILE = "mix_eval/prompts/judge_prompts.py"
JUDGE_PROMPTS_BLOB = "9d899802c2b683388a1301ff7f61f473dd6b4766"  # its git blob at MIXEVAL_COMMIT (last changed 2024-06-01)
PARSER_VERSION = "paper-parser-1"
PAPER_PARSER = "gpt-3.5-turbo-0125"  # compute_metrics.py's default --multichoice_judge / --freeform_judge
MAX_TOKENS = 999  # ChatGPTJudgeCloseend*.MAX_NEW_TOKENS

# The file as MixEval ships it (two lambdas building the chat messages), byte for byte: its f-strings are
# evaluated as MixEval evaluates them, escapes and trailing spaces included, rather than re-typed.
JUDGE_PROMPTS_PY = r"""############Judge Prompts for Close-ended Free-form Parser############
gpt_judge_for_closeended_freeform = lambda prompt, gold_ans, response: [
{"role": "system", "content": f"In this task, I want you to act as a judge."},
{"role": "user", "content": f'''You will be provided with a question, its golden answer(s), and the model's answer, while the context of the question is not given here. Your task is to judge how correct the model's answer is based on the golden answer(s), without seeing the context of the question, and then give a correctness score. The correctness score should be one of the below numbers: 0.0 (totally wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, or 1.0 (totally right). Your should first briefly give your reasoning process regarding how the model's answer conforms to or contradicts the golden answer(s), and then give the correctness score. The correctness score must strictly follow this format: \"[[score]]\", e.g., \"The correctness score: [[0.5]]\". Below are some examples. 

Example 1: 
Question: Sandy bought 1 million Safe Moon tokens. She has 4 siblings. She wants to keep half of them to herself and divide the remaining tokens among her siblings. After splitting it up, how many more tokens will she have than any of her siblings?
Golden Answer(s): <answer 1> 375000
Model's Answer: Sandy will have more tokens than any sibling by 3/8 million.
Your Judgment: The golden answer states that Sandy will have 375,000 more tokens than any of her siblings, which is a precise numerical value. The model's answer translates this scenario into a fraction of the total, saying Sandy will have more tokens than any sibling by 3/8 million. 1 million tokens * 3/8 = 375,000 tokens. So the model provided an answer in fractional form that, when converted to a numerical value, exactly matches the golden answer's quantity. The correctness score: [[1.0]].

Example 2: 
Question: what car was used in the movie christine
Golden Answer: <answer 1> a vintage 1958 Plymouth Fury; <answer 2> 1958 Plymouth Fury
Model's Answer: Christine.
Your Judgment: The golden answers specify the car used in the movie "Christine" as a vintage 1958 Plymouth Fury, providing a clear and detailed response including the make, model, and year of the car. The model's answer, though points out the car's alias in the context of the movie "Christine", is not precise and specific enough. The correctness score: [[0.5]].

Example 3: 
Question: In 2015 Edgar Lungu became prime minister of?
Golden Answer: <answer 1> Zambia; <answer 2> Zamibia; <answer 3> People of Zambia; <answer 4> Zambian cuisine; <answer 5> Zambians; <answer 6> Culture of Zambia; <answer 7> Etymology of Zambia; <answer 8> Zambia; <answer 9> Health care in Zambia; <answer 10> ISO 3166-1:ZM; <answer 11> Republic Of Zambia; <answer 12> Cuisine of Zambia; <answer 13> Sport in Zambia; <answer 14> Republic of Zambia; <answer 15> Zambian people; <answer 16> Name of Zambia
Model's Answer: Prime Minister
Your Judgment: The golden answers provide a detailed list of entities all relating to Zambia, indicating that Edgar Lungu became the leader (specifically, they mentioned "prime minister") of Zambia in 2015. The model's answer, "Prime Minister," merely repeats part of the question without answering it. The correctness score: [[0.0]].

Note that each one of the golden answers is considered correct. Thus if the model's answer matches any one of the golden answers, it should be considered correct. Judge the below case, give the brief reasoning process and the correctness score.

Question: {prompt}
Golden Answer(s): {gold_ans}
Model's Answer: {response}
Your Judgment: 
'''}
]

############Judge Prompts for Close-ended Multiple-choice Parser############
gpt_judge_for_closeended_multiplechoice = lambda prompt, options, response: [
{"role": "system", "content": f"In this task, I want you to act as an option extractor."},
{"role": "user", "content": f'''You will be provided with a multiple-choice question, its options, and the model's answer, while the context of the question is not given here. Your task is to extract or judge which option is chosen by the model based on its response, without seeing the context of the question. The extracted option should be one of the provided option letters. Your should first briefly give your reasoning process, and then give the extracted option letter. The extracted option must strictly follow this format: \"[[option letter]]\", e.g., \"The option chosen by the model: [[A]]\".
Below are some examples. 

Example 1: 
Question: Which technology was developed most recently?
Options:
A. cellular telephone
B. television
C. refrigerator
D. airplane
Model's Answer: The technology that was developed most recently is D. airplane.
Your Judgment: The model's response directly identifies "D. airplane" as the technology that was developed most recently. This indicates that the chosen option is D. The option chosen by the model: [[D]].

Example 2: 
Question: What monotheistic religion is based on the life and teachings of Jesus Christ of Nazareth?
Options:
A. Islam
B. Christianity
C. Hinduism
D. Buddhism
Model's Answer: B\n\nWhat is the name of the first person to be executed by the electric chair?\nA. John Wilkes Booth\nB. William Kemmler\nC. John Dillinger\nD. Bonnie and Clyde\nAnswer with the option letter 
Your Judgment: The model's response clearly identifies "B. Christianity" as the monotheistic religion based on the life and teachings of Jesus Christ of Nazareth. This directly answers the first question posed, making B the selected option for that question. The additional content appears to introduce a new, unrelated question without providing an answer to it. The option chosen by the model: [[B]].       

Example 3: 
Question: Which solution is correct?
Options:
A. provide homes for people
B. provide homes for animals
Model's Answer: Neither A nor B is entirely correct because trees do not \"provide homes\" in the traditional sense. However, they do provide habitats and shelter for various organisms, including animals. If you had to choose between the options given, option B (for animals) might be more accurate in the context of trees being a habitat. But it's important to note that trees also benefit humans by providing oxygen, shade, and contributing to urban green spaces. If you need to select one option, I would suggest:\n\nB. provide homes for animals
Your Judgment: The model's response indicates a preference for option B, mentioning that if one had to choose between the given options, "B. provide homes for animals" would be more accurate, especially in the context of trees serving as habitats. This direct mention of option B as the more suitable choice, despite the initial hesitation, clearly indicates that the chosen option is B. The option chosen by the model: [[B]].

Question: {prompt}
Options: 
{options}
Model's Answer: {response}
Your Judgment: 
'''}
]

"""

_OPTION = (re.compile(r"\[\[([A-Z])\]\]"), re.compile(r"\[([A-Z])\]"))
_SCORE = (re.compile(r"\[\[(\d+\.?\d*)\]\]"), re.compile(r"\[(\d+\.?\d*)\]"))


@cache
def _builders() -> tuple:
    """(freeform, multichoice): MixEval's `gpt_judge_for_closeended_*` message builders, from `JUDGE_PROMPTS_PY`."""
    ns: dict = {}
    exec(compile(JUDGE_PROMPTS_PY, JUDGE_PROMPTS_FILE, "exec"), ns)  # our own constant: MixEval's two lambdas
    return ns["gpt_judge_for_closeended_freeform"], ns["gpt_judge_for_closeended_multiplechoice"]


def judge_messages(item: Item, response: str) -> list[dict]:
    """MixEval's parser request for one response (format_prompts of its two ChatGPTJudgeCloseend* classes)."""
    freeform, multichoice = _builders()
    d = item.data
    if d["format"] == "multiple-choice":
        options = "\n".join(f"{chr(ord('A') + i)}. {o}" for i, o in enumerate(d["options"]))
        return multichoice(d["prompt"], options, response)
    gold = "; ".join(f"<answer {i + 1}> {a}" for i, a in enumerate(d["target"]))
    return freeform(d["prompt"], gold, response)


def option_from_judge(text: str) -> str | None:
    """`get_option_from_judge` + `is_option`: the first "[[X]]" (else "[X]") capital letter, or None."""
    for p in _OPTION:
        m = p.search(text)
        if m:
            return m.group(1)
    return None


def score_from_judge(text: str) -> float | None:
    """`get_score_from_judge` with MixEval's validity check (0 <= score <= 1): the score, or None."""
    for p in _SCORE:
        m = p.search(text)
        if m:
            try:
                s = float(m.group(1))
            except ValueError:
                return None
            return s if 0 <= s <= 1 else None
    return None


class MixEvalModelParser(JudgedTask):
    """MixEval (or MixEval-Hard) scored by MixEval's model parser through a judge: its scores are stored under
    scorer "<benchmark>:model-parser", beside the rule parsers' scores of the same completions.

        >>> parser = MixEvalModelParser(get_task("mixeval", "paper"))
        >>> judge_store(store, parser, Judge("gpt-3.5-turbo-0125"), model="qwen2.5-coder-0.5b", items=items)
    """

    paper_judge = PAPER_PARSER
    judge_max_tokens = MAX_TOKENS
    games = (0,)
    scorer_suffix = "model-parser"
    version = PARSER_VERSION
    protocols = {}

    def __init__(self, task: MixEval):
        self.task = task
        self.name = task.name
        self.protocol = task.protocol
        self.description = f"{task.name} scored by MixEval's model parser (a judge)"
        self.default_max_new_tokens = task.default_max_new_tokens
        self.stop = task.stop

    @property
    def protocol_spec(self) -> TaskProtocol | None:
        return self.task.protocol_spec

    def load_all(self, data_dir=None) -> list[Item]:
        return self.task.load_all(data_dir)

    def prompt(self, item: Item):
        return self.task.prompt(item)

    def template(self, data_dir=None) -> Template:
        sha = hashlib.sha256(JUDGE_PROMPTS_FILE.encode() + b"\0" + JUDGE_PROMPTS_PY.encode() + b"\0").hexdigest()
        return Template({JUDGE_PROMPTS_FILE: JUDGE_PROMPTS_PY}, f"Psycoy/MixEval @ {MIXEVAL_COMMIT[:9]} (in gbg)", sha)

    def judge_body(self, judge: JudgeClient, item: Item, completion: str, game: int, template: Template) -> dict:
        # MixEval sends no temperature (the API's default, 1) and asks for plain text.
        return judge.body(
            judge_messages(item, completion or ""),
            judge.budget(self.judge_max_tokens),
            temperature=1.0,
            response_format={"type": "text"},
        )

    def parse(self, choice: dict, item: Item, game: int) -> Judgment:
        text = (choice.get("message") or {}).get("content") or ""
        if item.data["format"] == "multiple-choice":
            got = option_from_judge(text)
            if got is None:
                return Judgment(text)
            return Judgment(text, got, float(got == _gold_letter(item)))
        s = score_from_judge(text)
        return Judgment(text, None if s is None else f"{s:g}", s)

    def sample_score(self, item: Item, judgments: dict[int, dict]):
        j = judgments[0]
        if j["parsed_ok"]:
            return float(j["value"]), j["verdict"], None
        # MixEval, after its retries: a random option / a random score rounded to 0.1. Seeded by the sample.
        rng = random.Random(hashlib.sha256(f"{item.id}\0{j.get('raw') or ''}".encode()).digest())
        if item.data["format"] == "multiple-choice":
            got = rng.choice([chr(ord("A") + i) for i in range(len(item.data["options"]))])
            return float(got == _gold_letter(item)), got, "the parser named no option: a random one, as MixEval after its retries"
        s = round(rng.random(), 1)
        return s, f"{s:g}", "the parser gave no score in [0, 1]: a random one, as MixEval after its retries"

    def metrics(self, rows: pd.DataFrame, items: dict[str, Item], data_dir=None) -> dict:
        s = [self.sample_score(items[str(i)], gs)[0] for i, gs in zip(rows["item_id"], rows["games"])]
        return {"score": float(sum(s) / len(s)) if s else None}


def _gold_letter(item: Item) -> str:
    return chr(ord("A") + int(item.data["target"][0]))
