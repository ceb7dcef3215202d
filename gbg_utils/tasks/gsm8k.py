"""GSM8K test (1319 grade-school maths word problems), 8-shot chain of thought, exact match on the final number.

A problem and its reference (the number after `####` is the gold answer):

    Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for
    her friends every day with four. She sells the remainder at the farmers' market daily for $2 per
    fresh duck egg. How much in dollars does she make every day at the farmers' market?
    -> Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day. ... #### 18

Prompt: open-instruct's `eval/gsm` layout, which the paper's analysis scripts read (SOURCES.md):
"Answer the following questions." then the 8 exemplars of Wei et al. (2022) as "Question: ...\\nAnswer:
... So the answer is N." and finally "Question: <q>", all in one user turn. (open-instruct appended
"Answer:" after the chat template's assistant header; a messages-only interface can't, so the model's
turn starts empty.) Exemplars come from the data dir, else from an installed `lm-eval`.
Scoring: `ANSWER_RULE` below; gold and extracted numbers are compared by value.

Under the ``paper`` protocol (`PAPER`) the prompt and rule are open-instruct's as the paper ran them
(eval/gsm/run_eval.py at `OPEN_INSTRUCT_COMMIT`): the same user turn, then "Answer:" after the chat template's
assistant header, no stop string (chat format: "we will rely on the model knows when to stop"), 512 new tokens,
and `PAPER_RULE`: the last number, compared as text. `rule_variants()` scores gbg's rule beside it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path

from .base import Item, PrefilledChat, Protocol, Score, Task, chat
from .data import DataSearch, read_json, read_jsonl

TEST_FILE = "gsm8k/test.jsonl"
EXEMPLARS_OPEN_INSTRUCT = "gsm8k/gsm8k_8shot_cot_exemplars.open_instruct.json"
EXEMPLARS_LM_EVAL = "gsm8k/gsm8k_8shot_cot_exemplars.lm_eval.json"
HUB = ("openai/gsm8k", "main", "test")
PREFIX = "Answer the following questions.\n\n"
QUESTION_CUT = "\nQuestion:"  # a model that goes on to invent the next exemplar: cut there (also the stop string)

# The scorer's version (`Task.version`, part of every stored score's identity) and the single source of the
# version in the rule label below: bump it when ANSWER_RULE changes.
VERSION = "2"
ANSWER_RULE = f"gsm8k-final-number/v{VERSION}"
"""Final-number extraction, in this order, on the completion cut at a hallucinated next "\\nQuestion:":
1. the last `\\boxed{...}`: a plain number inside it, else its LaTeX value via math-verify (`\\frac{3}{2}`);
2. the last `#### N`;
3. the first number after the last "answer is" / "answer:" / "answer =" (so "The answer is 18 dollars,
   i.e. 9 * 2" gives 18);
4. else the last number in the text (open-instruct's rule).
Numbers: thousands commas, `$`, `%`, units and a closing `.` are dropped, a leading `-` (or `−`) kept;
fractions count as one number: `3/4`, `36 / 2`, `\\frac{3}{4}` (`\\dfrac`, `\\tfrac`) and mixed `1 1/2` (whole
part and a proper fraction; `3 12/4` is two numbers); not `km/h` or dates like `12/25/2023`. The extracted
answer is the value (`18/2` -> "9", `3/4` -> "0.75", `10/3` stays "10/3"), compared exactly with the gold
(72 == 72.00 == 144/2, 1,080.5 == 1080.50). v2 added fractions (v1 took `3/4` as 3)."""

# The paper's harness: allenai/open-instruct, eval/gsm/run_eval.py, the last commit before the paper (2024-06-24).
OPEN_INSTRUCT_COMMIT = "3c335be7a9fa9e832fe15b62c0b654599d22dc7d"
PAPER_VERSION = "paper-1"
PAPER_RULE = f"gsm8k-open-instruct-last-number/{PAPER_VERSION}"
"""The paper's rule, to the letter: open-instruct's prediction (drop commas between digits, take the last match of
`[-+]?\\d*\\.\\d+|\\d+`, the whole output when there is none) against its gold (the text after `####`, commas
between digits dropped), compared as strings by GoodBadGreedy's analyse/analyse_gsm_sample.py (line 40,
`item['prediction'] == item['answer']`) -- which computed Table 2 -- not by the harness's own exact_match, which
ignores case and punctuation. So "18.0" misses "18", and a negative integer misses always: the regex drops its sign.
(Yifan-Song793/GoodBadGreedy at eb9a586.)"""
_OI_COMMA = re.compile(r"(\d),(\d)")
_OI_NUMBER = re.compile(r"[-+]?\d*\.\d+|\d+")

PAPER = Protocol(
    name="paper",
    version=PAPER_VERSION,
    harness=f"allenai/open-instruct eval/gsm/run_eval.py @ {OPEN_INSTRUCT_COMMIT[:9]} (--use_chat_format, --n_shot 8)",
    prompt='one user turn ("Answer the following questions." + 8 CoT exemplars + "Question: <q>"), then "Answer:" after the assistant header',
    rule=PAPER_RULE,
    differs="the chat formatting function the paper passed is not published: gbg renders the model's own template "
    "(open-instruct's create_prompt_with_huggingface_tokenizer_template), the harness's default was Tulu's format; "
    "the paper's sampling fork of the harness is not public",
    stop=(),
    max_new_tokens=512,
)


def _paper_numbers(completion: str) -> tuple[str, list[str]]:
    """The completion with commas between digits dropped, and the numbers open-instruct's regex finds in it."""
    out = _OI_COMMA.sub(r"\1\2", completion)
    return out, _OI_NUMBER.findall(out)


def paper_extract(completion: str) -> str:
    """open-instruct's prediction: the last number after dropping commas between digits, else the whole text."""
    out, nums = _paper_numbers(completion)
    return nums[-1] if nums else out


def paper_gold(answer: str) -> str:
    return _OI_COMMA.sub(r"\1\2", answer.split("####")[1].strip())


def paper_match(prediction: str, gold: str) -> bool:
    """GoodBadGreedy's analyse_gsm_sample.py: `item['prediction'] == item['answer']`."""
    return prediction == gold


_NUM = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+"
_UNUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"  # unsigned, for denominators
# One number, fractions first so that "3/4" is not read as 3; a slash next to a fraction (a date,
# 12/25/2023) makes it no fraction.
_VALUE_RE = re.compile(
    rf"(?<![\w.])(?:(?P<tex>-?)\\[dt]?frac\s*\{{\s*(?P<tn>{_NUM})\s*\}}\s*\{{\s*(?P<td>{_UNUM})\s*\}}"
    rf"|(?<!/)(?P<mixed>-?\d+) (?P<mn>\d+)/(?P<md>\d+)(?![\d/])"
    rf"|(?<!/)(?P<fn>{_NUM})[ \t]*/[ \t]*(?P<fd>{_UNUM})(?![\d/])"
    rf"|(?P<num>{_NUM})(?!\d))"
)
_PLAIN_RE = re.compile(rf"\s*(?:{_NUM})\s*")
_MARKER_RE = re.compile(r"(?i)\banswer\s*(?:is|would be|will be|:|=)")
_HASH_RE = re.compile(r"####\s*\$?\s*")
_LATEX_NOISE = re.compile(r"\\text\{[^{}]*\}|\\mathrm\{[^{}]*\}|\\[$%,!;: ]|\\(?:dollars?|quad)\b|[$%]|\{,\}")


def normalize_number(s: str) -> str | None:
    """'1,080.50' -> '1080.5', '-7' -> '-7', '72.00' -> '72'; None if not a number."""
    try:
        d = Decimal(s.replace(",", "").replace("−", "-").strip())
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    if d == d.to_integral_value():
        return _int_str(int(d))
    return format(d.normalize(), "f")


# Numbers go through Decimal, never through int(str) or str(int): those raise past 4300 digits
# (sys.get_int_max_str_digits), and a model can write a 5000-digit number.
def _int_str(n: int) -> str:
    return format(Decimal(n), "f")


def _int(s: str) -> int:
    return int(Decimal(s))


def _value(s: str) -> Fraction | None:
    """An extracted answer ("18", "0.75", "10/3") as an exact value."""
    try:
        p, _, q = s.partition("/")
        return Fraction(Decimal(p)) / Fraction(Decimal(q)) if q else Fraction(Decimal(p))
    except (ArithmeticError, ValueError):
        return None


def _fraction_str(f: Fraction) -> str:
    """A value as the extracted answer: its decimal when it has a finite one ("0.75", "9"), else "p/q"."""
    if f.denominator == 1:
        return _int_str(f.numerator)
    d = Decimal(f.numerator) / Decimal(f.denominator)
    return normalize_number(str(d)) if Fraction(d) == f else f"{_int_str(f.numerator)}/{_int_str(f.denominator)}"


def _num(s: str) -> Fraction:
    return Fraction(Decimal(s.replace(",", "")))


def _match_value(m: re.Match) -> tuple[str | None, int]:
    """(normalised value, end) of one _VALUE_RE match; (None, end of the first number) for an improper
    mixed number or a zero denominator, which are read as separate numbers."""
    try:
        if m.group("tn") is not None:
            f = _num(m.group("tn")) / _num(m.group("td"))
            return _fraction_str(-f if m.group("tex") else f), m.end()
        if m.group("mixed") is not None:
            whole, a, b = m.group("mixed"), _int(m.group("mn")), _int(m.group("md"))
            if 0 < a < b:
                frac = Fraction(a, b)
                return _fraction_str(_int(whole) - frac if whole.startswith("-") else _int(whole) + frac), m.end()
            return normalize_number(whole), m.start() + len(whole)
        if m.group("fn") is not None:
            return _fraction_str(_num(m.group("fn")) / _num(m.group("fd"))), m.end()
    except ZeroDivisionError:  # "3/0": the numerator alone; "\\frac{3}{0}": nothing
        if m.group("fn") is not None:
            return normalize_number(m.group("fn")), m.start() + len(m.group("fn"))
        return None, m.end()
    return normalize_number(m.group("num")), m.end()


def _values(text: str, first: bool = False) -> list[str]:
    """The numbers in `text` in order (normalised values, fractions included); only the first if `first`."""
    out, pos = [], 0
    while (m := _VALUE_RE.search(text, pos)) is not None:
        v, pos = _match_value(m)
        if v is not None:
            out.append(v)
            if first:
                break
    return out


def _last_boxed(text: str) -> str | None:
    i = text.rfind("\\boxed")
    if i < 0:
        i = text.rfind("\\fbox")
    if i < 0:
        return None
    j = text.find("{", i)
    if j < 0:
        return None
    depth = 0
    for k in range(j, len(text)):
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        if depth == 0:
            return text[j + 1 : k]
    return None


def _latex_number(content: str) -> str | None:
    """The number a \\boxed{} holds: plain after removing units and $, else math-verify's value."""
    bare = _LATEX_NOISE.sub("", content).strip().rstrip(".")
    if _PLAIN_RE.fullmatch(bare):
        return normalize_number(bare)
    if len(content) <= 200:  # math-verify is only needed (and only imported) for real LaTeX
        v = _math_verify_number(content)
        if v is not None:
            return v
    nums = _values(bare)
    return nums[-1] if nums else None


def _math_verify_number(content: str) -> str | None:
    try:
        import logging

        import sympy
        from math_verify import parse

        logging.getLogger("math_verify").setLevel(logging.ERROR)
        # parsing_timeout=None: its timeout uses SIGALRM, which breaks outside the main thread; the
        # parse is lazy (10^{10^{10}} stays unevaluated) and we only accept evaluated numbers below.
        got = parse("\\boxed{" + content + "}", parsing_timeout=None)
    except Exception:
        return None
    for v in got:
        if isinstance(v, sympy.Integer):
            return _int_str(int(v))
        if isinstance(v, sympy.Rational):
            return _fraction_str(Fraction(int(v.p), int(v.q)))
        if isinstance(v, sympy.Float):
            return normalize_number(str(v))
    return None


def extract_answer(completion: str) -> str | None:
    """`ANSWER_RULE` applied to one completion; the normalised number as a string, or None."""
    text = completion.replace("−", "-").split(QUESTION_CUT, 1)[0]
    boxed = _last_boxed(text)
    if boxed is not None:
        v = _latex_number(boxed)
        if v is not None:
            return v
    for h in reversed(list(_HASH_RE.finditer(text))):  # the last "#### N" that has a number
        m = _VALUE_RE.match(text, h.end())
        if m is not None:
            v = _match_value(m)[0]
            if v is not None:
                return v
    markers = list(_MARKER_RE.finditer(text))
    if markers:
        after = text[markers[-1].end() :]
        sentence = re.split(r"\n\s*\n|(?<=[^\d\s])\.(?:\s|$)", after, maxsplit=1)[0]
        nums = _values(sentence, first=True)
        if nums:
            return nums[0]
    nums = _values(text)
    return nums[-1] if nums else None


class GSM8K(Task):
    name = "gsm8k"
    version = VERSION  # 2 reads fractions (ANSWER_RULE)
    description = "GSM8K test, 8-shot CoT (open-instruct exemplars), exact match on the final number"
    default_max_new_tokens = 512  # open-instruct's eval/gsm default
    paper_n_samples = 128
    stop = (QUESTION_CUT,)
    answer_rule = ANSWER_RULE
    protocols = {
        "gbg": Protocol(
            "gbg",
            VERSION,
            "gbg",
            'one user turn ("Answer the following questions." + 8 CoT exemplars + "Question: <q>"), the assistant turn empty; stop "\\nQuestion:"',
            ANSWER_RULE,
            'open-instruct put "Answer:" after the assistant header; it took the last number, gbg the stated answer first',
        ),
        "paper": PAPER,
    }

    def __init__(self):
        self._exemplars: list[dict] | None = None

    def load_all(self, data_dir=None) -> list[Item]:
        src = DataSearch(self.name, data_dir)
        d = src.local(TEST_FILE)
        if d is not None:
            rows = read_jsonl(d / TEST_FILE)
        else:
            rows = src.hub(*HUB)
            if rows is None:
                raise src.error(f"<dir>/{TEST_FILE} (one JSON object per line with 'question' and 'answer')")
        self._exemplars = self._load_exemplars(data_dir)
        items = []
        for i, r in enumerate(rows):
            gold = normalize_number(r["answer"].split("####")[-1])
            items.append(Item(str(i), {"question": r["question"], "answer": r["answer"], "gold": gold}))
        return items

    def _load_exemplars(self, data_dir) -> list[dict]:
        """[{question, cot_answer}] x 8, ending in "So the answer is N." (open-instruct's wording)."""
        src = DataSearch(self.name + " 8-shot exemplars", data_dir)
        d = src.local(EXEMPLARS_OPEN_INSTRUCT)
        if d is not None:
            ex = read_json(d / EXEMPLARS_OPEN_INSTRUCT)["exemplars"]
            return [{"question": e["question"], "cot_answer": e["cot_answer"]} for e in ex]
        d = src.local(EXEMPLARS_LM_EVAL)
        if d is not None:
            ex = read_json(d / EXEMPLARS_LM_EVAL)["exemplars"]
            return [{"question": e["question"], "cot_answer": _so_the_answer(e["target"])} for e in ex]
        ex = _lm_eval_package_exemplars(src)
        if ex:
            return ex
        raise src.error(f"<dir>/{EXEMPLARS_OPEN_INSTRUCT} (or install `lm-eval`, whose gsm8k-cot.yaml ships them)")

    def prompt(self, item: Item) -> list[dict]:
        if self._exemplars is None:  # load() reads them; otherwise from $GBG_DATA_DIR or lm-eval
            self._exemplars = self._load_exemplars(None)
        shots = "\n\n".join(f"Question: {e['question']}\nAnswer: {e['cot_answer']}" for e in self._exemplars)
        messages = chat(f"{PREFIX}{shots}\n\nQuestion: {item.data['question'].strip()}")
        return PrefilledChat.of(messages, "Answer:") if self.protocol == "paper" else messages

    def rule_variants(self) -> list[Task]:
        # The paper's completions under gbg's rule, and gbg's under the paper's: side by side, as lm-eval's
        # strict and flexible matches.
        return self._other_rule(VERSION, PAPER_VERSION)

    def extract(self, completion: str, item: Item) -> str | None:
        if self._rule() == "paper":
            return paper_extract(completion)
        return extract_answer(completion)

    def score(self, completion: str, item: Item) -> Score:
        if self._rule() == "paper":
            _, nums = _paper_numbers(completion)
            if not nums:
                return Score(0.0, None, "no number found")
            return Score(float(paper_match(nums[-1], paper_gold(item.data["answer"]))), nums[-1])
        got = self.extract(completion, item)
        if got is None:
            return Score(0.0, None, "no number found")
        ok = _value(got) is not None and _value(got) == _value(item.data["gold"])
        return Score(float(ok), got)


def _so_the_answer(target: str) -> str:
    # lm-eval's copy says "The answer is N."; open-instruct's (the paper's) "So the answer is N."
    return target.strip().replace("The answer is", "So the answer is")


def _lm_eval_package_exemplars(src: DataSearch) -> list[dict] | None:
    import importlib.util

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        src.note("installed package lm-eval: not installed")
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "tasks" / "gsm8k" / "gsm8k-cot.yaml"
    try:
        import yaml

        class _Loader(yaml.SafeLoader):  # its YAML uses custom tags such as !function
            pass

        _Loader.add_multi_constructor("", lambda loader, suffix, node: None)
        samples = yaml.load(path.read_text("utf-8"), Loader=_Loader)["fewshot_config"]["samples"]
        return [{"question": s["question"], "cot_answer": _so_the_answer(s["target"])} for s in samples]
    except Exception as e:
        src.note(f"installed package lm-eval {path}: {type(e).__name__}: {e}"[:200])
        return None
