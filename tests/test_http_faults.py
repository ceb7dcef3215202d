"""HTTP and judge faults are recorded, retried or raised, never swallowed; secrets stay where they belong; an
openai-served model is what its server says it serves (issue 21, groups 3, 7 and part of 5).

Every test talks to a real local HTTP server (http.server in a thread) that misbehaves on purpose: a 200 whose
body is an HTML page, a JSON list, no `choices`, 400 on every request, a refused second Arena-Hard turn, a
refused generation request, a 401 for a URL with a password in it.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import send_json

from gbg_utils.decoding import DecodingConfig
from gbg_utils.generate.backends import BackendError, OpenAIBackend, Request
from gbg_utils.generate.runner import run_generation
from gbg_utils.http_client import JsonClient, key_decision, origin
from gbg_utils.identity import Engine, config_key
from gbg_utils.score.judge import Judge, JudgeError, judge_store
from gbg_utils.store import Sample, SampleStore
from gbg_utils.tasks import get_judged_task, get_task
from gbg_utils.tasks.judged.arena_hard import CONTINUE

GOOD_WB = '{"strengths": "ok", "weaknesses": "none", "score": "7"}'


class _Server(BaseHTTPRequestHandler):
    """An OpenAI-compatible server scripted by `reply(body) -> (status, payload)`; payload bytes go out as they are."""

    reply = staticmethod(lambda body: (200, {"choices": [{"index": 0, "message": {"content": "m"}}]}))
    models = [{"id": "m", "object": "model", "root": "/models/smollm2-135m", "owned_by": "vllm"}]
    seen: list = []
    lock = threading.Lock()

    def do_GET(self):
        with self.lock:
            type(self).seen.append((self.path, self.headers.get("authorization"), None))
        if self.path.endswith("/models"):
            send_json(self, 200, {"object": "list", "data": type(self).models})
        else:
            send_json(self, 404, {"error": "not found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with self.lock:
            type(self).seen.append((self.path, self.headers.get("authorization"), body))
        status, payload = type(self).reply(body)
        send_json(self, status, payload)

    def log_message(self, *a):
        pass


def _serve(host="127.0.0.1"):
    srv = ThreadingHTTPServer((host, 0), _Server)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def server():
    _Server.seen = []
    _Server.reply = staticmethod(lambda body: (200, _choice("m")))
    _Server.models = [{"id": "m", "object": "model", "root": "/models/smollm2-135m", "owned_by": "vllm"}]
    srv = _serve()
    yield _Server, f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def _choice(content, n=1):
    return {"choices": [{"index": i, "message": {"content": content}, "finish_reason": "stop"} for i in range(n)]}


def _posts(h):
    return [b for p, _, b in h.seen if b is not None]


HI = [{"role": "user", "content": "hi"}]
ENGINE = {"backend": "transformers", "dtype": "bfloat16", "weights": {"kind": "embedded", "name": "m1"}}


def fill(store, task, n_items=3, n_samples=2, texts=None):
    """A greedy output and `n_samples` sampled ones per item, as the runner stores them; returns the config keys."""
    items = task.load()[:n_items]
    run = store.new_run({"test": True})
    keys, rows = [], []
    for cfg, n in ((DecodingConfig(max_new_tokens=16), 1), (DecodingConfig(temperature=1.0, max_new_tokens=16), n_samples)):
        key = store.add_config(cfg, ENGINE)
        keys.append(key)
        for it in items:
            for j in range(n):
                text = texts(it, j) if texts else f"answer {j} to {it.id}: " + "word " * (3 + j)
                rows.append(Sample("m1", task.name, str(it.id), "p", key, j, text, 8))
    store.add_samples(rows, run)
    return keys


def _wildbench(tmp_path):
    rows = [
        {
            "session_id": f"s{i}",
            "conversation_input": [{"role": "user", "content": f"question {i}"}],
            "checklist": ["is it right?"],
            "primary_tag": "Reasoning",
        }
        for i in range(4)
    ]
    p = tmp_path / "wb.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    return get_judged_task("wildbench", file=p)


def judge(url, **kw):
    kw.setdefault("backoff", 0.01)
    kw.setdefault("max_retries", 1)
    return Judge(kw.pop("model", "fake-judge"), base_url=url, **kw)


# --- group 3: judge and HTTP faults ------------------------------------------------------------------
BAD_BODIES = {
    "html": b"<html><body>502 Bad Gateway (the proxy's page)</body></html>",
    "list": [{"message": {"content": GOOD_WB}}],
    "no choices": {"id": "x", "object": "chat.completion"},
}


@pytest.mark.parametrize("bad", list(BAD_BODIES))
def test_a_body_that_is_not_an_answer_is_retried_then_recorded_and_the_run_raises_after_saving(server, tmp_path, bad):
    """The server answers 3 judgments, then 200s that are no answer: the 3 are kept, the failures are recorded
    with what was wrong, and the run ends with one JudgeError -- not a JSONDecodeError / AttributeError / KeyError."""
    h, url = server
    store, task = SampleStore(tmp_path / "s.sqlite"), _wildbench(tmp_path)
    fill(store, task, n_items=4, n_samples=2)  # 12 judgments
    calls = {"n": 0}

    def reply(body):
        calls["n"] += 1
        return (200, _choice(GOOD_WB)) if calls["n"] <= 3 else (200, BAD_BODIES[bad])

    h.reply = staticmethod(reply)
    with pytest.raises(JudgeError, match=r"judgments sent failed .*3 judgments were saved") as e:
        judge_store(store, task, judge(url, concurrency=1), progress=False)
    assert "\n" not in str(e.value)
    jd = store.judgments("wildbench")
    assert (jd["error"].isna()).sum() == 3 and jd["error"].notna().sum() >= 1
    want = {"html": "not JSON", "list": "a JSON list", "no choices": "without choices"}[bad]
    assert jd["error"].dropna().str.contains(want).all()
    if bad != "no choices":  # a body that is not a JSON object is a transient fault: retried before it is recorded
        assert calls["n"] == 3 + 2 * jd["error"].notna().sum()
    # A rerun against a healthy server judges exactly what is missing.
    h.reply = staticmethod(lambda body: (200, _choice(GOOD_WB)))
    j = judge(url, concurrency=2)
    s = judge_store(store, task, j, progress=False)
    assert (s.reused, s.made, s.failed) == (3, 9, 0) and j.requests_sent == 9


def test_a_judge_that_refuses_every_request_raises_one_clear_error_and_records_the_refusals(server, tmp_path):
    h, url = server
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("alpaca_eval")
    fill(store, task, n_items=2, n_samples=1)
    h.reply = staticmethod(lambda body: (400, {"error": {"message": "unsupported parameter: top_logprobs"}}))
    with pytest.raises(JudgeError, match=r"4 of 4 judgments sent failed \(none of them succeeded\).*answered 400.*top_logprobs"):
        judge_store(store, task, judge(url), progress=False)
    jd = store.judgments("alpaca_eval")
    assert len(jd) == 4 and jd["error"].str.contains("answered 400").all()


def test_a_share_of_failures_within_the_limit_is_reported_per_config(server, tmp_path):
    h, url = server
    store, task = SampleStore(tmp_path / "s.sqlite"), _wildbench(tmp_path)
    greedy_key, sampled_key = fill(store, task, n_items=4, n_samples=2)  # 12 judgments
    h.reply = staticmethod(lambda body: (400, "too long") if "answer 1 to s2" in json.dumps(body) else (200, _choice(GOOD_WB)))
    s = judge_store(store, task, judge(url), progress=False)  # 1 of 12 failed: within max_failed_share 0.1
    assert s.failed == 1
    per = s.metrics.groupby("config_key")["n_unjudged"].sum().to_dict()
    assert per == {greedy_key: 0, sampled_key: 1}
    assert f"UNJUDGED (the metrics leave them out): config {sampled_key}: 1 of 8 samples" in str(s)
    store2 = SampleStore(tmp_path / "s2.sqlite")
    fill(store2, task, n_items=4, n_samples=2)
    with pytest.raises(JudgeError, match="more than max_failed_share=0.05"):  # stricter: the same failure raises
        judge_store(store2, task, judge(url), progress=False, max_failed_share=0.05)


def test_arena_hard_keeps_a_paid_first_turn_when_the_second_is_refused(server, tmp_path):
    h, url = server
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("arena_hard")
    fill(store, task, n_items=3, n_samples=2)  # 9 samples x 2 games
    target = "answer 1 to " + str(task.load()[0].id)

    def reply(body):
        last = body["messages"][-1]["content"]
        if last == CONTINUE:
            return 400, {"error": {"message": "context length exceeded"}}
        if target in last:
            return 200, _choice("Assistant A rambles; no label yet.")  # first turn: no verdict, asks to continue
        return 200, _choice("My final verdict is [[B>A]].")

    h.reply = staticmethod(reply)
    s = judge_store(store, task, judge(url), progress=False, max_failed_share=0.2)
    assert s.failed == 2  # that sample's two games
    jd = store.judgments("arena_hard")
    failed = jd[jd["error"].notna()]
    for row in failed.itertuples():
        assert "no label yet" in row.raw and row.detail["turns_text"] == ["Assistant A rambles; no label yet."]
        assert row.error.startswith("turn 2:") and "answered 400" in row.error

    # The rerun sends only the continuation: the first turn is given back as the assistant's, not paid again.
    h.seen = []
    h.reply = staticmethod(lambda body: (200, _choice("So: [[A>>B]]")))
    j = judge(url)
    s2 = judge_store(store, task, j, progress=False)
    assert (s2.made, s2.failed) == (2, 0) and j.requests_sent == 2
    for sent in _posts(h):
        assert sent["messages"][-2:] == [
            {"role": "assistant", "content": "Assistant A rambles; no label yet."},
            {"role": "user", "content": CONTINUE},
        ]
    done = store.judgments("arena_hard").set_index(["item_id", "config_key", "sample_idx", "game"])
    for row in failed.itertuples():
        r = done.loc[(row.item_id, row.config_key, row.sample_idx, row.game)]
        assert r["verdict"] == "A>>B" and r["detail"]["turns"] == 2 and r["error"] is None


def test_judging_touches_only_the_selected_samples(server, tmp_path):
    h, url = server
    store, task = SampleStore(tmp_path / "s.sqlite"), get_judged_task("alpaca_eval")
    greedy_key, sampled_key = fill(store, task, n_items=3, n_samples=4)
    j = judge(url)
    s = judge_store(store, task, j, progress=False, configs={sampled_key: 2}, prompt_hashes={"0": "p", "1": "p", "2": "other"})
    assert s.n_samples == 4 and j.requests_sent == 4  # items 0, 1 x samples 0, 1 of the sampled config only
    jd = store.judgments("alpaca_eval")
    assert set(jd["config_key"]) == {sampled_key} and set(jd["sample_idx"]) == {0, 1} and set(jd["item_id"]) == {"0", "1"}
    assert set(s.metrics["config_key"]) == {sampled_key} and sorted(s.metrics["sample_idx"]) == [0, 1]


def test_the_connect_timeout_is_separate_from_the_read_timeout():
    c = JsonClient("http://127.0.0.1:9/v1", timeout=300.0)
    t = c._client.timeout
    assert (t.connect, t.read) == (10.0, 300.0)
    j = Judge("m", base_url="http://127.0.0.1:9/v1", connect_timeout=3.0)
    assert (j.api.http._client.timeout.connect, j.api.http._client.timeout.read) == (3.0, 300.0)
    assert j.provenance()["connect_timeout_s"] == 3.0


# --- generation: a refused request is recorded and the stream goes on -----------------------------------
def test_a_refused_generation_request_is_recorded_and_the_stream_goes_on(server, tmp_path):
    h, url = server
    task = get_task("gsm8k")
    items = task.load(limit=4)
    bad = items[1].data["question"]

    def reply(body):
        if bad in json.dumps(body):
            return 400, {"error": {"message": "This model's maximum context length is 2048 tokens"}}
        return 200, _choice("42", body.get("n", 1))

    h.reply = staticmethod(reply)
    store = SampleStore(tmp_path / "s.sqlite")
    kw = dict(n_samples=2, max_new_tokens=8, backend="openai", backend_options={"base_url": url}, progress=False)
    s = run_generation(store, "m", task, items, **kw)
    assert sum(s.generated.values()) == 3 * 3  # the other items: greedy + 2 samples each
    assert {r["item_id"] for r in s.refused} == {str(items[1].id)} and len(s.refused) == 2  # greedy and sampled
    assert "maximum context length" in s.refused[0]["error"] and "REFUSED by the server" in str(s)
    runs = store.runs()
    (rec,) = [p for p in runs["provenance"] if p.get("kind") == "refused"]
    assert rec["generation_run"] == s.run_id and len(rec["refused"]) == 2
    with pytest.raises(RuntimeError, match=r"9 stored samples match this run, 12 expected; the server refused item"):
        s.select(store.frame(model="m", benchmark="gsm8k"))
    # A rerun asks for the refused item only.
    h.seen = []
    h.reply = staticmethod(lambda body: (200, _choice("42", body.get("n", 1))))
    s2 = run_generation(store, "m", task, items, **kw)
    assert sum(s2.generated.values()) == 3 and not s2.refused and len(_posts(h)) == 2


def test_a_generation_reply_without_choices_is_a_clear_error(server):
    h, url = server
    h.reply = staticmethod(lambda body: (200, {"object": "chat.completion"}))
    with pytest.raises(BackendError, match=r"answered without the 1 choices asked for"):
        OpenAIBackend("m", base_url=url, max_retries=0).generate([Request([{"role": "user", "content": "hi"}])], DecodingConfig())


# --- group 5 (part): an openai-served model is what the server serves, not where -----------------------
def test_an_openai_models_identity_is_what_the_server_serves_not_its_host_and_port(server):
    h, url = server
    other = _serve()
    try:
        port2 = other.server_address[1]
        cfg = {"temperature": 1.0}
        ids = [
            Engine("openai", "m", "bfloat16", {"base_url": u}).identity()
            for u in (url, f"http://127.0.0.1:{port2}/v1", f"http://localhost:{port2}/v1")
        ]
        assert (
            ids[0]
            == ids[1]
            == ids[2]
            == {
                "backend": "openai",
                "served_model": "m",
                "root": "/models/smollm2-135m",
                "owned_by": "vllm",
            }
        )
        assert len({config_key(cfg, i) for i in ids}) == 1
        # Another model behind the same name is another identity.
        h.models = [{"id": "m", "root": "/models/qwen2.5-0.5b", "owned_by": "vllm"}]
        assert Engine("openai", "m", "bfloat16", {"base_url": url}).identity()["root"] == "/models/qwen2.5-0.5b"
        # A declared weights id needs no server at all.
        e = Engine("openai", "m", "bfloat16", {"base_url": "http://127.0.0.1:9/v1", "weights": "HuggingFaceTB/SmolLM2-135M"})
        assert e.identity() == {"backend": "openai", "served_model": "m", "weights": "HuggingFaceTB/SmolLM2-135M"}
    finally:
        other.shutdown()
        other.server_close()
    from gbg_utils.models import ModelError

    with pytest.raises(ModelError, match=r"does not serve a model named 'x' \(its /models lists: m\)"):
        Engine("openai", "x", "bfloat16", {"base_url": url}).identity()


# --- group 7: secrets stay where they belong -----------------------------------------------------------
def test_a_password_in_a_base_url_is_in_no_output(server, tmp_path, monkeypatch):
    h, url = server
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    secret_url = url.replace("http://", "http://alice:hunter2pw@") + "?token=qs-secret-77"
    store = SampleStore(tmp_path / "s.sqlite")
    task = get_task("gsm8k")
    h.reply = staticmethod(lambda body: (200, _choice("42", body.get("n", 1))))
    run_generation(
        store, "m", task, task.load(limit=2), n_samples=1, max_new_tokens=8, backend="openai",
        backend_options={"base_url": secret_url}, progress=False,
    )  # fmt: skip
    jtask = get_judged_task("alpaca_eval")
    fill(store, jtask, n_items=1, n_samples=1)
    s = judge_store(store, jtask, judge(secret_url), progress=False)
    h.reply = staticmethod(lambda body: (401, {"error": "who are you?"}))
    fill(SampleStore(tmp_path / "t.sqlite"), jtask, n_items=1, n_samples=1)
    with pytest.raises(JudgeError) as e:
        judge_store(SampleStore(tmp_path / "t.sqlite"), jtask, judge(secret_url), progress=False)
    with pytest.raises(BackendError) as e2:
        OpenAIBackend("m", base_url=secret_url).generate([Request(HI)], DecodingConfig())
    texts = [
        str(e.value),
        str(e2.value),
        str(s),
        repr(judge(secret_url)),
        json.dumps(s.provenance),
        json.dumps(store.runs()["provenance"].tolist()),
        json.dumps(store.judge_runs()["provenance"].tolist()),
        store.configs().to_json(),
    ]
    blob = "\n".join(texts) + "".join(p.read_bytes().decode("latin-1") for p in tmp_path.glob("*.sqlite*"))
    for secret in ("hunter2pw", "alice", "qs-secret-77"):
        assert secret not in blob
    assert origin(url) in json.dumps(s.provenance) and "answered 401" in str(e.value)


def test_where_a_key_may_go():
    env = {"OPENAI_API_KEY": "sk-o", "VLLM_API_KEY": "sk-v", "OPENAI_BASE_URL": "https://proxy.example.org/v1"}
    sent = lambda url, name=None, **kw: key_decision(url, name, env, **kw).send  # noqa: E731
    assert sent("https://api.openai.com/v1") and sent("https://proxy.example.org/v1")  # the OpenAI key's own hosts
    assert sent("http://127.0.0.1:8000/v1") and sent("http://localhost:8000/v1") and sent("http://[::1]:8000/v1")
    assert not sent("https://gpu-box.example.com/v1")  # someone else's https host: not the OpenAI key
    assert not sent("http://gpu-box:8000/v1") and not sent("http://10.0.0.5:8000/v1")  # plain http, not loopback
    assert sent("https://gpu-box.example.com/v1", "VLLM_API_KEY")  # a key named for this server, over https
    assert not sent("http://gpu-box:8000/v1", "VLLM_API_KEY")  # ... but never over plain http to another host
    assert sent("http://gpu-box:8000/v1", "VLLM_API_KEY", trust_host=True)  # unless the user opts in
    assert key_decision("http://gpu-box:8000/v1", None, env).env == "OPENAI_API_KEY"


def _own_address() -> str | None:
    """This machine's own non-loopback IPv4 address, if it has one."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))  # no packet is sent: it only picks the outgoing interface
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip


def test_a_key_goes_to_a_loopback_server_and_never_over_plain_http_to_another_host(server, tmp_path, monkeypatch):
    h, url = server
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    monkeypatch.setenv("GBG_TEST_API_KEY", "sk-named-secret")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    j = judge(url, api_key_env="GBG_TEST_API_KEY")
    j.chat(j.body([{"role": "user", "content": "hi"}], 1))
    assert _posts(h) and all(auth == "Bearer sk-named-secret" for p, auth, b in h.seen if b is not None)
    ip = _own_address()
    if ip is None:
        pytest.skip("this machine has no non-loopback address to serve on")
    srv = _serve(ip)
    try:
        far = f"http://{ip}:{srv.server_address[1]}/v1"
        for name in (None, "GBG_TEST_API_KEY"):  # neither the OpenAI key nor a named one goes over plain http
            h.seen = []
            OpenAIBackend("m", base_url=far, api_key_env=name).generate([Request(HI)], DecodingConfig())
            assert h.seen and all(auth is None for _, auth, _ in h.seen)
        h.reply = staticmethod(lambda body: (401, {"error": "key required"}))
        with pytest.raises(BackendError, match=r"answered 401.*\$GBG_TEST_API_KEY was not sent: .*plain http.*trust_host=True"):
            OpenAIBackend("m", base_url=far, api_key_env="GBG_TEST_API_KEY").generate([Request(HI)], DecodingConfig())
        h.seen, h.reply = [], staticmethod(lambda body: (200, _choice("ok")))
        OpenAIBackend("m", base_url=far, api_key_env="GBG_TEST_API_KEY", trust_host=True).generate(
            [Request(HI)], DecodingConfig()
        )
        assert [a for _, a, b in h.seen if b is not None] == ["Bearer sk-named-secret"]
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_notebooks_provenance_keeps_only_the_origin_of_its_urls():
    import pandas as pd

    from gbg_utils.params import Gap
    from gbg_utils.provenance import notebook_run

    P = Gap(
        models=["m"],
        benchmarks=["gsm8k"],
        backend="openai",
        base_url="http://alice:hunter2pw@gpu-box:8000/v1?token=qs-secret-77",
        judge_base_url="https://bob:pw-judge-9@judge.example.org/v1",
    )
    prov = notebook_run(P, "gap", pd.DataFrame({"run_id": []}))
    text = json.dumps(prov)
    assert "hunter2pw" not in text and "qs-secret-77" not in text and "pw-judge-9" not in text
    assert prov["params"]["base_url"] == "http://gpu-box:8000"
    assert prov["params"]["judge_base_url"] == "https://judge.example.org"
