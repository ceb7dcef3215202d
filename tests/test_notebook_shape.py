"""The notebooks read as documents: their code cells call the library and define nothing (every function, and every
sentence that reads a table, lives in gbg_utils and is tested there), and each ends by saying what it shows and at
what scale it would mean something."""

import ast
import re

import nbformat
import pytest

from gbg_utils.params import NOTEBOOK_DIR, NOTEBOOKS, STANDALONE_NOTEBOOKS

ALL = NOTEBOOKS + STANDALONE_NOTEBOOKS
CLOSING = "## What this shows, and at what scale it would mean something"
EXPLORER = ("gap", "temperature", "best_of_n")  # the notebooks that show the item explorer


def _nb(name):
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def _python(source: str) -> str:
    """A cell's source as Python: IPython's magics (`%matplotlib inline`) commented out."""
    return "\n".join("#" + line if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def definitions(source: str) -> list[str]:
    """What a code cell defines: functions, lambdas and classes, by kind and line."""
    found = []
    for node in ast.walk(ast.parse(_python(source))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((node.lineno, f"def {node.name} (line {node.lineno})"))
        elif isinstance(node, ast.Lambda):
            found.append((node.lineno, f"lambda (line {node.lineno})"))
        elif isinstance(node, ast.ClassDef):
            found.append((node.lineno, f"class {node.name} (line {node.lineno})"))
    return [text for _, text in sorted(found)]


def test_the_check_finds_what_a_cell_defines():
    cell = "%matplotlib inline\ndef f(x):\n    return x\ng = lambda: 1\nclass C:\n    pass\ndf = f(2)"
    assert definitions(cell) == ["def f (line 2)", "lambda (line 4)", "class C (line 5)"]
    assert definitions("gap = stats.gap_table(df)\ndisplay(Markdown(describe.describe_gap(gap)))") == []


@pytest.mark.parametrize("name", ALL)
def test_no_notebook_defines_a_function(name):
    found = {c.get("id"): d for c in _nb(name).cells if c.cell_type == "code" for d in [definitions(c.source)] if d}
    assert not found, f"{name}.ipynb defines {found}: move it to gbg_utils (report/describe.py for a reading) with a test"


@pytest.mark.parametrize("name", ALL)
def test_each_notebook_ends_with_what_it_shows_and_at_what_scale(name):
    last = _nb(name).cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith(CLOSING + "\n"), name
    body = last.source[len(CLOSING) :].strip()
    sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z`(\"])", body) if s.strip()]
    assert 4 <= len(sentences) <= 8, (name, len(sentences))
    assert "ffline" in body and f"params/{name}/paper.yaml" in body  # the offline run and the paper's, both named


@pytest.mark.parametrize("name", ALL)
def test_every_notebook_generates_through_generate_and_score_and_saves_its_table(name):
    code = "\n".join(c.source for c in _nb(name).cells if c.cell_type == "code")
    assert "study.collect(" not in code
    call = "stability_grid.run(P" if name == "stability" else "study.generate_and_score(P"
    frame = "outputs" if name == "stability" else "df"
    assert call in code and re.search(rf"study\.save\(P\.output_path, .*frame={frame}\)", code, re.S), name


@pytest.mark.parametrize("name", EXPLORER)
def test_the_item_explorer_is_shown_after_a_markdown_cell_that_says_what_it_is(name):
    cells = _nb(name).cells
    (i,) = [i for i, c in enumerate(cells) if c.cell_type == "code" and "item_explorer(" in c.source]
    assert cells[i].source == "items.item_explorer(SampleStore(P.store_path), df, P.protocol, P.data_path)"
    assert cells[i - 1].cell_type == "markdown" and "item explorer" in cells[i - 1].source


def shared_code_cells(notebooks: dict) -> list[tuple[str, str, str]]:
    """(first notebook, second notebook, cell) for every code cell longer than three lines that two notebooks share
    (parameters cells aside): such a cell belongs in gbg_utils, called from both."""
    seen, shared = {}, []
    for name, nb in notebooks.items():
        for c in nb.cells:
            if c.cell_type != "code" or "parameters" in c.metadata.get("tags", []):
                continue
            src = c.source.strip()
            if len(src.splitlines()) <= 3:
                continue
            if src in seen and seen[src] != name:
                shared.append((seen[src], name, src))
            seen.setdefault(src, name)
    return shared


def test_the_check_finds_a_code_cell_two_notebooks_share():
    cell = "a = 1\nb = 2\nc = 3\nd = 4"
    a = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    b = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell), nbformat.v4.new_code_cell("x = 1\ny = 2\nz = 3")])
    c = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1\ny = 2\nz = 3")])  # three lines: allowed
    assert shared_code_cells({"a": a, "b": b, "c": c}) == [("a", "b", cell)]


def test_no_two_notebooks_share_a_code_cell_longer_than_three_lines():
    notebooks = {n: nbformat.read(NOTEBOOK_DIR / f"{n}.ipynb", as_version=4) for n in ALL}
    assert shared_code_cells(notebooks) == []
