"""The judge client and the judgment cache against a real local HTTP server that answers (and fails) on
purpose, plus the benchmarks' parsers and metrics. No model: fast and deterministic. The same mechanics
against a real vLLM judge are in test_judged_tasks.py."""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from conftest import send_json

from gbg_utils import stats
from gbg_utils.decoding import DecodingConfig
from gbg_utils.score.judge import Judge, JudgeError, judge_store, judged_frame
from gbg_utils.store import Sample, SampleStore
from gbg_utils.tasks import JUDGED_TASKS, get_judged_task
from gbg_utils.tasks.data import TaskDataError
from gbg_utils.tasks.judged.alpaca_eval import annotations, length_controlled
from gbg_utils.tasks.judged.arena_hard import PATTERN, arena_score, battle_outcomes, get_score
from gbg_utils.tasks.judged.wildbench import WildBench, parse_score


# --- a scriptable OpenAI-compatible judge server -----------------------------------------------------
class _JudgeServer(BaseHTTPRequestHandler):
    statuses: list = []  # status codes to answer before answering normally
    answer = staticmethod(lambda body: "m")  # body -> content (str) or (status, content)
    delay = 0.0
    seen: list = []
    inflight = 0
    max_inflight = 0
    lock = threading.Lock()

    def do_POST(self):
        cls = type(self)
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with cls.lock:
            cls.seen.append((self.headers.get("authorization"), body))
            cls.inflight += 1
            cls.max_inflight = max(cls.max_inflight, cls.inflight)
            status = cls.statuses.pop(0) if cls.statuses else 200
        try:
            time.sleep(cls.delay)
            content = None
            if status == 200:
                content = cls.answer(body)
                if isinstance(content, tuple):
                    status, content = content
            if status != 200:
                payload = {"error": {"message": content or "injected failure", "code": status}}
            else:
                choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                if body.get("logprobs") and content in ("m", "M"):
                    other = "M" if content == "m" else "m"
                    choice["logprobs"] = {
                        "content": [
                            {
                                "token": content,
                                "logprob": -0.2,
                                "top_logprobs": [
                                    {"token": content, "logprob": -0.2},
                                    {"token": other, "logprob": -1.8},
                                    {"token": "The", "logprob": -4.0},
                                ],
                            }
                        ]
                    }
                payload = {"choices": [choice], "usage": {"completion_tokens": 1}}
            send_json(self, status, payload)
        finally:
            with cls.lock:
                cls.inflight -= 1

    def log_message(self, *a):
        pass


@pytest.fixture
def fake_judge():
    h = _JudgeServer
    h.statuses, h.seen, h.delay, h.inflight, h.max_inflight = [], [], 0.0, 0, 0
    h.answer = staticmethod(lambda body: "m")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), h)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield h, f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def judge(url, **kw) -> Judge:
    kw.setdefault("backoff", 0.01)
    return Judge(kw.pop("model", "fake-judge"), base_url=url, **kw)


ENGINE = {"backend": "transformers", "dtype": "bfloat16", "weights": {"kind": "embedded", "name": "m1"}}


def fill(store: SampleStore, task, n_items=3, n_samples=2, model="m1", texts=None) -> list:
    """Samples as the runner stores them: a greedy output and `n_samples` sampled ones per item."""
    items = task.load()[:n_items]  # the first ones: tests name items "0", "1", ...
    run = store.new_run({"test": True})
    greedy = DecodingConfig(max_new_tokens=16)
    sampled = DecodingConfig(temperature=1.0, max_new_tokens=16)
    rows = []
    for cfg, n in ((greedy, 1), (sampled, n_samples)):
        key = store.add_config(cfg, ENGINE)
        for it in items:
            for j in range(n):
                text = texts(it, cfg.greedy, j) if texts else f"answer {j} to {it.id}: " + "word " * (3 + j)
                rows.append(Sample(model, task.name, str(it.id), "p", key, j, text, 8))
    store.add_samples(rows, run)
    return items


# --- the client and the cache ------------------------------------------------------------------------
def test_retries_429_and_5xx_then_caches_every_judgment(fake_judge, tmp_path, monkeypatch):
    h, url = fake_judge
    monkeypatch.setenv("GBG_TEST_JUDGE_KEY", "sk-judge-secret-42")
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("alpaca_eval")
    items = fill(store, task)
    h.statuses = [429, 500, 503]
    j1 = judge(url, api_key_env="GBG_TEST_JUDGE_KEY", concurrency=1)
    s = judge_store(store, task, j1, progress=False)
    assert (s.n_samples, s.n_judgments, s.made, s.reused, s.unparseable, s.failed) == (9, 9, 9, 0, 0, 0)
    assert j1.requests_sent == s.requests_sent == 9 + 3  # three retried failures
    assert all(auth == "Bearer sk-judge-secret-42" for auth, _ in h.seen)
    body = h.seen[-1][1]
    assert body["model"] == "fake-judge" and body["max_tokens"] == 1 and body["top_logprobs"] == 5 and body["temperature"] == 0

    # One row per judgment with prompt hash, judge model, raw output and verdict.
    jd = store.judgments("alpaca_eval")
    assert len(jd) == 9 and set(jd["judge_model"]) == {"fake-judge"} and (jd["parsed_ok"] == 1).all()
    assert jd["prompt_hash"].str.len().eq(16).all() and set(jd["raw"]) == {"m"}
    # "m" is output_1: the baseline unless the instruction's outputs were switched (then the model wins).
    p_m = 1 / (1 + math.exp(-1.6))  # p(m) / (p(m) + p(M)) from the top log-probs -0.2 and -1.8
    for r in jd.itertuples():
        switched = task.is_switched(next(it for it in items if it.id == r.item_id))
        assert r.value == pytest.approx(p_m if switched else 1 - p_m)

    # Scores: visible through store.frame like any benchmark, restricted to this judge.
    df = judged_frame(store, "alpaca_eval", j1)
    assert len(df) == 9 and df["score"].notna().all() and set(df["judge"]) == {"fake-judge"}
    assert sorted(s.metrics["sample_idx"]) == [0, 0, 1] and s.metrics["n_judged"].eq(3).all()
    assert "judge: fake-judge (not the paper's gpt-4-1106-preview)" in str(s)

    # A rerun pays nothing: zero HTTP requests, everything from the cache.
    j2 = judge(url, api_key_env="GBG_TEST_JUDGE_KEY")
    s2 = judge_store(store, task, j2, progress=False)
    assert j2.requests_sent == 0 and (s2.made, s2.reused) == (0, 9)

    # The key is nowhere: not in the store file, the provenance, or the summary.
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("s.sqlite*"))
    assert b"sk-judge-secret-42" not in blob
    assert "sk-judge-secret-42" not in json.dumps(s.provenance) + str(s) + json.dumps(store.judge_runs()["provenance"].tolist())
    prov = store.judge_runs()["provenance"].iloc[0]
    assert prov["judge_model"] == "fake-judge" and prov["template"]["sha256"] and prov["template_version"] == s.template_version
    assert prov["api_key_env"] == "GBG_TEST_JUDGE_KEY"
    # Every sampling field was sent (this server has no /models, so it is not vLLM: OpenAI's fields only).
    neutral = {"temperature": 0.0, "top_p": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0}
    assert prov["sampling"] == {"server": "openai", **neutral}
    assert all({k: b[k] for k in neutral} == neutral and "top_k" not in b for _, b in h.seen)


def test_persistent_failure_is_a_clear_error_and_a_rerun_resumes(fake_judge, tmp_path):
    h, url = fake_judge
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("wildbench", file=_wildbench_file(tmp_path))
    fill(store, task, n_items=3, n_samples=3)  # 12 judgments
    calls = {"n": 0}

    def flaky(body):
        calls["n"] += 1
        return '{"strengths": "ok", "weaknesses": "none", "score": "7"}' if calls["n"] <= 5 else (500, "the judge fell over")

    h.answer = staticmethod(flaky)
    with pytest.raises(
        JudgeError,
        match=r"2 of 7 judgments sent failed \(more than max_failed_share=0.1 of 12\); last error: .*failed after 3 "
        r"attempts; last error: HTTP 500.*5 judgments were saved, the 2 failed ones recorded; 7 are still to do",
    ):
        judge_store(store, task, judge(url, concurrency=1, max_retries=2), progress=False)
    jd = store.judgments("wildbench")  # 5 judged, 2 recorded as failed: the run stopped once failures passed 10%
    assert len(jd) == 7 and jd["error"].notna().sum() == 2
    assert len(judged_frame(store, "wildbench", "fake-judge").dropna(subset=["score"])) == 5  # scored what it had

    h.answer = staticmethod(lambda body: '{"strengths": "ok", "weaknesses": "none", "score": "7"}')
    j = judge(url, concurrency=3)
    s = judge_store(store, task, j, progress=False)
    assert (s.made, s.reused) == (7, 5) and j.requests_sent == 7  # exactly the missing ones
    df = judged_frame(store, "wildbench", j)
    assert len(df) == 12 and df["score"].eq(4.0).all()  # (7 - 5) * 2
    assert s.metrics["wb_score"].eq(4.0).all()


def test_unparseable_verdicts_are_recorded_counted_and_not_reasked(fake_judge, tmp_path):
    h, url = fake_judge
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("arena_hard")
    # 2 items x (greedy + 1 sample) x 2 games = 8 judgments; the judge decides on the greedy outputs only.
    fill(store, task, n_items=2, n_samples=1, texts=lambda it, greedy, j: "GOOD" if greedy else "BAD")

    def answer(body):
        msgs = body["messages"]
        if msgs[-1]["content"].startswith("continue your judgment"):
            return "Still thinking."  # the one continuation gives no label either
        q = msgs[1]["content"]
        if "GOOD" in q:  # the model wins both games: as B in game 0, as A in game 1
            return "My final verdict is: [[B>A]]" if q.index("GOOD") > q.index("Assistant B's Answer") else "[[A>>B]]"
        return "I cannot decide."

    h.answer = staticmethod(answer)
    j = judge(url)
    s = judge_store(store, task, j, progress=False)
    jd = store.judgments("arena_hard")
    assert len(jd) == 8 and s.made == 8 and s.unparseable == int((jd["parsed_ok"] == 0).sum()) == 4
    unp = jd[jd["parsed_ok"] == 0]
    assert unp["verdict"].isna().all() and unp["raw"].str.contains("Still thinking.").all()
    assert j.requests_sent == 8 + len(unp)  # each unparseable one was continued once, as arena-hard does
    df = judged_frame(store, "arena_hard", j)
    assert len(df) == 4 and df["score"].isna().sum() == 2 and df.loc[df["score"].isna(), "reason"].eq("unparseable").all()
    ok = df[df["score"].notna()]
    assert ok["score"].eq(1.0).all() and ok["extracted"].str.fullmatch(r"B>A\|A>>B").all()
    assert s.metrics["n_games_unparseable"].sum() == s.unparseable
    # Paid for, so not asked again.
    j2 = judge(url)
    assert judge_store(store, task, j2, progress=False).unparseable == s.unparseable and j2.requests_sent == 0


def test_a_refused_request_is_recorded_and_retried_next_run(fake_judge, tmp_path):
    h, url = fake_judge
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("alpaca_eval")
    fill(store, task, n_items=2, n_samples=1)
    h.answer = staticmethod(lambda body: (400, "prompt too long") if "answer 0 to 1" in json.dumps(body) else "M")
    s = judge_store(store, task, judge(url), progress=False, max_failed_share=0.5)
    assert (s.made, s.failed) == (2, 2)  # item "1": greedy + sample 0 refused; the run went on
    jd = store.judgments("alpaca_eval")
    assert jd["error"].notna().sum() == 2 and jd["error"].dropna().str.contains("answered 400").all()
    assert len(judged_frame(store, "alpaca_eval", "fake-judge").dropna(subset=["score"])) == 2
    h.answer = staticmethod(lambda body: "M")
    j = judge(url)
    s2 = judge_store(store, task, j, progress=False)
    assert (s2.made, s2.reused, s2.failed) == (2, 2, 0) and j.requests_sent == 2


def test_an_unjudged_sample_leaves_the_run_mean_over_the_judged_ones(fake_judge, tmp_path):
    """One unparseable and one refused judgment: the sampling mean, the run scores and each sample set's
    metric are over the judged samples -- not NaN -- and the unscored samples are counted."""
    h, url = fake_judge
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("wildbench", file=_wildbench_file(tmp_path))
    fill(store, task, n_items=3, n_samples=3)

    def answer(body):
        text = body["messages"][0]["content"]
        if "answer 1 to s1" in text:
            return "A fine answer, I would say."  # no score: unparseable
        if "answer 2 to s2" in text:
            return 400, "prompt too long"  # refused: no judgment
        return '{"strengths": "", "weaknesses": "", "score": "' + str(7 if "answer 0 to" in text else 6) + '"}'

    h.answer = staticmethod(answer)
    s = judge_store(store, task, judge(url), progress=False)
    assert (s.unparseable, s.failed) == (1, 1)
    df = judged_frame(store, "wildbench", "fake-judge")
    assert len(df) == 12 and df["score"].isna().sum() == 2
    # greedy (= sample 0's text) scores 7 -> WB 4 everywhere; samples 1, 2 score 6 -> WB 2
    row = stats.gap_table(df, n_boot=200).iloc[0]
    item_means = [(4 + 2 + 2) / 3, (4 + 2) / 2, (4 + 2) / 2]
    assert row["mean"] == pytest.approx(np.mean(item_means)) and row.greedy == 4.0
    assert row.gap == pytest.approx(4 - np.mean(item_means)) and (row.best, row.worst) == (4.0, 2.0)
    assert (row.n_items, row.n_unscored, row.greedy_n_unscored) == (3, 2, 0)
    runs = stats.run_scores(df)
    assert runs.score.tolist() == [4.0, 2.0, 2.0] and runs.n_unscored.tolist() == [0, 1, 1]
    met = s.metrics[s.metrics["config_key"] == row.config_key].set_index("sample_idx")
    assert met["n_unscored"].to_dict() == {0: 0, 1: 1, 2: 1} and met["wb_score"].to_dict() == {0: 4.0, 1: 2.0, 2: 2.0}
    assert s.metrics["n_unscored"].sum() == 2


def test_concurrency_limit_and_a_bad_key_stops_at_once(fake_judge, tmp_path):
    h, url = fake_judge
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("alpaca_eval")
    fill(store, task, n_items=6, n_samples=1)  # 12 judgments
    h.delay = 0.05
    s = judge_store(store, task, judge(url, concurrency=3), progress=False)
    assert s.made == 12 and 2 <= h.max_inflight <= 3

    store2 = SampleStore(tmp_path / "s2.sqlite")
    fill(store2, task, n_items=3, n_samples=1)
    h.statuses = [401] * 3
    j = judge(url, concurrency=1)
    with pytest.raises(JudgeError, match="answered 401"):
        judge_store(store2, task, j, progress=False)
    assert j.requests_sent == 1  # not retried, not repeated for every item


def test_a_changed_prompt_is_judged_again(fake_judge, tmp_path):
    h, url = fake_judge
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("alpaca_eval")
    fill(store, task, n_items=2, n_samples=1)
    judge_store(store, task, judge(url), progress=False)
    j = judge(url, max_tokens=None)
    task.top_logprobs = 4  # a different request: the cached answer does not answer it
    s = judge_store(store, task, j, progress=False)
    assert (s.made, s.reused, s.rejudged_stale) == (4, 0, 4) and len(store.judgments("alpaca_eval")) == 4


def test_two_judges_never_mix(fake_judge, tmp_path):
    h, url = fake_judge
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("alpaca_eval")
    fill(store, task, n_items=2, n_samples=1)
    judge_store(store, task, judge(url, model="judge-a"), progress=False)
    h.answer = staticmethod(lambda body: "M")
    judge_store(store, task, judge(url, model="judge-b"), progress=False)
    a, b = judged_frame(store, "alpaca_eval", "judge-a"), judged_frame(store, "alpaca_eval", "judge-b")
    assert len(a) == len(b) == 4 and set(a["judge"]) == {"judge-a"} and set(b["judge"]) == {"judge-b"}
    assert not np.allclose(a.sort_values("item_id")["score"], b.sort_values("item_id")["score"])
    assert set(store.scores(scorer="alpaca_eval")["scorer_version"].str.split("+").str[1]) == {"judge-a", "judge-b"}


def test_a_notebook_judges_only_the_samples_it_selected(fake_judge, tmp_path):
    """study.score on a judged benchmark: the judge is asked about the notebook's selection (here the greedy config's
    samples) and nothing else the store holds, and the table it returns is that judge's."""
    from types import SimpleNamespace

    from gbg_utils import study

    h, url = fake_judge
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("alpaca_eval")
    items = fill(store, task, n_items=2, n_samples=3)
    keys = store.samples(benchmark="alpaca_eval")
    greedy = keys[keys.groupby("config_key")["sample_idx"].transform("max") == 0]["config_key"].iloc[0]  # one sample each
    scope = ({greedy: 1}, {str(it.id): "p" for it in items})
    P = SimpleNamespace(judge_model="fake-judge", judge_base_url=url, data_path=None)
    df = study.score(store, task, items, P, "m1", scope=scope)
    assert len(h.seen) == len(items)  # one judgment per selected sample: the 6 sampled ones were not sent
    assert set(df.loc[df["score"].notna(), "config_key"]) == {greedy} and set(df["judge"]) == {"fake-judge"}


# --- benchmarks: loading, prompts, parsers, metrics ----------------------------------------------------
def test_registry_and_interface():
    assert set(JUDGED_TASKS) == {"alpaca_eval", "arena_hard", "wildbench"}
    for name in ("alpaca_eval", "arena_hard"):
        t = get_judged_task(name)
        items = t.load()
        assert len(items) == {"alpaca_eval": 805, "arena_hard": 500}[name] and len({i.id for i in items}) == len(items)
        assert t.prompt(items[0])[0]["role"] == "user" and t.stop == () and t.paper_n_samples == 16
        with pytest.raises(NotImplementedError, match="judge_store"):
            t.score("x", items[0])
    with pytest.raises(ValueError, match="unknown judged task 'mt_bench'"):
        get_judged_task("mt_bench")


def test_alpaca_eval_switch_is_alpaca_evals_own():
    from alpaca_eval.processors import RandomSwitchTwoColumnsProcessor

    task = get_judged_task("alpaca_eval")
    items = task.load(limit=40)
    df = pd.DataFrame([{"instruction": it.data["instruction"], "output_1": "base", "output_2": "model"} for it in items])
    proc = RandomSwitchTwoColumnsProcessor(
        two_columns_to_switch=["output_1", "output_2"],
        random_seed_columns=["instruction"],
        _switch_column="is_switched_outputs",
        seed=123,
    )
    theirs = proc.preprocess(df)["is_switched_outputs"].tolist()
    assert [task.is_switched(it) for it in items] == theirs and 5 < sum(theirs) < 35


@pytest.mark.parametrize(
    "top, content, value",
    [
        ([("m", -0.1), ("M", -2.4)], "m", 1 - 1 / (1 + math.exp(-2.3))),  # baseline (m) likely better
        ([("M", -0.1), ("Both", -1.0)], "M", 1.0),  # m absent from the top 5: probability 0
        ([("The", -0.1), ("In", -1.0)], "The", None),  # neither token: unparseable
        (None, "M", 1.0),  # no log-probs: the token itself
        (None, "model M is best", None),
    ],
)
def test_alpaca_eval_parse(top, content, value):
    task = get_judged_task("alpaca_eval")
    item = next(it for it in task.load(limit=20) if not task.is_switched(it))
    choice = {"message": {"content": content}}
    if top:
        choice["logprobs"] = {"content": [{"token": top[0][0], "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}]}
    j = task.parse(choice, item, 0)
    if value is None:
        assert not j.parsed_ok and j.raw == content
    else:
        assert j.parsed_ok and j.value == pytest.approx(value)


def _ann(n=80, seed=0):
    """Synthetic annotations where the judge prefers whichever output is longer."""
    rng = np.random.default_rng(seed)
    task = get_judged_task("alpaca_eval")
    items = {it.id: it for it in task.load(limit=n)}
    rows = []
    for iid, it in items.items():
        longer = rng.random() < 0.7
        text = it.data["baseline"] * 2 if longer else it.data["baseline"][: max(1, len(it.data["baseline"]) // 2)]
        rows.append(
            {
                "model": "m",
                "item_id": iid,
                "text": text,
                "games": {0: {"parsed_ok": 1, "value": 0.8 if longer else 0.2, "judge_model": "j"}},
            }
        )
    return annotations(pd.DataFrame(rows), items), items


def test_alpaca_eval_length_controlled_approximate_and_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ann, items = _ann()
    raw = ann["preference"].mean() * 100 - 100
    lc = length_controlled(ann, data_dir=tmp_path)
    assert lc["lc_kind"] == "approximate" and "approximate LC" in lc["lc_note"] and lc["lc_standard_error"] is None
    assert 0 < lc["lc_win_rate"] < 100 and abs(lc["lc_win_rate"] - 50) < abs(raw - 50)  # length bias removed
    assert length_controlled(ann.iloc[:5])["lc_win_rate"] is None  # too few items for the GLM

    # With alpaca_eval's df_gamed.csv in the data dir, its own length_controlled_v1 runs (synthetic file here:
    # the mechanics, not the numbers).
    rng = np.random.default_rng(1)
    idx = np.arange(805)
    gamed = pd.concat(
        [
            pd.DataFrame(
                {
                    "model": name,
                    "index": idx,
                    "preference": rng.uniform(0, 1, 805),
                    "std_delta_len": rng.normal(size=805),
                    "instruction_difficulty": np.tile(rng.normal(size=805), 1),
                    "not_gamed_baseline": False,
                }
            )
            for name in ("verbose", "concise")
        ]
    )
    (tmp_path / "alpaca_eval").mkdir()
    gamed.to_csv(tmp_path / "alpaca_eval" / "df_gamed.csv", index=False)
    ex = length_controlled(ann, data_dir=tmp_path)
    assert ex["lc_kind"] == "exact" and 0 < ex["lc_win_rate"] < 100 and ex["lc_standard_error"] > 0


def test_arena_hard_verdicts_and_score():
    assert get_score("\n... My final verdict is [[B>A]].", PATTERN) == ("B>A", False)
    assert get_score("no label", PATTERN) == (None, True)
    assert get_score("[[A>B]] then [[B>A]]", PATTERN) == (None, False)
    assert get_score("[[A>B]] ... so [[A>B]]", PATTERN) == ("A>B", False)
    task = get_judged_task("arena_hard")
    assert task.parse({"message": {"content": "[[A<B]]"}}, None, 0).verdict is None  # not one of the five
    # Game 0 (A = baseline): B>>A is a strong model win (3 battles); game 1 (A = model): B>A is a loss.
    assert battle_outcomes([("B>>A", 0), ("B>A", 1), ("A=B", 0)]).tolist() == [1, 1, 1, 0, 0.5]
    # The weighted win fraction is the maximum-likelihood Bradley-Terry win probability vs the baseline.
    rng = np.random.default_rng(3)
    labels = [(str(rng.choice(["A>>B", "A>B", "A=B", "B>A", "B>>A"])), int(rng.integers(0, 2))) for _ in range(300)]
    out = battle_outcomes(labels)
    from scipy.optimize import minimize_scalar

    def nll(d):
        return -np.sum(out * np.log(1 / (1 + np.exp(-d))) + (1 - out) * np.log(1 / (1 + np.exp(d))))

    p_bt = 1 / (1 + np.exp(-minimize_scalar(nll).x))
    res = arena_score(out)
    assert res["score"] == pytest.approx(p_bt * 100, abs=1e-3) and res["ci_low"] < res["score"] < res["ci_high"]
    assert arena_score(out) == res  # seeded bootstrap


@pytest.mark.parametrize(
    "text, score",
    [
        ('{"strengths": "a", "weaknesses": "b", "score": "7"}', 7.0),
        ('```\n{\n    "strengths": "a",\n    "weaknesses": "b",\n    "score": "8"\n}\n```', 8.0),
        ('Analysis ... {"strengths": "x"} and finally {"score": 3}', 3.0),
        ('... "score": "[6]" trailing', 6.0),
        ('"score": "11"', None),
        ("no score here", None),
    ],
)
def test_wildbench_parse_score(text, score):
    assert parse_score(text) == score


def _wildbench_file(tmp_path):
    rows = [
        {"session_id": f"s{i}", "primary_tag": tag, "checklist": ["Is it correct?", "Is it concise?"], "conversation_input": conv}
        for i, (tag, conv) in enumerate(
            [
                ("Math", [{"role": "user", "content": "What is 2 + 2?"}]),
                (
                    "Creative Writing",
                    [
                        {"role": "user", "content": "Write a haiku."},
                        {"role": "assistant", "content": "Leaves fall."},
                        {"role": "user", "content": "Another one about snow."},
                    ],
                ),
                ("Information seeking", [{"role": "user", "content": "Name a planet."}]),
            ]
        )
    ]
    p = tmp_path / "wildbench_v2.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    return p


def test_wildbench_data_from_a_file_or_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        TaskDataError,
        match=r"(?s)wildbench: benchmark data not found.*wildbench_v2\.jsonl.*HF_HUB_OFFLINE.*WildBench\(file=\.\.\.\)",
    ):
        get_judged_task("wildbench").load()
    task = WildBench(file=_wildbench_file(tmp_path))
    items = task.load()
    assert [i.id for i in items] == ["s0", "s1", "s2"] and items[1].group == "Creative Writing"
    assert [m["role"] for m in task.prompt(items[1])] == ["user", "assistant", "user"]
    j = Judge("x", base_url="http://127.0.0.1:9/v1")
    msg = task.judge_body(j, items[1], "Snow falls softly.", 0, task.template())["messages"][0]["content"]
    assert "USER: Write a haiku.\n\nASSISTANT: Leaves fall.\n\n" in msg and "Another one about snow." in msg
    assert "- Is it correct?\n- Is it concise?\n" in msg and "Snow falls softly." in msg and "{$" not in msg
    assert task.shortcut(items[0], "  ", 0).value == 1.0  # an empty output scores 1 without asking (WildBench's rule)
    with pytest.raises(TaskDataError, match="does not exist"):
        WildBench(file=tmp_path / "nope.jsonl").load()


def test_arena_hard_asks_both_orders():
    task = get_judged_task("arena_hard")
    item = task.load(limit=1)[0]
    j = Judge("x", base_url="http://127.0.0.1:9/v1")
    g0, g1 = (task.judge_body(j, item, "MODEL ANSWER", g, task.template())["messages"] for g in (0, 1))
    assert g0[0]["content"].startswith("Please act as an impartial judge") and g0[0] == g1[0]
    a0 = g0[1]["content"].split("<|The Start of Assistant B's Answer|>")
    a1 = g1[1]["content"].split("<|The Start of Assistant B's Answer|>")
    assert "MODEL ANSWER" in a0[1] and item.data["baseline"] in a0[0]  # game 0: baseline is A, model is B
    assert "MODEL ANSWER" in a1[0] and item.data["baseline"] in a1[1]  # game 1: swapped
    assert task.judge_body(j, item, "x", 0, task.template())["max_tokens"] == 4096
