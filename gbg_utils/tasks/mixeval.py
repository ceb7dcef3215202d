"""MixEval (release 2024-06-01): 2000 free-form + 2000 multiple-choice questions drawn from 18 benchmarks
(MixEval-Hard: 500 + 500), scored with MixEval's *rule-based* parsers, no judge model.

Two items (free-form TriviaQA; multiple-choice MMLU, gold C):

    Question: Who wrote the book 'LA Confidential'?\\nAnswer the question shortly.   -> ["JAMES ELROY"]
    A likely cause of falling Treasury bond prices might be\\nA. expansionary monetary policy.\\n
    B. contractionary monetary policy.\\nC. ...\\nAnswer with the option letter from the given choices directly.

Prompts are MixEval's chat-model prompts (`mix_eval/prompts/evaluation_prompts.py`, no few-shot prefix).
**Deviation:** the paper scored MixEval with MixEval's default GPT-3.5-Turbo-0125 answer parser; this
module re-implements the alternative rule parsers of `mix_eval/utils/metric_utils.py`
(`--free_form_parser rule`, `--multi_choice_parser rule`), labelled `FREEFORM_RULE` / `MULTICHOICE_RULE`.
One more difference: where MixEval's rule parser finds no option it picks one *at random*; here the
sample scores 0 with a reason. Score = mean over all items of both formats (MixEval's overall score
averages the two formats, which have equal sizes).

The ``paper`` protocol (`PAPER`) is MixEval at `MIXEVAL_COMMIT` (the last commit before the paper's v1,
2024-07-15) for a local chat model (mix_eval/models/base.py `ChatModel`): the same user turn, the chat template
rendered with the generation prompt and tokenised with special tokens (HF `tokenizer(str)`), 512 new tokens
(`closeended_max_new_tokens`), no stop string. The paper parsed answers with GPT-3.5-Turbo-0125 (compute_metrics.py's
default `model` parsers); gbg has no such parser, so `PAPER_RULE` is MixEval's rule parsers *in place of* it: an
approximation, named so in the rule. Unlike gbg's rule it picks a random option when none is found, as MixEval's
does. `rule_variants()` scores the other rule beside.
"""

from __future__ import annotations

import hashlib
import random
import re

from .base import Item, PrefilledChat, Protocol, Score, Task, chat
from .data import DataSearch, read_json

RELEASE = "mixeval-2024-06-01"
FILES = ("free-form.json", "multiple-choice.json")
HUB = "MixEval/MixEval"  # configs "MixEval" / "MixEval_Hard", splits "free_form" / "multiple_choice" (latest release, not pinned)

MULTI_CHOICE_PROMPT = "Answer with the option letter from the given choices directly."
FREE_FORM_PROMPT = "Answer the question shortly."
FREE_FORM_PROMPT_COT = "Answer the question. \nLet's think step by step."  # BBH, GSM8k, MATH items

# The scorer's version (`Task.version`, part of every stored score's identity) and the single source of the
# version in the rule labels below: bump it when either rule changes.
VERSION = "1"
MULTICHOICE_RULE = f"mixeval-rule-multichoice/v{VERSION}"
"""MixEval's `parse_multi_choice_response_rule`: strip , . ! ? ; : ' from both ends, pad with spaces,
find every " X ", " X\\n", "\\nX ", " X. ", "(X)", "**X ", " X**", "**X. ", " X.**" (and the newline
variants) for each option letter X; the *earliest* occurrence wins. If none and the reply has more than
5 words: the earliest occurrence of an option's text (case-insensitive). Else unparseable (score 0)."""

FREEFORM_RULE = f"mixeval-rule-freeform/v{VERSION}"
"""MixEval's `parse_freeform_response_rule` + `eval_freeform_rule`: lower-case the reply and split it
into lines; in each line keep the shortest tail after one of "could be ", "so ", "is ", "thus ",
"therefore ", "final ", "answer ", "result " (and "=" in the last line), else the whole reply; add every
number in those tails. Numbers are compared as floats rounded to 2 decimals, strings by containment
(a gold answer, lower-cased, inside a candidate; one-letter golds padded with a space)."""


# --- the paper protocol ------------------------------------------------------------------------
MIXEVAL_COMMIT = "906374455850b8fe59dd531e42008ae4b9cf2d99"  # 2024-07-12, Psycoy/MixEval
PAPER_VERSION = "paper-1"
PAPER_RULE = f"mixeval-rule-parsers-in-place-of-gpt35-parser/{PAPER_VERSION}"
"""MixEval's rule parsers (compute_metrics.py `--multi_choice_parser rule --free_form_parser rule`, metric_utils.py)
IN PLACE OF the paper's GPT-3.5-Turbo-0125 model parser: an approximation. Multiple choice: `MULTICHOICE_RULE`, and
where no option is found a random one (MixEval: `random.choice`, process-seeded; here seeded by the item and the
reply, so a re-score agrees), an empty option text matching everywhere as in MixEval. Free form: `FREEFORM_RULE`."""

# What still differs when answers *are* parsed by MixEval's model parser (`mixeval_parser`: tasks/judged/mixeval_parser.py).
GENERATION_DIFFERS = (
    "MixEval's model files set a system message per model, which gbg cannot know: none for "
    "Mistral-7B-Instruct-v0.2 and Yi-1.5 (as here), 'You are a helpful assistant.' for Qwen2-7B-Instruct (its template "
    "adds the same), a pirate persona for Llama-3-8B-Instruct (until 2024-08-30). MixEval batched with left padding "
    "and decoded with skip_special_tokens"
)

PAPER = Protocol(
    name="paper",
    version=PAPER_VERSION,
    harness=f"Psycoy/MixEval mix_eval/evaluate.py + compute_metrics.py @ {MIXEVAL_COMMIT[:9]} (ChatModel, close-ended splits)",
    prompt="one user turn: MixEval's evaluation_prompts.py (MC: options + 'Answer with the option letter ...'; free form: "
    "'Question: ...' + 'Answer the question shortly.' or step by step); no system message; nothing after the assistant header",
    rule="MixEval's rule parsers in place of the paper's GPT-3.5 parser: an approximation "
    "(a random option where none is found, as MixEval's rule parser)",
    differs="answers parsed by MixEval's rule parsers in place of the paper's GPT-3.5-Turbo-0125 parser: an approximation "
    "(set `mixeval_parser` to parse them with MixEval's model parser through a judge). " + GENERATION_DIFFERS,
    stop=(),
    max_new_tokens=512,
)


def _has_context(entry: dict) -> bool:
    c = entry.get("context")
    return c is not None and str(c).lower() not in ("none", "null") and str(c).replace(" ", "") != ""


def prompt_multichoice(entry: dict) -> str:
    options = "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(entry["options"]))
    if _has_context(entry):
        return f"{entry['context']}\n{entry['prompt']}\n{options}\n{MULTI_CHOICE_PROMPT}"
    return f"{entry['prompt']}\n{options}\n{MULTI_CHOICE_PROMPT}"


def prompt_freeform(entry: dict) -> str:
    cot = entry.get("benchmark_name") in ("BBH", "GSM8k", "MATH")
    body = f"{entry['prompt']}\n{FREE_FORM_PROMPT_COT if cot else FREE_FORM_PROMPT}"
    if _has_context(entry):
        return f"Question: {entry['context']}\n{body}"
    return f"Question: {body}"


# --- multiple choice ---------------------------------------------------------------------------
def parse_multichoice(response: str, options: list[str], empty_options: bool = False) -> str | None:
    """`MULTICHOICE_RULE`: the option letter, or None. `empty_options`: an empty option's text matches at every
    position, as in MixEval (its `find_all_sub` with an empty pattern); gbg's rule skips it."""
    letters = [chr(65 + i) for i in range(len(options))]
    for ch in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(ch)
    response = " " + response + " "
    patterns = (
        " {} ",
        " {}\n",
        "\n{} ",
        "\n{}\n",
        " {}. ",
        " {}.\n",
        "\n{}. ",
        "\n{}.\n",
        "({})",
        "**{} ",
        " {}**",
        "**{}. ",
        " {}.**",
    )
    found = [
        (m.start(), k) for k, c in enumerate(letters) for p in patterns for m in re.finditer(re.escape(p.format(c)), response)
    ]
    if not found and len(response.split()) > 5:
        low = response.lower()
        found = [
            (m.start(), k)
            for k, o in enumerate(options)
            if empty_options or str(o).strip()
            for m in re.finditer(re.escape(str(o).lower()), low)
        ]
    if not found:
        return None
    return letters[min(found)[1]]  # earliest; a tie goes to the earlier letter, as with MixEval's argmin


def paper_multichoice(response: str, options: list[str], seed: str) -> tuple[str, bool]:
    """MixEval's parse_multi_choice_response_rule: (letter, True), or (a random letter, False) where it finds none."""
    got = parse_multichoice(response, options, empty_options=True)
    if got is not None:
        return got, True
    rng = random.Random(hashlib.sha256(seed.encode("utf-8", "surrogatepass")).digest())  # a lone surrogate too
    return rng.choice([chr(65 + i) for i in range(len(options))]), False


# --- free form ---------------------------------------------------------------------------------
# MixEval's three number patterns, each digit run anchored at its start by `(?<!\d)`: the same matches (a match
# never ends before a digit, so one that started inside a run would have matched from the run's start), but linear
# time where MixEval's took quadratic (a run of 20000 digits: 6 s per pattern).
_NUM_PATTERNS = (
    r"-?\b\d{1,3}(?:,\d{3})+\b",  # with thousands commas
    r"-?(?<!\d)\d+(?:\.\d+)?[eE][+-]?\d+",  # scientific
    r"-?(?:(?<!\d)\d+\.\d+|\.\d+|(?<!\d)\d+\b)(?![eE][+-]?\d+)(?![,\d])",  # plain
)
_INDICATORS = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "]


def _normalize(s: str) -> list:
    s = s.strip()
    try:
        return [round(float(s.replace(",", "")), 2)]
    except ValueError:
        s = s.lower()
        return [" " + s, s + " "] if len(s) == 1 else [s]


def parse_freeform(response: str) -> list:
    """`FREEFORM_RULE`'s candidates: floats and lower-cased strings."""
    text = response.strip().strip(".").lower()
    # MixEval also splits on ". " before a capital letter, which can't match after lower-casing: lines only.
    subs = re.split(r"\.\s(?=[A-Z])|\n", text)
    keys = []
    for i, sub in enumerate(subs):
        indicators = _INDICATORS + (["="] if i == len(subs) - 1 else [])
        shortest = None  # MixEval's loop, quirks included: an empty first tail is replaced by the next one
        for ind in indicators:
            if ind in sub:
                tail = sub.split(ind)[-1].strip()
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in [":", ",", ".", "!", "?", ";", "'"]:
            keys.append(shortest)
    if not keys:
        keys = [text]
    preds = list(keys)
    for k in keys:
        for p in _NUM_PATTERNS:
            preds.extend(re.findall(p, k))
    out = []
    for p in preds:
        out.extend(_normalize(p))
    return sorted(set(out), key=lambda v: (isinstance(v, str), str(v)))


def eval_freeform(golds: list, preds: list) -> bool:
    answers = [a for g in golds for a in _normalize(str(g))]
    for p in preds:
        if isinstance(p, str):
            if any(isinstance(a, str) and a in p for a in answers):
                return True
        elif p in answers:
            return True
    return False


# --- the task ----------------------------------------------------------------------------------
class MixEval(Task):
    name = "mixeval"
    version = VERSION
    description = "MixEval 2024-06-01 (2000 free-form + 2000 multiple-choice), MixEval's rule-based parsers (not the paper's GPT-3.5 parser)"
    default_max_new_tokens = 1024  # room for the step-by-step prompts of its GSM8k/MATH/BBH items
    paper_n_samples = 16
    stop = ()
    split = "mixeval"
    hub_config = "MixEval"
    freeform_rule = FREEFORM_RULE
    multichoice_rule = MULTICHOICE_RULE
    protocols = {
        "gbg": Protocol(
            "gbg",
            VERSION,
            "gbg",
            "one user turn: MixEval's evaluation_prompts.py prompts; 1024 new tokens",
            f"{MULTICHOICE_RULE} + {FREEFORM_RULE} (MixEval's rule parsers; no option found scores 0)",
            "the paper parsed answers with GPT-3.5-Turbo-0125; MixEval generated at most 512 new tokens and picked a "
            "random option where its rule parser found none",
        ),
        "paper": PAPER,
    }

    def load_all(self, data_dir=None) -> list[Item]:
        src = DataSearch(self.name, data_dir)
        rels = [f"mixeval/{RELEASE}/{self.split}/{f}" for f in FILES]
        d = src.local(*rels)
        items = []
        for fmt, rel, hub_split in zip(("free-form", "multiple-choice"), rels, ("free_form", "multiple_choice")):
            if d is not None:
                obj = read_json(d / rel)
                rows = [obj[k] for k in sorted(obj, key=int)]
            else:
                rows = src.hub(HUB, self.hub_config, hub_split)
                if rows is None:
                    raise src.error(f"<dir>/mixeval/{RELEASE}/{self.split}/{{{','.join(FILES)}}} (MixEval's GitHub data folder)")
            for i, r in enumerate(rows):
                data = {k: r.get(k) for k in ("problem_type", "context", "prompt", "options", "target", "benchmark_name")}
                data["format"] = fmt
                group = r.get("benchmark_name")
                items.append(Item(f"{fmt}/{i}", data, group=group, stratum=f"{fmt}/{group}"))
        return items

    def prompt(self, item: Item) -> list[dict] | PrefilledChat:
        d = item.data
        messages = chat(prompt_multichoice(d) if d["format"] == "multiple-choice" else prompt_freeform(d))
        return PrefilledChat.of(messages, "") if self.protocol == "paper" else messages

    def rule_variants(self) -> list[Task]:
        # Both prompts are the same text: each rule reads the other protocol's completions as well.
        return self._other_rule(VERSION, PAPER_VERSION)

    def extract(self, completion: str, item: Item) -> str | None:
        if item.data["format"] == "multiple-choice":
            if self._rule() == "paper":
                return paper_multichoice(completion, item.data["options"], f"{item.id}\0{completion}")[0]
            return parse_multichoice(completion, item.data["options"])
        preds = parse_freeform(completion) if completion.strip() else []
        return " | ".join(str(p).strip() for p in preds)[:500] if preds else None

    def score(self, completion: str, item: Item) -> Score:
        d = item.data
        if self._rule() == "paper" and d["format"] == "multiple-choice":  # an empty reply, too, gets a random option
            got, found = paper_multichoice(completion, d["options"], f"{item.id}\0{completion}")
            gold = chr(65 + int(d["target"][0]))
            return Score(float(got == gold), got, None if found else "no option found: a random one, as MixEval's rule parser")
        if not completion.strip():
            return Score(0.0, None, "empty response")
        if d["format"] == "multiple-choice":
            got = parse_multichoice(completion, d["options"])
            if got is None:
                return Score(0.0, None, "no option found")
            return Score(float(got == chr(65 + int(d["target"][0]))), got)
        preds = parse_freeform(completion)
        shown = " | ".join(str(p).strip() for p in preds)[:500] or None
        return Score(float(eval_freeform(d["target"], preds)), shown)


class MixEvalHard(MixEval):
    name = "mixeval_hard"
    description = "MixEval-Hard 2024-06-01 (500 free-form + 500 multiple-choice), MixEval's rule-based parsers (not the paper's GPT-3.5 parser)"
    split = "mixeval-hard"
    hub_config = "MixEval_Hard"
