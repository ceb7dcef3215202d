"""The item explorer over a real store scored by the real GSM8K task: the order the paper's Figure 3 asks for,
answers that differ from greedy marked, model text escaped, the page bounded at the paper's N=128, the widget
driven by setting values."""

from __future__ import annotations

import re

import pytest
from conftest import dump_dom

from gbg_utils.decoding import DecodingConfig
from gbg_utils.report.items import (
    ORDERS,
    ItemExplorer,
    item_text,
    item_views,
    items_page,
    page_views,
    write_items_page,
)
from gbg_utils.score.scoring import score_store
from gbg_utils.store import Sample, SampleStore
from gbg_utils.tasks import get_task

ENGINE = {"backend": "transformers", "dtype": "bfloat16", "weights": {"kind": "embedded", "name": "m1"}}


def _fill(tmp_path, n_items=4, n=8, text=None):
    """Item 0: greedy right, 7 of 8 samples wrong (Figure 3's case); item 1: all right; item 2: all wrong, long;
    item 3: greedy wrong, samples right. Completions answer in the GSM8K paper rule's way (the last number)."""
    task = get_task("gsm8k", "paper")
    items = task.load()[:n_items]
    store = SampleStore(tmp_path / "s.sqlite")
    run = store.new_run({"protocol": "paper"})  # as a generation run records it
    g = store.add_config(DecodingConfig(max_new_tokens=64), ENGINE)
    s = store.add_config(DecodingConfig(temperature=1.0, max_new_tokens=64), ENGINE)
    rows = []
    for k, it in enumerate(items):
        gold = it.data["gold"]
        right, wrong = f"So the answer is {gold}", f"So the answer is {int(float(gold)) + 1}"
        greedy = right if k in (0, 1) else wrong
        rows.append(Sample("m1", "gsm8k", it.id, "p", g, 0, greedy, 10))
        for j in range(n):
            t = {0: wrong if j else right, 1: right, 2: wrong + " and on" * 50, 3: right}[k % 4]
            rows.append(Sample("m1", "gsm8k", it.id, "p", s, j, text(k, j) if text else t, 10 + (200 if k % 4 == 2 else 0)))
    store.add_samples(rows, run)
    score_store(store, task, items=items, progress=False)
    return store, task, items, store.frame(model="m1", benchmark="gsm8k", scorer_version=task.version)


@pytest.fixture
def filled(tmp_path):
    return _fill(tmp_path)


def test_orders(filled):
    store, task, items, df = filled
    assert df["score"].notna().all()
    ids = [it.id for it in items]
    views = item_views(store, df, "gsm8k", "m1", protocol="paper")
    assert [v.item_id for v in views][0] == ids[0]  # greedy right, samples mostly wrong: first
    assert [v.item_id for v in views][-1] == ids[3]  # greedy wrong, samples right: last
    assert views[0].greedy[0]["score"] == 1.0 and sum(r["score"] for r in views[0].samples) == 1.0
    longest = item_views(store, df, "gsm8k", "m1", order="longest", protocol="paper")
    assert longest[0].item_id == ids[2]
    spread = item_views(store, df, "gsm8k", "m1", order="largest spread", protocol="paper")
    assert spread[0].item_id == ids[0]  # two distinct answers among the samples
    assert [v.item_id for v in item_views(store, df, "gsm8k", "m1", order="benchmark order", protocol="paper")] == ids
    with pytest.raises(ValueError, match="order must be one of"):
        item_views(store, df, "gsm8k", "m1", order="best")


def test_the_view_holds_prompt_texts_scores_and_marks_what_differs(filled):
    store, task, items, df = filled
    v = item_views(store, df, "gsm8k", "m1", protocol="paper")[0]
    assert "[assistant, prefilled]\nAnswer:" in v.prompt  # open-instruct's GSM8K prompt, rendered
    assert items[0].data["question"] in v.prompt
    assert len(v.greedy) == 1 and len(v.samples) == 8
    assert [v.differs(r) for r in v.samples] == [False] + [True] * 7
    text = item_text(v)
    assert text.count("\n≠ #") == 7 and "So the answer is" in text
    assert "greedy 1 · samples mean 0.12 over 8 scored of 8 · 7 answer(s) differ from greedy" in text


def test_model_text_is_escaped(tmp_path):
    store, task, items, df = _fill(tmp_path, text=lambda k, j: "<script>alert(1)</script><img src=x onerror=alert(2)> 5")
    page = items_page(page_views(store, df, "paper"), "t")
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"<(script|iframe|object)\b", page)


def test_page_stays_small_at_the_papers_n(tmp_path):
    """GSM8K at the paper's N=128, 30 items, 3000-character completions: every item of the page is bounded."""
    store, task, items, df = _fill(tmp_path, n_items=30, n=128, text=lambda k, j: f"step {j} " * 375 + f" {j}")
    out = tmp_path / "items.html"
    write_items_page(store, df, out, protocol="paper")
    size = out.stat().st_size
    page = out.read_text()
    assert size < 5_000_000, size
    assert page.count("<section>") == 25  # 20 largest differences + 5 random
    assert "96 more sampled completions in the store" in page


def test_widget_follows_its_dropdowns(filled):
    store, task, items, df = filled
    ex = ItemExplorer(store, df, protocol="paper")
    assert ex.benchmark.value == "gsm8k" and ex.order.value == ORDERS[0]
    assert f"item {items[0].id}" in ex.out.value
    ex.order.value = "longest"
    assert f"item {items[2].id}" in ex.out.value
    ex.item.value = 1
    assert (
        "item " in ex.out.value
        and ex.out.value.count("<tr class='differs' style='background:#fff3c4'>") + ex.out.value.count("<tr class=''>") == 8
    )  # the differing answers highlighted inline: JupyterLab has no page style sheet


def _gbg(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "gbg_utils.cli", *args], capture_output=True, text=True, timeout=120)


def test_gbg_show_lists_then_prints_one_item(filled, tmp_path):
    store, task, items, df = filled
    base = ["--model", "m1", "--benchmark", "gsm8k", "--store", str(store.path)]
    listed = _gbg("show", *base)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[1].split()[0] == items[0].id  # Figure 3's case first
    assert "gbg show --model m1 --benchmark gsm8k --item" in listed.stdout
    one = _gbg("show", *base, "--item", items[2].id)
    assert one.returncode == 0, one.stderr
    assert f"m1 · gsm8k · item {items[2].id} · T=1 top_p=1" in one.stdout and "PROMPT" in one.stdout
    assert one.stdout.split("\nGREEDY\n", 1)[1].count("So the answer is") == 9  # greedy and 8 samples, in full
    bad = _gbg("show", *base, "--item", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("gbg: error: item 'nope'") and len(bad.stderr.splitlines()) == 1
    other = _gbg("show", *base, "--protocol", "gbg")  # these samples were generated under the paper protocol
    assert other.returncode == 2 and "under the gbg protocol" in other.stderr
    missing = _gbg("show", "--model", "m1", "--benchmark", "gsm8k", "--store", str(tmp_path / "typo.sqlite"))
    assert missing.returncode == 2 and not (tmp_path / "typo.sqlite").exists()


def test_the_report_links_each_notebooks_items_page(filled, tmp_path):
    from gbg_utils.report.papermill import NotebookResult, build_report

    store, task, items, df = filled
    run = tmp_path / "run"
    (run / "gap").mkdir(parents=True)
    (run / "temperature").mkdir()
    write_items_page(store, df, run / "gap" / "items.html", protocol="paper")
    results = [
        NotebookResult("gap", "ok", run / "gap.ipynb", run / "gap", 1.0),
        NotebookResult("temperature", "ok", run / "temperature.ipynb", run / "temperature", 1.0),
    ]
    index = build_report(run, results, "smoke").read_text()
    assert index.count("items.html") == 1 and '<a href="gap/items.html">' in index


def test_items_page_opens_from_disk_in_a_browser_and_runs_no_model_text(tmp_path):
    """Headless Chromium opens items.html as a file: every section renders, and a completion that is a script
    stays text (the page's title is still its own)."""
    hostile = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\"> 5"
    store, task, items, df = _fill(tmp_path, text=lambda k, j: hostile)
    page = tmp_path / "items.html"
    write_items_page(store, df, page, protocol="paper", title="gsm8k items")
    out = dump_dom(page, tmp_path / "chrome", budget_ms=3000)
    dom = out.stdout
    assert "<title>gsm8k items</title>" in dom, out.stderr[-2000:]
    assert "pwned" in dom and "<title>pwned" not in dom  # shown as text, never run
    assert dom.count("<section>") == len(items) and "&lt;script&gt;" in dom
