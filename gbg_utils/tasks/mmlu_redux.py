"""MMLU-Redux v1 (30 MMLU subjects x 100 re-annotated questions = 3000), multiple choice, accuracy.

One item (subject "anatomy", gold = the original MMLU label, here D):

    Which of the following is a disorder characterized by uncontrollable episodes of falling asleep
    during the day?   (A) Dyslexia  (B) Epilepsy  (C) Hydrocephalus  (D) Narcolepsy

Items: all 3000, every error type kept, since the paper reports 3000 instances. The gold is the
original MMLU label (`answer`); the annotators' `error_type` (ok 2724, bad question clarity 85,
wrong groundtruth 84, multiple correct answers 35, no correct answer 30, expert 27, bad options
clarity 15) and their free-text `correct_answer` are kept in `item.data`, so an analysis can
restrict itself to the 2724 "ok" questions. The CSVs mix `,` and `;` delimiters: sniffed per file.
Prompt (``gbg`` protocol): zero-shot chain of thought, "### Answer: (C) ..." at the end, after an earlier
(June 2024) ZeroEval template. Scoring: `LETTER_RULE`.

The ``paper`` protocol (`PAPER`) is ZeroEval (WildEval/ZeroEval, formerly yuchenlin/ZeroEval) at
`ZEROEVAL_COMMIT`, the last commit on or before the paper's v1 (2024-07-15): src/templates/MCQA.py's JSON
template ("reasoning" and "answer" fields) filled by src/_TEMPLATES.py `apply_mc_template`, one user turn with the
model's HF chat template (scripts/_common_eval.sh `--use_hf_conv_template`), nothing after the assistant header,
the rendered text tokenised by vLLM with special tokens, 4096 new tokens, no stop string; scored by
src/evaluation/mcqa_eval.py (`PAPER_RULE`). `rule_variants()` scores gbg's letter rule beside it.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re

from .base import Item, PrefilledChat, Protocol, Score, Task, chat
from .data import DataSearch, TaskDataError, read_text

SUBJECTS = (
    "anatomy astronomy business_ethics clinical_knowledge college_chemistry college_computer_science "
    "college_mathematics college_medicine college_physics conceptual_physics econometrics electrical_engineering "
    "formal_logic global_facts high_school_chemistry high_school_geography high_school_macroeconomics "
    "high_school_mathematics high_school_physics high_school_statistics high_school_us_history human_aging "
    "logical_fallacies machine_learning miscellaneous philosophy professional_accounting professional_law "
    "public_relations virology"
).split()
LOCAL_DIR = "mmlu_redux/v1_30_subjects"
HUB = "edinburgh-dawg/mmlu-redux"  # one config per subject, split "test"

TEMPLATE = """{question}

{choices}
Please answer this question by selecting the best choice. For example, if you believe the answer is "(C) candles", you should output "### Answer: (C) candles" at the end.

Let's think step by step, and then choose the best answer."""

GOLD_RULE = "mmlu-label"  # the original MMLU `answer` index, for every error type

# The scorer's version (`Task.version`, part of every stored score's identity) and the single source of the
# version in the rule label below: bump it when LETTER_RULE changes.
VERSION = "1"
LETTER_RULE = f"mc-letter/v{VERSION}"
"""The chosen letter, from the most explicit statement present:
1. the last of: "answer" followed by a letter ("### Answer: (C) candles", "The answer is **B**",
   `"answer": "C"`, "answer is option D"), "correct/best/final option|choice is X", `\\boxed{X}`;
2. a reply that starts with the letter ("C", "(C)", "C. mesoderm", "**C**");
3. the last "(X)" in the last two non-empty lines ("So it must be (D).");
4. the last line equal to one option's text.
Only letters of existing options count (A-D here); a lower-case letter never does ("a" is an article)."""

# --- the paper protocol: ZeroEval at the paper's time ---------------------------------------------
ZEROEVAL_COMMIT = "dbcae2e8fbf4770374ff5334394e0f3c24524879"  # 2024-07-15, WildEval/ZeroEval
# src/templates/MCQA.py at ZEROEVAL_COMMIT, to the character (it starts with a newline).
ZEROEVAL_MCQA = (  # lines with trailing spaces kept, as in the file
    "\n## Question: \n\n{question}\n\n## Choices:\n\n{choices}\n\n## Instruction \n\n"
    "Please answer this question by first reasoning and then selecting the correct choice. \n"
    "Present your reasoning and solution in the following json format. \n"
    'Please show your choice in the `answer` field with only the choice letter, e.g.,`"answer": "C"`.\n\n'
    '```json\n{\n    "reasoning": "___",\n    "answer": "___"\n}\n```\n'
)
PAPER_VERSION = "paper-1"
PAPER_RULE = f"zeroeval-mcqa-json/{PAPER_VERSION}"
"""ZeroEval's src/evaluation/mcqa_eval.py, to the letter: the output is cleaned (`<|endoftext|>` -> " ", stripped);
the last complete top-level {...} (braces counted, newlines removed) is parsed as JSON; if that fails or has no
"answer", the first `"answer": "..."` (then quote-less `"answer": X`, then `answer: X`) is taken by regex; the
answer is correct iff it equals the gold's letter exactly ("C", not "(C)" or "c"). No answer scores 0."""

PAPER = Protocol(
    name="paper",
    version=PAPER_VERSION,
    harness=f"WildEval/ZeroEval src/templates/MCQA.py + src/evaluation/mcqa_eval.py @ {ZEROEVAL_COMMIT[:9]} (--use_hf_conv_template)",
    prompt="one user turn: ZeroEval's MCQA template (question, `- (A) ...` choices, reasoning + answer as JSON); nothing after the assistant header",
    rule=PAPER_RULE,
    differs="gold: the original MMLU label for all 3000 items (the paper's count); ZeroEval's own data kept only 'ok' and "
    "letter-corrected 'wrong_groundtruth' items, with the corrected gold. ZeroEval's vLLM also stopped at <|im_end|> / "
    "<|eot_id|> where the tokenizer has them (gbg: the model's own end-of-turn tokens). ZeroEval adopted this JSON "
    "template on 2024-07-13; runs made before then used the earlier '### Answer:' template (gbg's)",
    stop=(),
    max_new_tokens=4096,
)


def zeroeval_prompt(question: str, choices: list[str]) -> str:
    """src/_TEMPLATES.py apply_mc_template: two `str.replace`s, the question as stored (not stripped)."""
    return ZEROEVAL_MCQA.replace("{question}", question).replace("{choices}", format_choices(choices))


def _last_complete_json(s: str):
    """src/evaluation/eval_utils.py extract_last_complete_json."""
    stack, start, last = [], None, None
    for i, ch in enumerate(s):
        if ch == "{":
            stack.append(i)
            if start is None:
                start = i
        elif ch == "}" and stack:
            stack.pop()
            if not stack:
                last, start = s[start : i + 1], None
    if last:
        try:
            return json.loads(last.replace("\n", ""))
        except (ValueError, RecursionError):  # ZeroEval caught JSONDecodeError only, and crashed on a 5000-digit
            pass  # int (int()'s 4300-digit limit) or deep nesting; here they fall back to the regexes, as bad JSON
    return None


def _values_from_json(s: str, key: str = "answer") -> dict:
    """src/evaluation/eval_utils.py extract_values_from_json(allow_no_quotes=True), for one key."""
    m = re.search(f'"{key}"\\s*:\\s*"([^"]*?)"', s) or re.search(f'"{key}"\\s*:\\s*"(.*?)"', s, re.DOTALL)
    if not m:
        m = re.search(f'"{key}"\\s*:\\s*([^,\\s]*)', s) or re.search(f"{key}\\s*:\\s*([^,\\s]*)", s)
    return {key: m.group(1)} if m else {}


def zeroeval_answer(completion: str):
    """The model's "answer" as ZeroEval's mcqa_eval.py reads it (any JSON value), or None when there is none."""
    out = completion.replace("<|endoftext|>", " ").strip()  # src/unified_utils.py clear_output
    parsed = _last_complete_json(out)
    if not isinstance(parsed, dict) or "answer" not in parsed:
        parsed = _values_from_json(out)
    return parsed.get("answer") if "answer" in parsed else None


_SEP = r"[\s:*_\"'#=\-]*"
_CHOICE = r"(?:(?i:option|choice|letter)\s*)?\(?\s*([A-Z])\s*\)?(?![A-Za-z0-9])"
_P_ANSWER = re.compile(rf"(?i:\banswer)(?:\s+(?i:is|would be|should be|will be))?{_SEP}{_CHOICE}")
_P_OPTION = re.compile(
    rf"(?i:\b(?:correct|best|right|final)\s+(?:option|choice))(?:\s+(?i:is|would be))?{_SEP}\(?([A-Z])\)?(?![A-Za-z0-9])"
)
_P_BOXED = re.compile(r"\\boxed\{\s*(?:\\text(?:bf)?\{)?\s*\(?([A-Z])\)?")
_P_LEAD = re.compile(r"^[\s*#>_]*\(?([A-Z])(?:\)|\.|:|\*\*|\s*$)")
_P_PAREN = re.compile(r"\(([A-Z])\)")


def _norm(s: str) -> str:
    return re.sub(r"[\s*_`\"'.]+", " ", s).strip().lower()


def extract_letter(completion: str, options: list[str]) -> str | None:
    """`LETTER_RULE` for a question with these options; the letter or None."""
    valid = {chr(65 + i) for i in range(len(options))}
    text = completion.strip()
    stated = [(m.start(), m.group(1)) for p in (_P_ANSWER, _P_OPTION, _P_BOXED) for m in p.finditer(text) if m.group(1) in valid]
    if stated:
        return max(stated)[1]
    m = _P_LEAD.match(text.split("\n", 1)[0]) if text else None
    if m and m.group(1) in valid:
        return m.group(1)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for m in reversed(list(_P_PAREN.finditer("\n".join(lines[-2:])))):
        if m.group(1) in valid:
            return m.group(1)
    if lines:
        last = _norm(lines[-1])
        hits = [chr(65 + i) for i, o in enumerate(options) if _norm(str(o)) == last and last]
        if len(hits) == 1:
            return hits[0]
    return None


def _shown(answer) -> str:
    """The JSON answer as stored (200 characters); a nested value too deep to print is shown as its type."""
    try:
        return str(answer)[:200]
    except (RecursionError, ValueError):
        return f"<{type(answer).__name__}>"


def format_choices(options: list[str]) -> str:
    return "".join(f"- ({chr(65 + i)}) {o}\n" for i, o in enumerate(options))


class MMLURedux(Task):
    name = "mmlu_redux"
    version = VERSION
    description = "MMLU-Redux v1, 30 subjects x 100, zero-shot CoT (ZeroEval template), letter accuracy vs the MMLU label"
    default_max_new_tokens = 1024
    paper_n_samples = 32
    stop = ()
    letter_rule = LETTER_RULE
    gold_rule = GOLD_RULE
    protocols = {
        "gbg": Protocol(
            "gbg",
            VERSION,
            "gbg",
            'one user turn: question, `- (A) ...` choices, \'output "### Answer: (C) candles" at the end\', "Let\'s think step by step"',
            LETTER_RULE,
            "ZeroEval at the paper's time asked for JSON (reasoning, answer) and read the JSON answer field; 4096 new tokens",
        ),
        "paper": PAPER,
    }

    def load_all(self, data_dir=None) -> list[Item]:
        src = DataSearch(self.name, data_dir)
        files = [f"{LOCAL_DIR}/mmlu_{s}.csv" for s in SUBJECTS]
        d = src.local(*files)
        items: list[Item] = []
        for subject, rel in zip(SUBJECTS, files):
            if d is not None:
                rows = read_csv(d / rel)
            else:
                rows = src.hub(HUB, subject, "test")
                if rows is None:
                    raise src.error(f"<dir>/{LOCAL_DIR}/mmlu_<subject>.csv for the 30 v1 subjects")
            for i, r in enumerate(rows):
                items.append(_item(subject, i, r))
        return items

    def prompt(self, item: Item) -> list[dict] | PrefilledChat:
        if self.protocol == "paper":
            return PrefilledChat.of(chat(zeroeval_prompt(item.data["question"], item.data["choices"])), "")
        return chat(TEMPLATE.format(question=item.data["question"].strip(), choices=format_choices(item.data["choices"])))

    def rule_variants(self) -> list[Task]:
        # gbg's letter rule reads the paper protocol's JSON answers too ("answer": "C"); ZeroEval's JSON rule on gbg's
        # "### Answer: (C)" completions would find no JSON: not offered.
        return [self._variant("gbg-rule", VERSION)] if self._rule() == "paper" else []

    def extract(self, completion: str, item: Item) -> str | None:
        if self._rule() == "paper":
            got = zeroeval_answer(completion)
            return None if got is None else _shown(got)
        return extract_letter(completion, item.data["choices"])

    def score(self, completion: str, item: Item) -> Score:
        if self._rule() == "paper":
            got = zeroeval_answer(completion)
            if got is None:
                return Score(0.0, None, "no answer field found")
            choices = item.data["choices"]
            gold = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[choices.index(choices[item.data["answer"]])]  # the first equal choice
            return Score(float(got == gold), _shown(got))
        got = self.extract(completion, item)
        if got is None:
            return Score(0.0, None, "no answer letter found")
        return Score(float(got == chr(65 + item.data["answer"])), got)


def read_csv(path) -> list[dict]:
    """One subject's CSV; the delimiter (`,` or `;`) is sniffed from the header line."""
    text = read_text(path)  # a file that is not UTF-8 is a one-line error naming it
    header = text.split("\n", 1)[0]
    delim = ";" if header.count(";") > header.count(",") else ","
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delim))


def _item(subject: str, i: int, r: dict) -> Item:
    try:
        choices = r["choices"]
        if isinstance(choices, str):
            choices = ast.literal_eval(choices)
        choices = [str(c) for c in choices]
        answer = int(r["answer"])
        assert 0 <= answer < len(choices)
    except Exception as e:
        raise TaskDataError(f"mmlu_redux: {subject} row {i} is malformed ({type(e).__name__}: {e})") from None
    data = {
        "subject": subject,
        "question": r["question"],
        "choices": choices,
        "answer": answer,
        "error_type": (r.get("error_type") or "").strip().lower(),
        "correct_answer": r.get("correct_answer") or "",
    }
    return Item(f"{subject}/{i}", data, group=subject)
