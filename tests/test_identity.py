"""A sample's identity: what changes a completion regenerates it, nothing else does, and every backend
sees the same prompt token ids (one BOS) -- on a tiny Llama-style model built here, whose template emits BOS."""

import json
import shutil

import pytest

from gbg_utils.decoding import DecodingConfig
from gbg_utils.generate.backends import generate, load_backend
from gbg_utils.generate.runner import run_generation
from gbg_utils.params import validate
from gbg_utils.store import SampleStore
from gbg_utils.tasks import get_task

BOS = "<|endoftext|>"  # id 0 in SmolLM2's vocabulary, used as this model's BOS
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def make_tiny_llama(folder, tokenizer_dir, seed=0, template=TEMPLATE):
    """A 2-layer Llama with random weights and SmolLM2's vocabulary; its tokenizer adds BOS to raw text
    (as Llama's does) and its chat template starts with BOS (as Llama-3's and Mistral's do)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tok = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    tok["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": BOS, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [
            {"SpecialToken": {"id": BOS, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {BOS: {"id": BOS, "ids": [0], "tokens": [BOS]}},
    }
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": BOS,
                "eos_token": "<|im_end|>",
                "pad_token": "<|im_end|>",
                "unk_token": BOS,
                "add_bos_token": True,
                "model_max_length": 2048,
            }
        )
    )
    (folder / "chat_template.jinja").write_text(template)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok["model"]["vocab"]),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=2048,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=2,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_llama(smol_path, tmp_path_factory):
    from pathlib import Path

    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama", Path(smol_path))


@pytest.fixture(scope="module")
def tiny_vllm(tiny_llama):
    be = load_backend("vllm", tiny_llama, max_model_len=1024)  # the library's own CPU defaults
    yield be
    be.close()


# smollm2-135m's greedy config_key on the transformers backend (bf16, batch 16), as gbg has computed it since
# MATERIALISE_VERSION took its present value: embedded models' samples in existing stores keep being reused.
EMBEDDED_GREEDY_KEY = "a34a428072aa327f"

PROMPT = [{"role": "user", "content": "Write a haiku about the sea."}]


@pytest.mark.slow
def test_vllm_and_transformers_receive_identical_prompt_ids_with_one_bos(tiny_llama, tiny_vllm):
    hf = load_backend("transformers", tiny_llama)
    cfg = DecodingConfig(max_new_tokens=4)
    generate(hf, [PROMPT], cfg)
    generate(tiny_vllm, [PROMPT], cfg)
    bos_id = hf.tokenizer.convert_tokens_to_ids(BOS)
    assert hf.last_prompt_ids == tiny_vllm.last_prompt_ids  # the ids vLLM itself reports having received
    ids = tiny_vllm.last_prompt_ids[0]
    assert ids[0] == bos_id and ids.count(bos_id) == 1
    # The trap this avoids: the rendered template as text, tokenised by vLLM as a completion prompt, gets BOS twice.
    text = hf.tokenizer.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    as_text = tiny_vllm.llm.generate([text], tiny_vllm._vllm.SamplingParams(max_tokens=1), use_tqdm=False)[0].prompt_token_ids
    assert as_text[:2] == [bos_id, bos_id]


def _run(store, model, backend, items, task, dtype="bfloat16", **kw):
    s = run_generation(
        store, model, task, items, n_samples=2, max_new_tokens=4, backend=backend, progress=False, dtype=dtype, **kw
    )
    return sum(s.generated.values()), s


@pytest.mark.slow
def test_what_changes_a_completion_regenerates_it_and_nothing_else_does(tiny_llama, tiny_vllm, smol_path, tmp_path):
    from pathlib import Path

    task = get_task("humaneval")
    items = task.load(limit=2)
    store = SampleStore(tmp_path / "store.sqlite")
    model = str(tmp_path / "model")
    shutil.copytree(tiny_llama, model)
    full = 2 * 3  # greedy + 2 samples per item

    assert _run(store, model, "transformers", items, task)[0] == full
    assert _run(store, model, "transformers", items, task)[0] == 0  # the same run twice: nothing new
    assert _run(store, model, "transformers", items, task, dtype="float32")[0] == full  # another dtype
    # another backend (vLLM on a copy of the same weights; a loaded backend names its own engine)
    vmodel = tiny_vllm.model
    assert _run(store, vmodel, tiny_vllm, items, task)[0] == full
    assert _run(store, vmodel, tiny_vllm, items, task)[0] == 0
    # another chat template: other token ids, other samples
    (Path(model) / "chat_template.jinja").write_text(TEMPLATE.replace("assistant\n", "assistant\n\n"))
    n, s = _run(store, model, "transformers", items, task)
    assert n == full
    # other weights in the same folder
    make_tiny_llama(Path(model), Path(smol_path), seed=1, template=TEMPLATE.replace("assistant\n", "assistant\n\n"))
    assert _run(store, model, "transformers", items, task)[0] == full
    df = store.samples()
    assert len(df) == 5 * full and df["prompt_hash"].nunique() == 2 * 2  # two templates x two items
    assert SampleStore(store.path).configs()[["backend", "dtype"]].drop_duplicates().shape[0] == 3


@pytest.mark.slow
def test_each_notebook_sees_its_own_n_whatever_the_store_holds(tiny_llama, tmp_path):
    base = dict(
        dtype="bfloat16",  # explicit: the default "auto" is float32 on a CPU without AVX512-BF16
        models=[tiny_llama],
        benchmarks=["gsm8k"],
        limit=2,
        max_new_tokens=4,
        backend="transformers",
        store=str(tmp_path / "store.sqlite"),
        n_boot=0,
    )
    from gbg_utils import study

    eight = study.generate_and_score(validate("gap", {**base, "n_samples": 8}))
    four = study.generate_and_score(validate("repetition", {**base, "n_samples": 4}))
    per_item = lambda df: df[~df.greedy].groupby("item_id").size().tolist()  # noqa: E731
    assert per_item(eight) == [8, 8] and per_item(four) == [4, 4]
    assert set(four[~four.greedy]["sample_idx"]) == {0, 1, 2, 3}  # the first four, not any four
    assert four.greedy.sum() == 2 and eight.greedy.sum() == 2
    # and a notebook's table never mixes in another engine's samples of the same model
    f32 = study.generate_and_score(validate("gap", {**base, "n_samples": 4, "dtype": "float32"}))
    assert set(f32["config_key"]).isdisjoint(set(four["config_key"]))
    assert len(SampleStore(tmp_path / "store.sqlite").samples()) == 2 * 9 + 2 * 5


def test_prompt_hash_is_of_token_ids_or_of_what_was_sent():
    from gbg_utils.identity import prompt_hash

    assert prompt_hash([1, 2, 3]) == prompt_hash([1, 2, 3]) != prompt_hash([1, 2, 4])
    msgs = [{"role": "user", "content": "hi"}]
    assert prompt_hash(msgs) != prompt_hash([1, 2, 3]) and len(prompt_hash(msgs)) == 16


def test_weights_identity_of_a_folder_follows_its_content(tmp_path):
    from gbg_utils.identity import weights_identity

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"a" * 100)
    a = weights_identity(str(tmp_path))
    assert weights_identity(str(tmp_path)) == a
    (tmp_path / "model.safetensors").write_bytes(b"b" * 100)
    assert weights_identity(str(tmp_path))["sha256"] != a["sha256"]
    assert weights_identity("smollm2-135m")["gguf_sha256"].startswith("b179c952")


def test_weights_identity_of_a_hub_id_is_its_resolved_revision(tmp_path, monkeypatch):
    """A hub id in the local hub cache resolves to the snapshot's commit, with no network."""
    from gbg_utils import identity

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--org--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    identity.hub_revision.cache_clear()
    assert identity.weights_identity("org/tiny") == {"kind": "hub", "repo": "org/tiny", "revision": commit}


class _TemplateTokenizer:
    """A stand-in tokenizer: a Mistral-like template that writes BOS and ends without whitespace."""

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "<s>" + "".join(f"[INST] {m['content']} [/INST]" for m in messages)

    def __call__(self, text, add_special_tokens=True):
        class Enc:
            input_ids = [1] * add_special_tokens + [ord(c) for c in text]

        return Enc()


def test_an_empty_prefill_is_the_rendered_template_tokenised_with_special_tokens():
    # ZeroEval (vLLM LLM.generate(str)) and MixEval (HF tokenizer(str)) tokenised the rendered template as text:
    # nothing after the header (no space before an empty prefill), and the tokenizer's own BOS before the template's.
    from gbg_utils.generate.backends import encode_prompt, render_prefilled
    from gbg_utils.tasks.base import PrefilledChat

    tok = _TemplateTokenizer()
    assert render_prefilled(tok, PrefilledChat.of(PROMPT, "")) == "<s>[INST] Write a haiku about the sea. [/INST]"
    assert render_prefilled(tok, PrefilledChat.of(PROMPT, "Answer:")).endswith("[/INST] Answer:")  # open-instruct's space
    ids = encode_prompt(tok, PrefilledChat.of(PROMPT, ""))
    assert ids[0] == 1 and "".join(map(chr, ids[1:])) == "<s>[INST] Write a haiku about the sea. [/INST]"


def test_the_openai_backend_sends_an_empty_prefill_as_plain_chat_turns(monkeypatch):
    from gbg_utils.generate.backends import OpenAIBackend, Request
    from gbg_utils.tasks.base import PrefilledChat

    be = OpenAIBackend("m", base_url="http://127.0.0.1:9", server="vllm")
    sent = []
    monkeypatch.setattr(be, "post", lambda path, body: sent.append((path, body)) or {"choices": [{"message": {"content": "x"}}]})
    be._one(Request(PrefilledChat.of(PROMPT, ""), n=1, seed=0), DecodingConfig(max_new_tokens=4))
    path, body = sent[0]
    assert path == "/chat/completions" and body["messages"] == PROMPT and "continue_final_message" not in body


def test_a_folder_is_identified_by_its_content_not_its_path(tmp_path):
    """The same weights at two mount points are one engine; another code file or weight is another."""
    from gbg_utils.identity import Engine, config_key, weights_identity

    a, b = tmp_path / "mnt-a" / "llama", tmp_path / "mnt-b" / "models" / "llama"
    for d in (a, b):
        d.mkdir(parents=True)
        (d / "config.json").write_text("{}")
        (d / "model.safetensors").write_bytes(b"w" * 100)
    assert weights_identity(str(a)) == weights_identity(str(b))
    assert str(a) not in json.dumps(weights_identity(str(a)))
    key = lambda d: config_key(DecodingConfig().identity(), Engine("transformers", str(d)).identity())  # noqa: E731
    assert key(a) == key(b)
    (b / "modeling_custom.py").write_text("# code that runs the model is part of it\n")
    assert key(a) != key(b)


def test_embedded_models_keep_their_identity():
    """Stores filled before identities followed content keep their keys for embedded models: this key is the one
    gbg gave smollm2-135m's greedy config on the transformers backend since the materialise version it names."""
    from gbg_utils.identity import Engine, config_key

    eng = Engine("transformers", "smollm2-135m", "bfloat16", {"batch_size": 16}).identity()
    assert set(eng["weights"]) == {"kind", "name", "gguf_sha256", "materialise"}
    assert config_key(DecodingConfig().identity(), eng) == EMBEDDED_GREEDY_KEY


def test_the_same_weights_at_another_mount_point_are_reused(tiny_llama, tmp_path, monkeypatch):
    """Two machines, one model name (a path relative to each one's project folder), the same weights at two
    absolute paths: after a store merge the second machine generates nothing."""
    task = get_task("gsm8k")
    items = task.load(limit=2)
    store = SampleStore(tmp_path / "store.sqlite")
    for machine in ("a", "b"):
        shutil.copytree(tiny_llama, tmp_path / machine / "models" / "tiny")
    monkeypatch.chdir(tmp_path / "a")
    run = dict(n_samples=1, max_new_tokens=3, backend="transformers", dtype="bfloat16", progress=False)
    first = run_generation(store, "models/tiny", task, items, **run)
    assert sum(first.generated.values()) == 4
    monkeypatch.chdir(tmp_path / "b")
    again = run_generation(store, "models/tiny", task, items, **run)
    assert (sum(again.generated.values()), again.loaded_model) == (0, False)


def test_a_run_that_asks_for_logprobs_never_reuses_samples_stored_without_them(tiny_llama, tmp_path):
    """`gbg generate` stores no log-probs; a notebook that ranks by them fills them in, keeping every sample's
    identity (one row per sample, no duplicates), and from then on both kinds of run reuse the rows."""
    task = get_task("gsm8k")
    items = task.load(limit=2)
    store = SampleStore(tmp_path / "store.sqlite")
    run = dict(n_samples=2, max_new_tokens=3, backend="transformers", dtype="bfloat16", progress=False)
    assert sum(run_generation(store, tiny_llama, task, items, **run).generated.values()) == 6
    assert store.samples()["mean_logprob"].isna().all()
    filled = run_generation(store, tiny_llama, task, items, logprobs=True, **run)
    assert (sum(filled.generated.values()), sum(filled.reused.values())) == (6, 0)
    df = store.samples()
    assert len(df) == 6 and df["mean_logprob"].notna().all()
    for logprobs in (True, False):
        again = run_generation(store, tiny_llama, task, items, logprobs=logprobs, **run)
        assert (sum(again.generated.values()), again.loaded_model) == (0, False)
