"""Reward scoring on tiny reward models built and saved here (random weights: the mechanics, not the values)."""

import importlib.util
import math
import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from gbg_utils.decoding import DecodingConfig
from gbg_utils.identity import prompt_hash
from gbg_utils.score.reward import conversation, score_rewards
from gbg_utils.score.reward_models import REWARD_VERSION, RewardModelError, load_reward_model, reward_from_output
from gbg_utils.store import Sample, SampleStore
from gbg_utils.tasks.base import Item

BOS = "<|begin_of_text|>"
# Llama-3's template: BOS is written by the template itself, as in ArmoRM's and FsfairX's tokenizers.
LLAMA3_TEMPLATE = (
    "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
NO_BOS_TEMPLATE = LLAMA3_TEMPLATE.replace("bos_token + content", "content")


def _llama3_tokenizer(template=LLAMA3_TEMPLATE, pad=True):
    """SmolLM2's BPE with Llama-3's special tokens, a post-processor that prepends BOS (as Llama-3's does), and a template."""
    from tokenizers import processors
    from transformers import AutoTokenizer

    from gbg_utils.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m"))
    tok.add_special_tokens({"additional_special_tokens": [BOS, "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]})
    tok.bos_token, tok.eos_token = BOS, "<|eot_id|>"
    tok.pad_token = tok.pad_token if pad else None
    bos_id = tok.convert_tokens_to_ids(BOS)
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, bos_id)])
    tok.chat_template = template
    return tok


def _save_rm(folder, tok, num_labels=1, pad=True, seed=0):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(seed)
    # head_dim 32: the smallest vLLM's CPU attention runs
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        num_labels=num_labels,
        initializer_range=0.3,
        pad_token_id=tok.pad_token_id if pad else None,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    LlamaForSequenceClassification(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tok():
    return _llama3_tokenizer()


@pytest.fixture(scope="module")
def rm_dir(tok, tmp_path_factory):
    return _save_rm(tmp_path_factory.mktemp("rm") / "tiny-rm", tok)


@pytest.fixture(scope="module")
def rm(rm_dir):
    return load_reward_model(rm_dir)


def _convs(n, seed=0):
    rng = random.Random(seed)
    return [
        [
            {"role": "user", "content": f"What is {i} + {i}?"},
            {
                "role": "assistant",
                "content": " ".join(rng.choice(["so", "the", "answer", "is", str(2 * i)]) for _ in range(rng.randint(1, 40))),
            },
        ]
        for i in range(n)
    ]


# --- what the model sees ---------------------------------------------------------------------------
def test_bos_appears_once(rm, tok, tmp_path):
    conv = _convs(1)[0]
    bos = tok.convert_tokens_to_ids(BOS)
    text = tok.apply_chat_template(conv, tokenize=False)
    assert tok(text)["input_ids"][:2] == [bos, bos]  # the paper's FsfairX path: template BOS + tokenizer BOS
    ids = rm.encode(conv)
    assert ids[0] == bos and ids.count(bos) == 1
    assert rm.tokenizer.decode(ids) == text  # nothing else lost or added
    # A template without BOS: the tokenizer adds the one BOS the model was trained with.
    no_bos = load_reward_model(_save_rm(tmp_path / "nobos", _llama3_tokenizer(NO_BOS_TEMPLATE)))
    ids = no_bos.encode(conv)
    assert ids[0] == bos and ids.count(bos) == 1


def test_conversation_is_task_prompt_plus_completion():
    task = ToyTask(1)
    assert conversation(task, task.items[0], "4") == [
        {"role": "user", "content": "What is 0 + 0?"},
        {"role": "assistant", "content": "4"},
    ]


# --- batching --------------------------------------------------------------------------------------
def test_rewards_same_in_one_batch_or_many_and_in_input_order(rm):
    convs = _convs(13)
    one = np.array(rm.score(convs, batch_size=13))
    assert np.ptp(one) > 0.1  # rewards vary enough that a wrong pooled position would show
    for bs in (1, 4):
        np.testing.assert_allclose(rm.score(convs, batch_size=bs), one, rtol=0, atol=1e-5)
    np.testing.assert_allclose(rm.score(convs[::-1], batch_size=5), one[::-1], rtol=0, atol=1e-5)
    # Alone, with no padding at all:
    np.testing.assert_allclose([rm.score([c])[0] for c in convs[:4]], one[:4], rtol=0, atol=1e-5)


def test_dynamic_padding_pads_to_the_longest_in_batch(rm):
    convs = _convs(12, seed=3)
    lengths = sorted((len(rm.encode(c)) for c in convs), reverse=True)
    widths = []
    h = rm.model.register_forward_pre_hook(lambda mod, args, kw: widths.append(kw["input_ids"].shape), with_kwargs=True)
    try:
        rm.score(convs, batch_size=4)
    finally:
        h.remove()
    assert [w[1] for w in widths] == lengths[::4]  # longest first, each batch as wide as its longest member
    assert max(w[1] for w in widths) < rm.max_length


def test_model_without_pad_id_pools_each_last_token(tmp_path):
    """No pad id anywhere: gbg pads with an id absent from the batch, so pooling matches the unpadded sequence."""
    nopad = load_reward_model(_save_rm(tmp_path / "nopad", _llama3_tokenizer(pad=False), pad=False))
    assert nopad.pad_id is None
    convs = _convs(6)
    with torch.no_grad():  # the model's own rule with no pad id: the last token of an unpadded sequence
        alone = [nopad.model(input_ids=torch.tensor([nopad.encode(c)])).logits[0, 0].item() for c in convs]
    np.testing.assert_allclose(nopad.score(convs, batch_size=6), alone, rtol=0, atol=1e-5)
    assert nopad.model.config.pad_token_id is None  # restored after each batch


def test_too_long_is_nan_not_truncated(rm_dir, tmp_path):
    short = load_reward_model(rm_dir, max_length=30, name="tiny-30")
    convs = _convs(8)
    lens = [len(short.encode(c)) for c in convs]
    assert min(lens) <= 30 < max(lens)
    r = short.score(convs)
    assert [math.isnan(x) for x in r] == [n > 30 for n in lens]
    # in the store: a NULL score with the reason, counted, and not retried
    task, store = ToyTask(4), SampleStore(tmp_path / "s.sqlite")
    n = _fill(store, task)
    s = score_rewards(store, task, short, progress=False)
    sc = store.scores(scorer="reward:tiny-30")
    assert len(sc) == n and s.too_long == sc["score"].isna().sum() > 0
    assert sc.loc[sc["score"].isna(), "reason"].str.match(r"too long: \d+ tokens > max_length 30").all()
    assert score_rewards(store, task, short, progress=False).scored == 0


# --- output read-out and errors --------------------------------------------------------------------
def test_reward_from_output_rules():
    from transformers.modeling_outputs import SequenceClassifierOutput
    from transformers.utils import ModelOutput

    assert reward_from_output(SequenceClassifierOutput(logits=torch.tensor([[1.5], [2.0]])), 2).tolist() == [1.5, 2.0]
    with pytest.raises(RewardModelError, match="outputs 2 logits and no `score` field"):
        reward_from_output(SequenceClassifierOutput(logits=torch.zeros(3, 2)), 3, "x")

    @dataclass
    class Scored(ModelOutput):  # ArmoRM's shape: 19 objective rewards, score and logits the same (batch,) value
        rewards: torch.Tensor = None
        score: torch.Tensor = None
        logits: torch.Tensor = None

    out = Scored(rewards=torch.zeros(2, 19), score=torch.tensor([0.25, -1.0]), logits=torch.tensor([0.25, -1.0]))
    assert reward_from_output(out, 2).tolist() == [0.25, -1.0]
    assert reward_from_output(Scored(score=torch.tensor([[0.5], [1.0]])), 2).tolist() == [0.5, 1.0]


def test_two_logit_model_is_refused(tok, tmp_path):
    with pytest.raises(RewardModelError, match="outputs 2 logits and no `score` field; gbg needs a single-logit"):
        load_reward_model(_save_rm(tmp_path / "two", tok, num_labels=2))


def test_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    with pytest.raises(RewardModelError, match="no such folder"):
        load_reward_model(str(tmp_path / "not-there"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no 5 retries against a dead network
    with pytest.raises(RewardModelError, match="cannot load its config from hub id") as e:
        load_reward_model("nobody-org/no-such-reward-model")
    assert "\n" not in str(e.value)


def test_causal_lm_is_not_a_reward_model(tok, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    with pytest.raises(RewardModelError, match="is a LlamaForCausalLM, not a sequence-classification reward model"):
        load_reward_model(str(tmp_path / "lm"))
    # Relabelled as a one-logit classifier, the head has no weights: transformers would make up random ones.
    cfg.architectures, cfg.num_labels = ["LlamaForSequenceClassification"], 1
    cfg.save_pretrained(tmp_path / "lm")  # the causal LM's weights under a classifier's config
    with pytest.raises(RewardModelError, match="no trained weights for score.weight"):
        load_reward_model(str(tmp_path / "lm"))


_GATED = '''
"""A tiny stand-in for ArmoRM's remote code: multi-objective head, gating, `score` output, and the import transformers 5 dropped."""
from dataclasses import dataclass

import torch
from torch import nn
from transformers import LlamaModel, LlamaPreTrainedModel
from transformers.models.llama.modeling_llama import LLAMA_INPUTS_DOCSTRING  # noqa: F401  (as ArmoRM does)
from transformers.utils import ModelOutput


@dataclass
class GatedOutput(ModelOutput):
    rewards: torch.FloatTensor = None
    score: torch.FloatTensor = None
    logits: torch.FloatTensor = None


class TinyGatedRM(LlamaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.regression_layer = nn.Linear(config.hidden_size, config.num_objectives, bias=False)
        self.gating = nn.Linear(config.hidden_size, config.num_objectives)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, use_cache=None, **kwargs):
        h = self.model(input_ids, attention_mask=attention_mask, use_cache=use_cache)[0]
        b = input_ids.shape[0]
        if self.config.pad_token_id is None:
            if b != 1:
                raise ValueError("Cannot handle batch sizes > 1 if no padding token is defined.")
            last = torch.full((b,), -1)
        else:  # ArmoRM's rule: the token before the first pad
            last = (torch.eq(input_ids, self.config.pad_token_id).int().argmax(-1) - 1) % input_ids.shape[-1]
        rewards = self.regression_layer(h[torch.arange(b), last])
        score = (torch.softmax(self.gating(h[:, 1]), -1) * rewards).sum(1)
        return GatedOutput(rewards=rewards, score=score, logits=score)
'''


def _gated_rm(tok, folder, seed=0):
    """A tiny ArmoRM look-alike saved in `folder`: its own modeling code, 19 objectives, a `score` output."""
    from transformers import LlamaConfig

    folder.parent.mkdir(parents=True, exist_ok=True)
    src = folder.parent / f"modeling_gated_{seed}.py"
    src.write_text(
        _GATED.replace(
            "from transformers.models.llama.modeling_llama import LLAMA_INPUTS_DOCSTRING  # noqa: F401  (as ArmoRM does)\n", ""
        )
    )
    spec = importlib.util.spec_from_file_location(f"modeling_gated_{seed}", src)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        num_labels=19,
        initializer_range=0.3,
        pad_token_id=tok.pad_token_id,
        num_objectives=19,
        auto_map={"AutoModelForSequenceClassification": "modeling_gated.TinyGatedRM"},
    )
    mod.TinyGatedRM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "modeling_gated.py").write_text(_GATED)
    return folder


def test_remote_code_model_with_score_field(tok, tmp_path):
    """ArmoRM's loading path: trust_remote_code, more labels than one, read `output.score`."""
    folder = _gated_rm(tok, tmp_path / "gated-rm")

    with pytest.raises(RewardModelError, match="is a TinyGatedRM.*pass trust_remote_code=True"):
        load_reward_model(str(folder))  # not trusted by default: only ArmoRM's hub id is
    gated = load_reward_model(str(folder), trust_remote_code=True)
    assert type(gated.model).__name__ == "TinyGatedRM" and gated.scorer == "reward:gated-rm"
    convs = _convs(7)
    alone = [gated.score([c])[0] for c in convs]
    assert np.ptp(alone) > 0.01
    np.testing.assert_allclose(gated.score(convs, batch_size=3), alone, rtol=0, atol=1e-5)


def test_remote_code_from_a_local_folder_is_pinned_to_its_content(tok, tmp_path):
    from gbg_utils.identity import folder_hash

    folder = _gated_rm(tok, tmp_path / "gated-rm")
    pin = "sha256:" + folder_hash(folder)
    assert load_reward_model(str(folder), trust_remote_code=True).provenance()["revision"] == pin
    (folder / "modeling_gated.py").write_text(_GATED + "# changed\n")  # other code: another revision
    with pytest.raises(RewardModelError, match="the folder's files are sha256:.*not the revision"):
        load_reward_model(str(folder), trust_remote_code=True, revision=pin)


_HUB_LOADS = """
import json, sys
from gbg_utils.score.reward_models import RewardModelError, load_reward_model
convs = json.loads(sys.argv[1])
out = {}
for label, kw in (("unpinned", {}), ("branch", {"revision": "main"})):
    try:
        load_reward_model("org/gated", trust_remote_code=True, **kw)
        out[label] = "loaded"
    except RewardModelError as e:
        out[label] = str(e)
for label, args in (("pinned", ("org/gated",)), ("armorm", ("armorm",))):
    kw = {"trust_remote_code": True, "revision": sys.argv[2]} if label == "pinned" else {}
    rm = load_reward_model(*args, **kw)
    out[label] = {"scores": rm.score(convs), "revision": rm.provenance()["revision"], "scorer": rm.scorer}
print(json.dumps(out))
"""


def test_remote_code_from_the_hub_runs_only_at_a_pinned_commit(tok, tmp_path):
    """A hub cache with two commits of each model, "main" at the newer: remote code without a commit is refused
    (a branch too), a commit loads that commit's code and weights, ArmoRM loads gbg's pinned commit by default.
    Offline, in a child process whose hub and module caches are this test's own."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    from gbg_utils.score.reward_models import PINNED_REVISIONS

    old, new = _gated_rm(tok, tmp_path / "old" / "gated", seed=0), _gated_rm(tok, tmp_path / "new" / "gated", seed=1)
    old_commit, new_commit = "1" * 40, "2" * 40
    hub = tmp_path / "hf" / "hub"
    for repo, pinned in (
        ("org/gated", old_commit),
        ("RLHFlow/ArmoRM-Llama3-8B-v0.1", PINNED_REVISIONS["RLHFlow/ArmoRM-Llama3-8B-v0.1"]),
    ):
        d = hub / f"models--{repo.replace('/', '--')}"
        (d / "refs").mkdir(parents=True)
        (d / "refs" / "main").write_text(new_commit)
        shutil.copytree(old, d / "snapshots" / pinned)
        shutil.copytree(new, d / "snapshots" / new_commit)
    convs = _convs(4)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    proc = subprocess.run(
        [sys.executable, "-c", _HUB_LOADS, json.dumps(convs), old_commit], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "pin it with revision=<40-hex commit>" in out["unpinned"]
    assert "got 'main': a branch or tag can move" in out["branch"]
    want_old = load_reward_model(str(old), trust_remote_code=True).score(convs)
    assert np.ptp(want_old) > 0.01 and not np.allclose(
        want_old, load_reward_model(str(new), trust_remote_code=True).score(convs), atol=1e-3
    )
    assert out["pinned"]["revision"] == old_commit
    np.testing.assert_allclose(out["pinned"]["scores"], want_old, rtol=0, atol=1e-5)
    assert out["armorm"]["revision"] == PINNED_REVISIONS["RLHFlow/ArmoRM-Llama3-8B-v0.1"]
    assert out["armorm"]["scorer"] == "reward:ArmoRM-Llama3-8B-v0.1"
    np.testing.assert_allclose(out["armorm"]["scores"], want_old, rtol=0, atol=1e-5)


# --- the store -------------------------------------------------------------------------------------
class ToyTask:
    name, version = "toy", "1"

    def __init__(self, n):
        self.items = [Item(str(i), {"q": f"What is {i} + {i}?"}) for i in range(n)]
        self.loads = 0

    def load(self, data_dir=None, limit=None):
        self.loads += 1
        return self.items[:limit]

    def prompt(self, item):
        return [{"role": "user", "content": item.data["q"]}]


def _fill(store, task, n_samples=4, model="policy"):
    rng = random.Random(1)
    greedy, sampled = DecodingConfig(), DecodingConfig(temperature=1.0, n=n_samples)
    run = store.new_run({"kind": "generation"})
    rows = []
    engine = {"backend": "openai", "served_model": model, "host": "127.0.0.1:1"}  # the policy received the messages as they are
    for cfg, n in ((greedy, 1), (sampled, n_samples)):
        key = store.add_config(cfg, engine)
        for it in task.items:
            for j in range(n):
                text = " ".join(rng.choice(["so", "it", "is", str(2 * int(it.id))]) for _ in range(rng.randint(1, 30)))
                rows.append(Sample(model, task.name, it.id, prompt_hash(task.prompt(it)), key, j, text, 5, "stop", None, j))
    store.add_samples(rows, run)
    return len(rows)


def test_score_rewards_writes_next_to_samples_and_skips_on_rerun(rm, tmp_path):
    task, store = ToyTask(5), SampleStore(tmp_path / "s.sqlite")
    n = _fill(store, task)
    s = score_rewards(store, task, rm, batch_size=4, progress=False)
    assert (s.scored, s.reused, s.too_long) == (n, 0, 0)
    df = store.frame(extra_scorers=[rm.scorer], text=True)
    assert len(df) == n and df[rm.scorer].notna().all()
    # each stored reward is the reward of task prompt + stored completion
    row = df.iloc[7]
    conv = conversation(task, task.items[int(row["item_id"])], row["text"])
    assert row[rm.scorer] == pytest.approx(rm.score([conv])[0], abs=1e-5)
    prov = store.runs().set_index("run_id").loc[s.run_id, "provenance"]
    assert (
        prov["kind"] == "reward"
        and prov["path"] == rm.path
        and prov["dtype"] == "float32"
        and prov["scorer_version"] == REWARD_VERSION
    )
    loads = task.loads
    again = score_rewards(store, task, rm, progress=False)
    assert (again.scored, again.reused, again.run_id) == (0, n, None) and task.loads == loads  # nothing loaded, nothing scored


def test_killed_run_resumes_without_rescoring(rm, tmp_path):
    task = ToyTask(6)
    full = SampleStore(tmp_path / "full.sqlite")
    n = _fill(full, task)
    score_rewards(full, task, rm, batch_size=3, progress=False)

    store = SampleStore(tmp_path / "killed.sqlite")
    _fill(store, task)
    calls = []

    def die_on_third(mod, args, kw):
        calls.append(kw["input_ids"].shape[0])
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")

    h = rm.model.register_forward_pre_hook(die_on_third, with_kwargs=True)
    try:
        with pytest.raises(KeyboardInterrupt):
            score_rewards(store, task, rm, batch_size=3, chunk_size=6, progress=False)  # 2 batches per write
    finally:
        h.remove()
    done = store.scored_keys(rm.scorer, REWARD_VERSION)
    assert len(done) == 6  # the first chunk is stored, the chunk in flight is not

    calls.clear()
    h = rm.model.register_forward_pre_hook(lambda mod, args, kw: calls.append(kw["input_ids"].shape[0]), with_kwargs=True)
    try:
        s = score_rewards(store, task, rm, batch_size=3, chunk_size=6, progress=False)
    finally:
        h.remove()
    assert (s.scored, s.reused) == (n - 6, 6) and sum(calls) == n - 6  # only the rest went through the model
    a = store.frame(extra_scorers=[rm.scorer]).set_index(["config_key", "item_id", "sample_idx"])[rm.scorer].sort_index()
    b = full.frame(extra_scorers=[rm.scorer]).set_index(["config_key", "item_id", "sample_idx"])[rm.scorer].sort_index()
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-5)


def test_prompt_mismatch_and_unknown_items_are_refused(rm, tmp_path):
    task, store = ToyTask(3), SampleStore(tmp_path / "s.sqlite")
    _fill(store, task)
    changed = ToyTask(3)
    changed.prompt = lambda item: [{"role": "user", "content": "Solve: " + item.data["q"]}]
    with pytest.raises(ValueError, match="different prompt"):
        score_rewards(store, changed, rm, progress=False)
    fewer = ToyTask(2)
    with pytest.raises(ValueError, match=r"1 stored item ids are not in task 'toy'"):
        score_rewards(store, fewer, rm, progress=False)
    s = score_rewards(store, fewer, rm, items=fewer.items, progress=False)  # explicit items: just those
    assert s.scored == 2 * 5 and store.scores()["item_id"].isin(["0", "1"]).all()


class _TextReadsStore(SampleStore):
    """A real store that records which (model, config_key) groups had their texts read."""

    def __init__(self, path):
        super().__init__(path)
        self.text_reads = []

    def samples(self, model=None, benchmark=None, config_key=None, text=True):
        df = super().samples(model=model, benchmark=benchmark, config_key=config_key, text=text)
        if text:
            self.text_reads += sorted(set(zip(df["model"], df["config_key"])))
        return df


def test_score_rewards_reads_and_scores_only_the_selected_samples(rm, tmp_path):
    """The notebook's frame: one policy's sampled config, items 1-2. Another policy, the greedy config and item 0
    are neither scored nor read; a rerun reads no text at all; the run's provenance names what it scored."""
    task, store = ToyTask(3), _TextReadsStore(tmp_path / "s.sqlite")
    _fill(store, task, model="policy")
    _fill(store, task, model="other")
    frame = store.frame()
    sampled = frame[(frame["model"] == "policy") & (frame["temperature"] > 0) & (frame["item_id"] != "0")]
    key = sampled["config_key"].iat[0]
    s = score_rewards(store, task, rm, only=sampled, progress=False)
    assert (s.scored, s.reused) == (len(sampled), 0) == (8, 0)
    assert set(store.text_reads) == {("policy", key)}
    scored = store.scores(scorer=rm.scorer)
    assert set(zip(scored["model"], scored["config_key"], scored["item_id"])) == {("policy", key, "1"), ("policy", key, "2")}
    prov = store.runs().set_index("run_id").loc[s.run_id, "provenance"]
    assert prov["selection"] == {"models": ["policy"], "config_keys": [key], "items": 2, "samples": 8}
    store.text_reads.clear()
    again = score_rewards(store, task, rm, only=sampled, progress=False)
    assert (again.scored, again.reused, store.text_reads) == (0, 8, [])


# --- vLLM ------------------------------------------------------------------------------------------
def test_vllm_pooling_backend_matches_transformers(rm, rm_dir, tmp_path):
    pytest.importorskip("vllm")
    task, store = ToyTask(3), SampleStore(tmp_path / "s.sqlite")
    n = _fill(store, task)
    vrm = load_reward_model(rm_dir, backend="vllm", max_length=256)
    try:
        assert vrm.scorer == rm.scorer and vrm.provenance()["backend"] == "vllm"
        convs = _convs(9)
        np.testing.assert_allclose(vrm.score(convs), rm.score(convs), rtol=0, atol=1e-4)  # the raw logit, no sigmoid
        s = score_rewards(store, task, vrm, progress=False)
        assert s.scored == n
        df = store.frame(extra_scorers=[rm.scorer], text=True)
        direct = rm.score([conversation(task, task.items[int(i)], t) for i, t in zip(df["item_id"], df["text"])])
        np.testing.assert_allclose(df[rm.scorer], direct, rtol=0, atol=1e-4)
    finally:
        vrm.close()
