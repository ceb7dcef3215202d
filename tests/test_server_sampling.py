"""Nothing added by a server (issue 19, part 4): a vLLM server fills every sampling field a request leaves out from
the model's generation_config.json (`--generation-config auto`, vLLM's default), so gbg's client sends every field.

The server test serves a copy of SmolLM2-135M (float32) whose generation_config.json asks for repetition_penalty
1.5, top_k 3, top_p 0.5 and temperature 0.3, with the default `auto` (the client alone must defend), and checks
that gbg's openai backend and judge get exactly what the in-process engine writes on the same folder and dtype:
greedy, and seeded samples (vLLM gives the children of an n > 1 request seeds s + j on both paths, and its CPU
sampler draws from each request's own generator, so the same seed gives the same samples).
"""

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import TEST_MODEL, send_json

from gbg_utils.decoding import DecodingConfig
from gbg_utils.generate.backends import BackendError, OpenAIBackend, Request, VLLMBackend
from gbg_utils.generate.server import server_command, start_vllm_server, stop_server
from gbg_utils.score.judge import Judge
from gbg_utils.tasks import get_task

HOSTILE = {"repetition_penalty": 1.5, "top_k": 3, "top_p": 0.5, "temperature": 0.3}
GREEDY = DecodingConfig(max_new_tokens=24)
SAMPLED = DecodingConfig(temperature=1.0, n=2, max_new_tokens=24)
FIELDS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty")


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory) -> str:
    """smollm2-135m (float32) with sampling defaults in its generation_config.json (its eos/bos/pad ids kept)."""
    from gbg_utils.models import resolve_model

    dst = tmp_path_factory.mktemp("hostile") / "smollm2-hostile"
    shutil.copytree(resolve_model(TEST_MODEL, "float32"), dst)
    cfg = json.loads((dst / "generation_config.json").read_text())
    (dst / "generation_config.json").write_text(json.dumps({**cfg, **HOSTILE}, indent=2))
    return str(dst)


def texts(outs):
    return [[c.text for c in o] for o in outs]


@pytest.mark.slow
def test_a_servers_generation_config_adds_nothing(hostile_model, tmp_path):
    items = get_task("gsm8k").load(limit=4)
    task = get_task("gsm8k")
    prompts = [task.prompt(it) for it in items]
    log = tmp_path / "server.log"  # vLLM's default, not gbg's: the client alone must defend
    proc, url = start_vllm_server(
        hostile_model, "hostile", log=log, dtype="float32", max_model_len=2048, generation_config="auto"
    )
    try:
        api = OpenAIBackend("hostile", base_url=url, concurrency=4)
        local = VLLMBackend(hostile_model, dtype="float32", max_model_len=2048)
        try:
            ids = [local.encode(p) for p in prompts]
            want = texts(local.generate([Request(p, 1, 0, i) for p, i in zip(prompts, ids)], GREEDY))
            # The file does change what this server writes when a request leaves the fields out (as gbg's did).
            bare = [
                api.post("/chat/completions", {"model": "hostile", "messages": p, "temperature": 0, "max_tokens": 24})
                for p in prompts
            ]
            assert sum(b["choices"][0]["message"]["content"] != w[0] for b, w in zip(bare, want)) >= 1

            assert texts(api.generate([Request(p, 1, 0) for p in prompts], GREEDY)) == want

            seeded = [Request(p, 2, 1000 + 7 * k, i) for k, (p, i) in enumerate(zip(prompts, ids))]
            want_s = texts(local.generate(seeded, SAMPLED))
            assert all(len(set(s)) == 2 for s in want_s)  # two draws, not copies
            assert texts(api.generate([Request(r.prompt, r.n, r.seed) for r in seeded], SAMPLED)) == want_s

            # The judge goes through the same client: its verdict is what the in-process engine writes.
            judge = Judge("hostile", base_url=url)
            assert judge.chat(judge.body(prompts[0], 24))["message"]["content"] == want[0][0]
            # Provenance: the server was sent exactly the settings the in-process engine ran.
            for cfg in (GREEDY, SAMPLED):
                sent, ran = api.sampling_settings(cfg), local.sampling_settings(cfg)
                assert sent["server"] == "vllm" and sent["seeded"] == ran["seeded"] == (not cfg.greedy)
                assert {k: sent[k] for k in FIELDS} == {k: ran[k] for k in FIELDS}
        finally:
            local.close()
    finally:
        stop_server(proc)


# --- what the client sends (a fake server: no model) -------------------------------------------------
class _Server(BaseHTTPRequestHandler):
    owned_by: str | None = "vllm"  # None: no /models (answers 404)
    gets = 0
    seen: list = []

    def do_GET(self):
        type(self).gets += 1
        if self.path.endswith("/models") and self.owned_by:
            send_json(self, 200, {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": self.owned_by}]})
        else:
            send_json(self, 404, {"error": "not found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).seen.append(body)
        choices = [{"index": i, "message": {"content": f"a{i}"}, "finish_reason": "stop"} for i in range(body.get("n", 1))]
        send_json(self, 200, {"choices": choices, "usage": {"completion_tokens": len(choices)}})

    def log_message(self, *a):
        pass


@pytest.fixture
def fake():
    _Server.owned_by, _Server.gets, _Server.seen = "vllm", 0, []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield _Server, f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


MESSAGES = [{"role": "user", "content": "hi"}]
NEUTRAL = {"presence_penalty": 0.0, "frequency_penalty": 0.0}


def test_every_sampling_field_goes_to_a_vllm_server_greedy_included(fake):
    h, url = fake
    be = OpenAIBackend("m", base_url=url)
    be.generate([Request(MESSAGES, 1, 0)], GREEDY)
    be.generate([Request(MESSAGES, 3, 41)], DecodingConfig(temperature=0.7, top_p=0.9, top_k=20, repetition_penalty=1.1, n=3))
    be.generate([Request(MESSAGES, 2, 7)], SAMPLED)
    greedy, tuned, plain = h.seen
    assert {k: greedy[k] for k in FIELDS} == {
        "temperature": 0.0,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        **NEUTRAL,
    }
    assert "seed" not in greedy  # greedy draws nothing (vLLM: seed None, as in-process)
    assert {k: tuned[k] for k in FIELDS} == {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 20,
        "min_p": 0.0,
        "repetition_penalty": 1.1,
        **NEUTRAL,
    }
    assert tuned["seed"] == 41 and tuned["n"] == 3
    assert {k: plain[k] for k in FIELDS} == {
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        **NEUTRAL,
    }
    assert h.gets == 1  # the server was asked once what it is


def test_a_server_that_is_not_vllm_gets_openais_fields_and_no_setting_is_dropped(fake):
    h, url = fake
    for owned_by in ("openai", None):  # OpenAI's API, and a server without /models
        h.owned_by, h.seen = owned_by, []
        be = OpenAIBackend("m", base_url=url)
        be.generate([Request(MESSAGES, 2, 7)], SAMPLED)
        assert set(h.seen[0]) & {"top_k", "min_p", "repetition_penalty"} == set()
        assert {k: h.seen[0][k] for k in ("temperature", "top_p", *NEUTRAL)} == {"temperature": 1.0, "top_p": 1.0, **NEUTRAL}
        for bad in (SAMPLED.replace(top_k=20), SAMPLED.replace(repetition_penalty=1.05), GREEDY.replace(repetition_penalty=1.05)):
            with pytest.raises(BackendError, match="is not a vLLM server .* gbg does not drop them") as e:
                be.generate([Request(MESSAGES, bad.n, 7)], bad)
            assert "\n" not in str(e.value)
        be.generate([Request(MESSAGES, 1, 0)], GREEDY.replace(top_k=20))  # greedy ignores top_k: nothing is lost
    h.owned_by, h.gets, h.seen = "openai", 0, []
    forced = OpenAIBackend("m", base_url=url, server="vllm")  # a server that takes vLLM's fields without saying so
    forced.generate([Request(MESSAGES, 2, 7)], SAMPLED.replace(top_k=20))
    assert h.gets == 0 and h.seen[0]["top_k"] == 20
    with pytest.raises(BackendError, match="server='x'"):
        OpenAIBackend("m", base_url=url, server="x")


def test_a_run_records_the_sampling_settings_it_sent(fake, tmp_path):
    from gbg_utils.generate.runner import run_generation
    from gbg_utils.store import SampleStore

    h, url = fake
    store = SampleStore(tmp_path / "s.sqlite")
    task = get_task("gsm8k")
    s = run_generation(
        store, "m", task, task.load(limit=2), n_samples=2, top_p=0.9, max_new_tokens=8, backend="openai",
        backend_options={"base_url": url}, progress=False,
    )  # fmt: skip
    (prov,) = store.runs()["provenance"]
    sampling = prov["sampling"]
    assert set(sampling) == set(s.wanted)  # one entry per config_key of the run
    sent = {json.dumps({k: b[k] for k in FIELDS}, sort_keys=True) for b in h.seen}
    assert sent == {json.dumps({k: v[k] for k in FIELDS}, sort_keys=True) for v in sampling.values()}
    assert sorted(v["seeded"] for v in sampling.values()) == [False, True] and {v["server"] for v in sampling.values()} == {
        "vllm"
    }


def test_the_judge_sends_every_field_and_its_request_hash_stays(fake):
    from gbg_utils.score.judge import request_hash

    h, url = fake
    j = Judge("m", base_url=url, backoff=0.01)
    body = j.body(MESSAGES, 5)
    assert body == {"messages": MESSAGES, "temperature": 0.0, "max_tokens": 5}  # what the cached judgments were keyed by
    assert request_hash(body) == "454efb5955224c6f"
    j.chat(body)
    assert {k: h.seen[0][k] for k in FIELDS} == {
        "temperature": 0.0,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        **NEUTRAL,
    }
    assert j.sampling() == {"server": "vllm", **{k: h.seen[0][k] for k in FIELDS}}
    assert "sampling" not in j.provenance()  # recorded by a judge run that sends requests: a cached rerun asks nothing


def test_gbgs_own_server_takes_vllms_neutral_defaults_not_the_models(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    cmd = server_command(str(tmp_path), "m", 8000, "float32", 2048)
    assert cmd[cmd.index("--generation-config") + 1] == "vllm"
    cmd = server_command(str(tmp_path), "m", 8000, "float32", 2048, generation_config="auto")
    assert cmd[cmd.index("--generation-config") + 1] == "auto"
