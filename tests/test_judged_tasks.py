"""The three judged benchmarks end to end against a real judge: vLLM's OpenAI-compatible server
(`python -m vllm.entrypoints.openai.api_server`) serving SmolLM2-135M on 127.0.0.1, which also writes the
samples. Its judgments are poor; what is tested is the mechanics: samples -> judgments -> scores -> metrics,
cache hits on rerun (counted HTTP requests), a server killed mid-run and restarted (resume, nothing lost),
429/5xx from a fault-injecting proxy in front of it (retries, then a clear error), unparseable verdicts counted.

One server for this module (started with conftest's `start_vllm_server`): the kill test must own the process
it kills and restarts, so it cannot be the session-wide `vllm_server`.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from conftest import TEST_MODEL, free_port, send_json, start_vllm_server, stop_server

from gbg_utils.generate.backends import OpenAIBackend
from gbg_utils.generate.runner import run_generation
from gbg_utils.score.judge import Judge, JudgeError, judge_store, judged_frame
from gbg_utils.store import SampleStore
from gbg_utils.tasks import get_judged_task

pytestmark = pytest.mark.slow


class _Server:
    def __init__(self, model_dir, log_dir):
        self.model_dir, self.log_dir, self.port, self.starts = model_dir, log_dir, free_port(), 0
        self.start()

    def start(self):
        self.starts += 1
        self.proc, self.url = start_vllm_server(self.model_dir, port=self.port, log=self.log_dir / f"vllm_{self.starts}.log")

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)  # no graceful shutdown: in-flight requests just die
        self.proc.wait()


@pytest.fixture(scope="module")
def server(smol_path, tmp_path_factory):
    s = _Server(smol_path, tmp_path_factory.mktemp("judge_server"))
    yield s
    stop_server(s.proc)


def shortest(task, n, key):
    """The n items with the shortest prompts for the judge (a 2048-token judge context)."""
    return sorted(task.load(), key=lambda it: len(key(it)))[:n]


def generate(store, task, items, url, n_samples=2):
    be = OpenAIBackend(TEST_MODEL, base_url=url, concurrency=2)
    run_generation(
        store, TEST_MODEL, task, items, n_samples=n_samples, temperature=1.0, max_new_tokens=24, backend=be, progress=False
    )
    return len(items) * (1 + n_samples)


def small_judge(url, **kw) -> Judge:
    return Judge(
        TEST_MODEL,
        base_url=url,
        max_tokens=kw.pop("max_tokens", 24),
        concurrency=kw.pop("concurrency", 2),
        timeout=kw.pop("timeout", 60),
        backoff=kw.pop("backoff", 0.2),
        **kw,
    )


def check_consistent(store, task, judge, s, n_samples):
    """Every sample has its judgments and a score row (None + 'unparseable' when the verdict wasn't parsed)."""
    jd = store.judgments(task.name, judge.model, s.template_version)
    assert len(jd) == s.n_judgments == n_samples * len(task.games) and jd["error"].isna().all()
    assert s.unparseable == int((jd["parsed_ok"] == 0).sum())
    assert jd.loc[jd["parsed_ok"] == 1, "verdict"].notna().all() and jd["raw"].notna().all()
    df = judged_frame(store, task.name, judge)
    assert len(df) == n_samples == s.samples_scored and set(df["judge"]) == {TEST_MODEL}
    assert df["score"].notna().sum() + df["reason"].eq("unparseable").sum() == n_samples
    assert f"judge: {TEST_MODEL} (not the paper's {task.paper_judge})" in str(s)
    assert len(s.metrics) == 3 and s.metrics["n_judged"].eq(n_samples // 3).all()  # greedy + 2 sampled runs


def test_alpaca_eval_end_to_end_and_rerun_is_free(server, tmp_path):
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("alpaca_eval")
    items = shortest(task, 3, lambda it: it.data["instruction"] + it.data["baseline"])
    n = generate(store, task, items, server.url)
    j = small_judge(server.url)
    s = judge_store(store, task, j, items=items, progress=False)
    assert s.made == n and j.requests_sent == n
    check_consistent(store, task, j, s, n)
    jd = store.judgments("alpaca_eval")
    # vLLM returns top log-probs; whenever m or M is among them the preference is the weighted one.
    assert all(d.get("top_logprobs") for d in jd["detail"])
    assert {"win_rate", "standard_error", "lc_win_rate", "lc_kind"} <= set(s.metrics.columns)
    j2 = small_judge(server.url)
    s2 = judge_store(store, task, j2, items=items, progress=False)
    assert j2.requests_sent == 0 and (s2.made, s2.reused) == (0, n)


def test_arena_hard_end_to_end_both_orders(server, tmp_path):
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("arena_hard")
    items = shortest(task, 2, lambda it: it.data["question"] + it.data["baseline"])
    n = generate(store, task, items, server.url)
    j = small_judge(server.url, max_tokens=16)
    s = judge_store(store, task, j, items=items, progress=False)
    check_consistent(store, task, j, s, n)
    jd = store.judgments("arena_hard")
    assert sorted(jd["game"].unique()) == [0, 1] and s.made == 2 * n
    # An answer without a verdict label is continued once: one extra request per such judgment.
    assert j.requests_sent == sum(d["turns"] for d in jd["detail"])
    # (Which answer sits in A and which in B per game is checked without a server in test_judge.py.)
    j2 = small_judge(server.url, max_tokens=16)
    assert judge_store(store, task, j2, items=items, progress=False).reused == 2 * n and j2.requests_sent == 0


def test_wildbench_from_a_user_file_end_to_end(server, tmp_path):
    rows = [
        {
            "session_id": "wb-1",
            "primary_tag": "Math",
            "checklist": ["Is the arithmetic right?"],
            "conversation_input": [{"role": "user", "content": "What is 12 times 3?"}],
        },
        {
            "session_id": "wb-2",
            "primary_tag": "Creative Writing",
            "checklist": ["Is it a haiku?"],
            "conversation_input": [{"role": "user", "content": "Write a haiku about rain."}],
        },
    ]
    f = tmp_path / "wildbench_v2.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows))
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("wildbench", file=f)
    items = task.load()
    n = generate(store, task, items, server.url)
    j = small_judge(server.url, max_tokens=48)
    s = judge_store(store, task, j, progress=False)
    check_consistent(store, task, j, s, n)
    assert s.made + s.shortcut == n and {"score_mean", "wb_score"} <= set(s.metrics.columns)


class _FaultProxy(BaseHTTPRequestHandler):
    """Answers `faults` (status codes) first, then forwards to the real judge."""

    target = ""
    faults: list = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        with self.lock:
            status = type(self).faults.pop(0) if type(self).faults else None
        if status is None:
            r = httpx.post(self.target + self.path, content=body, headers={"content-type": "application/json"}, timeout=60)
            status, data = r.status_code, r.content
        else:
            data = json.dumps({"error": {"message": "injected", "code": status}}).encode()
        send_json(self, status, data)

    def log_message(self, *a):
        pass


def test_429_and_5xx_are_retried_then_a_clear_error(server, tmp_path):
    _FaultProxy.target = server.url.rsplit("/v1", 1)[0]
    _FaultProxy.faults = [429, 500, 503]
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _FaultProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{proxy.server_address[1]}/v1"
    try:
        store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("alpaca_eval")
        items = shortest(task, 2, lambda it: it.data["instruction"] + it.data["baseline"])
        n = generate(store, task, items, server.url, n_samples=1)
        j = small_judge(url, concurrency=1, max_retries=4, backoff=0.05)
        s = judge_store(store, task, j, items=items, progress=False)
        assert s.made == n and j.requests_sent == n + 3

        store2 = SampleStore(tmp_path / "s2.sqlite")
        generate(store2, task, items, server.url, n_samples=1)
        _FaultProxy.faults = [500] * 50
        with pytest.raises(
            JudgeError, match=r"keeps failing: .*failed after 3 attempts; last error: HTTP 500.*0 judgments were saved"
        ):
            judge_store(store2, task, small_judge(url, concurrency=1, max_retries=2, backoff=0.05), items=items, progress=False)
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_server_killed_mid_run_then_restarted_resumes_with_nothing_lost(server, tmp_path):
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("arena_hard")
    items = shortest(task, 2, lambda it: it.data["question"] + it.data["baseline"])
    n = generate(store, task, items, server.url, n_samples=1)
    total = n * 2  # 8 judgments, one at a time
    out = {}

    def run():
        try:
            judge_store(
                store,
                task,
                small_judge(server.url, max_tokens=16, concurrency=1, max_retries=1, backoff=0.2),
                items=items,
                progress=False,
            )
        except Exception as e:  # noqa: BLE001 -- the test inspects it
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    deadline = time.time() + 120
    while time.time() < deadline and len(store.judgments("arena_hard")) < 2:
        time.sleep(0.05)
    server.kill()
    t.join(120)
    assert isinstance(out.get("error"), JudgeError) and "rerun to resume" in str(out["error"])
    before = store.judgments("arena_hard")
    before = before[before["error"].isna()]  # the requests the kill cut off are recorded as failed, and retried
    assert 2 <= len(before) < total

    server.start()  # same port: the judge's URL is unchanged
    j = small_judge(server.url, max_tokens=16)
    s = judge_store(store, task, j, items=items, progress=False)
    after = store.judgments("arena_hard")
    assert (s.made, s.reused) == (total - len(before), len(before)) and len(after) == total
    # The judgments saved before the kill are untouched: same run, same text, not asked again.
    key = ["item_id", "config_key", "sample_idx", "game"]
    kept = before.merge(after, on=key, suffixes=("", "_after"))
    assert (
        len(kept) == len(before)
        and (kept["judge_run"] == kept["judge_run_after"]).all()
        and (kept["raw"] == kept["raw_after"]).all()
    )
    assert len(judged_frame(store, "arena_hard", j)) == n
