"""MixEval's model parser (the paper's GPT-3.5 parser) through a configured judge: the request is MixEval's, byte for
byte; the judge's answer is read as MixEval reads it; and the scores land beside the rule parsers' on the same
completions. Against a real local HTTP judge server; no model."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from conftest import send_json

from gbg_utils.decoding import DecodingConfig
from gbg_utils.score.judge import Judge, judge_store
from gbg_utils.store import Sample, SampleStore
from gbg_utils.tasks import get_task
from gbg_utils.tasks.judged.mixeval_parser import (
    JUDGE_PROMPTS_BLOB,
    JUDGE_PROMPTS_PY,
    MixEvalModelParser,
    judge_messages,
    option_from_judge,
    score_from_judge,
)


def test_the_judge_prompts_are_mixevals_file_byte_for_byte():
    """The git blob id of mix_eval/prompts/judge_prompts.py at Psycoy/MixEval 9063744 (`git rev-parse
    9063744:mix_eval/prompts/judge_prompts.py`), recomputed from the text gbg sends."""
    data = JUDGE_PROMPTS_PY.encode()
    assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == "9d899802c2b683388a1301ff7f61f473dd6b4766"
    assert JUDGE_PROMPTS_BLOB == "9d899802c2b683388a1301ff7f61f473dd6b4766"


def _item(fmt: str, **data):
    from gbg_utils.tasks.base import Item

    return Item("x/0", {"format": fmt, "context": None, "benchmark_name": "T", **data})


def test_requests_are_built_as_mixeval_formats_them():
    """My reading of judge_freeform_parser.py / judge_multichoice_parser.py `format_prompts`: golds joined as
    "<answer i> g" with "; ", options as "A. o" lines; the question without its context; the response as is."""
    ff = judge_messages(_item("free-form", prompt="Who wrote X?", target=["Ann", "Bo"]), "It was Ann.")
    assert ff[0] == {"role": "system", "content": "In this task, I want you to act as a judge."}
    assert ff[1]["role"] == "user"
    assert ff[1]["content"].startswith("You will be provided with a question, its golden answer(s), and the model's answer")
    assert ff[1]["content"].endswith(
        "Question: Who wrote X?\nGolden Answer(s): <answer 1> Ann; <answer 2> Bo\nModel's Answer: It was Ann.\nYour Judgment: \n"
    )
    # The examples keep MixEval's escapes: a real newline pair in Example 2 of the multiple-choice prompt.
    mc = judge_messages(_item("multiple-choice", prompt="Pick one.", options=["red", "blue"], target=[1]), "B")
    assert mc[0] == {"role": "system", "content": "In this task, I want you to act as an option extractor."}
    assert "Model's Answer: B\n\nWhat is the name of the first person" in mc[1]["content"]
    assert mc[1]["content"].endswith("Question: Pick one.\nOptions: \nA. red\nB. blue\nModel's Answer: B\nYour Judgment: \n")


@pytest.mark.parametrize(
    "text, option",
    [
        ("The option chosen by the model: [[C]].", "C"),
        ("first [B] then [[D]]", "D"),  # the double brackets are searched first
        ("only [B] here", "B"),
        ("[[a]] lower case", None),
        ("[[AB]]", None),
        ("no brackets: A", None),
        ("[[Z]]", "Z"),  # MixEval's is_option takes any capital letter; it then simply is not the gold
    ],
)
def test_option_from_judge(text, option):
    assert option_from_judge(text) == option


@pytest.mark.parametrize(
    "text, score",
    [
        ("The correctness score: [[0.5]].", 0.5),
        ("[[1]]", 1.0),
        ("[[1.0]] and [0.2]", 1.0),
        ("[0.3]", 0.3),
        ("[[1.5]]", None),  # outside [0, 1]: MixEval retries, then draws
        ("[[-0.5]]", None),  # the patterns take no sign
        ("score 0.5", None),
    ],
)
def test_score_from_judge(text, score):
    assert score_from_judge(text) == score


# --- end to end: a judge server, a store, the scores ----------------------------------------------------
class _Parser(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).seen.append(body)
        user = body["messages"][1]["content"]
        answer = user.rsplit("Model's Answer: ", 1)[1].split("\nYour Judgment:", 1)[0]
        # The "model" answers are scripted below: the parser echoes what the answer asks it to say.
        content = answer.split("SAY ", 1)[1] if "SAY " in answer else "I cannot tell."
        send_json(
            self, 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
        )

    def log_message(self, *a):
        pass


@pytest.fixture
def parser_server():
    _Parser.seen = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Parser)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


ENGINE = {"backend": "transformers", "dtype": "bfloat16", "weights": {"kind": "embedded", "name": "m1"}}


def test_model_parser_scores_beside_the_rules(tmp_path, parser_server):
    task = get_task("mixeval", "paper")
    items = task.load(limit=6)
    mc = [it for it in items if it.data["format"] == "multiple-choice"]
    ff = [it for it in items if it.data["format"] == "free-form"]
    assert mc and ff
    gold = {it.id: chr(65 + int(it.data["target"][0])) for it in mc}
    wrong = {it.id: "A" if gold[it.id] != "A" else "B" for it in mc}
    texts = {}
    for it in mc:  # greedy: the gold named in words the rule parser cannot read; sample 0: a wrong letter
        texts[(it.id, 0, True)] = f"I pick the one I like. SAY [[{gold[it.id]}]]"
        texts[(it.id, 0, False)] = f"SAY The option chosen by the model: [[{wrong[it.id]}]]"
    for it in ff:
        texts[(it.id, 0, True)] = "Hmm. SAY The correctness score: [[0.7]]."
        texts[(it.id, 0, False)] = "No idea."  # the parser answers without a score: a seeded random one
    store = SampleStore(tmp_path / "s.sqlite")
    run = store.new_run({"test": True})
    rows = []
    for cfg in (DecodingConfig(max_new_tokens=16), DecodingConfig(temperature=1.0, max_new_tokens=16)):
        key = store.add_config(cfg, ENGINE)
        for it in items:
            rows.append(Sample("m1", "mixeval", it.id, "p", key, 0, texts[(it.id, 0, cfg.greedy)], 8))
    store.add_samples(rows, run)

    parser = MixEvalModelParser(task)
    j = Judge("gpt-3.5-turbo-0125", base_url=parser_server, backoff=0.01)
    summary = judge_store(store, parser, j, model="m1", items=items, progress=False)
    assert summary.made == 2 * len(items) and summary.failed == 0
    body = _Parser.seen[0]
    assert body["max_tokens"] == 999 and body["temperature"] == 1.0 and body["response_format"] == {"type": "text"}
    assert body["model"] == "gpt-3.5-turbo-0125"

    df = store.frame(scorer="mixeval:model-parser", model="m1", benchmark="mixeval")
    assert (
        df["scorer_version"].str.startswith("paper-parser-1.").all()
        and df["scorer_version"].str.endswith("+gpt-3.5-turbo-0125").all()
    )
    got = {(r.item_id, r.greedy): (r.score, r.extracted, r.reason) for r in df.itertuples()}
    for it in mc:
        assert got[(it.id, True)][:2] == (1.0, gold[it.id])
        assert got[(it.id, False)][:2] == (0.0, wrong[it.id])
    for it in ff:
        assert got[(it.id, True)][:2] == (0.7, "0.7") and pd.isna(got[(it.id, True)][2])
        s, _, reason = got[(it.id, False)]
        assert s in {k / 10 for k in range(11)} and "random" in reason
    # A rerun asks nothing again and scores the same.
    sent = len(_Parser.seen)
    again = judge_store(store, parser, j, model="m1", items=items, progress=False)
    assert len(_Parser.seen) == sent and again.reused == 2 * len(items)
    assert store.frame(scorer="mixeval:model-parser", model="m1", benchmark="mixeval")["score"].tolist() == df["score"].tolist()


def test_a_notebook_with_mixeval_parser_reads_the_parser_and_keeps_both_rules_beside(tmp_path, parser_server):
    """study.score: with `mixeval_parser` set, the table's score is the model parser's and the two rule parsers'
    scores of the same completions are the "-rule" columns that study.rule_comparison shows beside it."""
    from types import SimpleNamespace

    from gbg_utils import study
    from gbg_utils.report.describe import describe_protocol

    task = get_task("mixeval", "paper")
    items = task.load(limit=4)
    store = SampleStore(tmp_path / "s.sqlite")
    run = store.new_run({"test": True})
    key = store.add_config(DecodingConfig(max_new_tokens=16), ENGINE)
    store.add_samples([Sample("m1", "mixeval", it.id, "p", key, 0, "SAY [[Z]] [[0]]", 8) for it in items], run)
    P = SimpleNamespace(mixeval_parser="gpt-3.5-turbo-0125", judge_base_url=parser_server, data_path=None)
    df = study.score(store, task, items, P, "m1")
    assert len(df) == len(items) and df["scorer_version"].str.endswith("+gpt-3.5-turbo-0125").all()
    assert (df["score"] == 0.0).all()  # "[[Z]]" is no option of any item; "[[0]]" a free-form score of 0
    assert {"mixeval:paper-rule", "mixeval:gbg-rule"} <= set(df.columns)
    assert df["mixeval:paper-rule"].notna().all() and df["mixeval:gbg-rule"].notna().all()
    # Without a parser: the protocol's own rule, as before.
    plain = study.score(store, task, items, SimpleNamespace(mixeval_parser=None, data_path=None), "m1")
    assert (plain["scorer_version"] == task.version).all() and "mixeval:paper-rule" not in plain.columns
    text = describe_protocol("paper", ["mixeval", "gsm8k"], mixeval_parser="gpt-3.5-turbo-0125")
    assert "MixEval's model parser with judge `gpt-3.5-turbo-0125` (the paper's)" in text and "in place of" not in text
    assert "not the paper's gpt-3.5-turbo-0125" in describe_protocol("paper", ["mixeval"], mixeval_parser="qwen")
