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

import pytest
from conftest import TEST_MODEL

from gbg_utils.decoding import DecodingConfig
from gbg_utils.generate.backends import OpenAIBackend, Request, VLLMBackend
from gbg_utils.generate.server import start_vllm_server, stop_server
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
    proc, url = start_vllm_server(hostile_model, "hostile", log=tmp_path / "server.log", dtype="float32", max_model_len=2048)
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
        finally:
            local.close()
    finally:
        stop_server(proc)


