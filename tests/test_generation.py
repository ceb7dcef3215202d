"""Every backend, for real, on the embedded SmolLM2-135M: the sampling semantics gbg relies on."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import send_json

from gbg_utils.decoding import DecodingConfig
from gbg_utils.generate.backends import BackendError, OpenAIBackend, generate, load_backend

PROMPTS = [
    [{"role": "user", "content": "Write one sentence about the sea."}],
    [{"role": "user", "content": "Name a prime number bigger than 10."}],
]
SAMPLED = DecodingConfig(temperature=1.0, n=3, seed=11, max_new_tokens=16)
GREEDY = DecodingConfig(max_new_tokens=16)


def texts(outs):
    return [[c.text for c in o] for o in outs]


@pytest.fixture(params=["vllm", "transformers", "openai"])
def backend(request):
    if request.param == "vllm":
        return request.getfixturevalue("vllm_backend")
    if request.param == "transformers":
        return request.getfixturevalue("hf_backend")
    return OpenAIBackend("smollm2-135m", base_url=request.getfixturevalue("vllm_server"), concurrency=4)


@pytest.mark.slow
def test_sampling_semantics(backend):
    g1, g2 = generate(backend, PROMPTS, GREEDY), generate(backend, PROMPTS, GREEDY)
    assert texts(g1) == texts(g2)  # greedy is deterministic
    assert all(len(o) == 1 and o[0].text for o in g1)
    s1, s2 = generate(backend, PROMPTS, SAMPLED), generate(backend, PROMPTS, SAMPLED)
    assert texts(s1) == texts(s2)  # same seed, same samples
    assert [len(o) for o in s1] == [3, 3]  # n honoured
    assert len(set(texts(s1)[0])) > 1  # n distinct draws, not copies
    other = generate(backend, PROMPTS, SAMPLED.replace(seed=12))
    assert texts(other) != texts(s1)  # another seed, other samples
    for o in s1 + g1:
        for c in o:
            assert 1 <= c.n_tokens <= 16  # max_new_tokens honoured
            assert c.finish_reason in ("stop", "length")
    # Sample j is drawn with seed s + j: asking for samples 1..2 with seed s + 1 extends rather than replaces.
    ext = generate(backend, PROMPTS, SAMPLED.replace(n=2), seeds=[SAMPLED.seed + 1] * 2)
    assert texts(ext) == [t[1:] for t in texts(s1)]


@pytest.mark.slow
def test_the_in_process_engine_leaves_the_environment_as_it_found_it(vllm_backend):
    """gbg runs vLLM's engine core in-process (VLLM_ENABLE_V1_MULTIPROCESSING=0) for its own engine only: left in
    os.environ, it reached every vLLM server started afterwards from the same process, whose greedy outputs then
    changed from one call to the next (test_sampling_semantics[openai] failed whenever it ran after [vllm])."""
    import os

    assert vllm_backend.llm is not None
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in os.environ


@pytest.mark.slow
def test_vllm_and_transformers_agree_on_greedy(vllm_backend, hf_backend):
    cfg = DecodingConfig(max_new_tokens=12)
    assert texts(generate(vllm_backend, PROMPTS[:1], cfg)) == texts(generate(hf_backend, PROMPTS[:1], cfg))


@pytest.mark.slow
def test_logprobs_and_stop_strings(hf_backend, vllm_backend):
    cfg = DecodingConfig(temperature=1.0, n=2, seed=3, max_new_tokens=24, logprobs=True, stop=("\n", "."))
    for be in (hf_backend, vllm_backend):
        for c in generate(be, PROMPTS[:1], cfg)[0]:
            assert c.mean_logprob is not None and c.mean_logprob < 0
            assert "\n" not in c.text and "." not in c.text


@pytest.mark.slow
def test_gsm8k_paper_prompt_ids_reach_vllm(vllm_backend):
    """The paper protocol's GSM8K prompt (test_protocols.py rebuilds it from open-instruct's code): the ids the
    in-process engine reports having received. Here, beside the other users of the session engine: a test that closes
    an in-process engine tears down the process groups it needs."""
    from test_protocols import open_instruct_gsm_prompts

    from gbg_utils.generate.backends import Request
    from gbg_utils.tasks import get_task

    task = get_task("gsm8k", "paper")
    reqs = [Request(task.prompt(it)) for it in task.load()[:3]]
    vllm_backend.generate(reqs, DecodingConfig(max_new_tokens=2))
    tok = vllm_backend.tokenizer
    assert vllm_backend.last_prompt_ids == [tok.encode(p) for p in open_instruct_gsm_prompts(tok)[:3]]


def test_unknown_backend():
    with pytest.raises(BackendError, match="unknown backend 'tgi': choose one of vllm, transformers, openai"):
        load_backend("tgi", "smollm2-135m")


def test_model_that_will_not_load_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BackendError, match="transformers could not load model"):
        load_backend("transformers", str(tmp_path))


# --- the OpenAI client against a real local HTTP server that fails on purpose -----------------------
class _Flaky(BaseHTTPRequestHandler):
    script: list = []  # status codes to answer before succeeding
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).seen.append((self.headers.get("authorization"), body))
        status = type(self).script.pop(0) if type(self).script else 200
        payload = (
            {"error": "boom"}
            if status != 200
            else {
                "choices": [
                    {
                        "index": i,
                        "message": {"content": f"answer {i}"},
                        "finish_reason": "stop",
                        "logprobs": {"content": [{"logprob": -0.5}] * 3},
                    }
                    for i in range(body["n"])
                ],
                "usage": {"completion_tokens": 3 * body["n"]},
            }
        )
        send_json(self, status, payload)

    def log_message(self, *a):
        pass


@pytest.fixture
def flaky_server():
    _Flaky.script, _Flaky.seen = [], []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield _Flaky, f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_openai_retries_429_and_5xx_then_succeeds(flaky_server, monkeypatch):
    handler, url = flaky_server
    handler.script = [429, 500, 503]
    monkeypatch.setenv("GBG_TEST_KEY", "sk-secret")
    be = OpenAIBackend("m", base_url=url, backoff=0.01, max_retries=5, api_key_env="GBG_TEST_KEY", server="vllm")
    out = generate(be, PROMPTS[:1], DecodingConfig(temperature=0.7, n=2, seed=5, repetition_penalty=1.1))
    assert [c.text for c in out[0]] == ["answer 0", "answer 1"] and out[0][0].n_tokens == 3
    assert be.requests_sent == 4
    auth, body = handler.seen[-1]
    assert auth == "Bearer sk-secret" and body["seed"] == 5 and body["n"] == 2 and body["repetition_penalty"] == 1.1
    assert "sk-secret" not in json.dumps(be.provenance())


def test_openai_gives_up_with_a_clear_error(flaky_server):
    handler, url = flaky_server
    handler.script = [500] * 10
    be = OpenAIBackend("m", base_url=url, backoff=0.01, max_retries=2)
    with pytest.raises(BackendError, match="failed after 3 attempts; last error: HTTP 500"):
        generate(be, PROMPTS[:1], GREEDY)


def test_openai_does_not_retry_a_client_error(flaky_server):
    handler, url = flaky_server
    handler.script = [400]
    be = OpenAIBackend("m", base_url=url, backoff=0.01)
    with pytest.raises(BackendError, match="answered 400"):
        generate(be, PROMPTS[:1], GREEDY)
    assert be.requests_sent == 1


class _Slow(BaseHTTPRequestHandler):
    """Answers after the delay the prompt names, and counts the requests in flight at once."""

    lock = threading.Lock()
    in_flight = peak = 0

    def do_POST(self):
        import time

        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.peak = max(cls.peak, cls.in_flight)
        time.sleep(float(body["messages"][0]["content"]))
        with cls.lock:
            cls.in_flight -= 1
        choice = {"index": 0, "message": {"content": body["messages"][0]["content"]}, "finish_reason": "stop"}
        send_json(self, 200, {"choices": [choice], "usage": {"completion_tokens": 1}})

    def log_message(self, *a):
        pass


def test_the_openai_stream_keeps_concurrency_requests_in_flight_and_returns_each_as_it_finishes():
    """A server is kept full: a slow request does not hold back the ones after it (as a batch waiting for its
    slowest would), and exactly `concurrency` requests are in flight while any remain."""
    from gbg_utils.generate.backends import Request

    _Slow.in_flight = _Slow.peak = 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        be = OpenAIBackend("m", base_url=f"http://127.0.0.1:{srv.server_address[1]}/v1", concurrency=4)
        delays = ["1.5"] + ["0.1"] * 20
        pairs = [(Request([{"role": "user", "content": d}], 1, 0), GREEDY) for d in delays]
        order = [i for i, _, _ in be.stream(pairs, chunk_size=32)]
    finally:
        srv.shutdown()
    assert sorted(order) == list(range(len(delays)))  # every request once
    assert order[-1] == 0  # the slow one came back last, after all 20 quick ones had passed it
    assert _Slow.peak == 4  # never more than `concurrency` at once, and the pool was used in full
