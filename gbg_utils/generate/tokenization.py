"""One tokenisation for every local backend: a prompt rendered once with the model's own chat template and tokenizer.

A prompt is chat messages, a raw string (continued as text), or a `PrefilledChat` (messages whose assistant turn
starts with given text: the paper protocol's GSM8K). vLLM and transformers both receive `encode_prompt`'s token
ids, so a template that starts with BOS gets exactly one BOS on either backend.
"""

from __future__ import annotations

from ..logs import engine_output
from ..models import resolve_model
from ..tasks.base import PrefilledChat
from .errors import BackendError

Prompt = str | list | PrefilledChat  # a raw string, chat messages [{"role": ..., "content": ...}], or a PrefilledChat


def encode_prompt(tokenizer, prompt: Prompt) -> list[int]:
    """The token ids of a prompt, the same for every local backend. Chat messages: the model's chat template,
    then the tokenizer *without* special tokens (the template already holds BOS where the model wants it;
    adding it again is the double-BOS of Llama-3/Mistral). A raw string: the tokenizer's own rule."""
    if isinstance(prompt, str):
        return list(tokenizer(prompt, add_special_tokens=True).input_ids)
    if isinstance(prompt, PrefilledChat):
        return list(tokenizer(render_prefilled(tokenizer, prompt), add_special_tokens=True).input_ids)
    text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def render_prefilled(tokenizer, prompt: PrefilledChat) -> str:
    """open-instruct's text (eval/templates.py create_prompt_with_huggingface_tokenizer_template, add_bos=False,
    then eval/gsm/run_eval.py): the template with the assistant header, then the prefill after a space unless the
    text ends in one. The paper's harness passed this string to vLLM's LLM.generate, which tokenised it with the
    tokenizer's special tokens: so does `encode_prompt` (a template that writes BOS then has it twice, as there).
    An empty prefill appends nothing: the template's text as ZeroEval (vLLM `LLM.generate(str)`) and MixEval
    (HF `tokenizer(str)`) tokenised it."""
    text = tokenizer.apply_chat_template(prompt.message_list(), tokenize=False, add_generation_prompt=True)
    if not prompt.prefill:  # ZeroEval / MixEval: the rendered template as it is, nothing after the header
        return text
    return text + (prompt.prefill if text[-1:] in ("\n", " ") else " " + prompt.prefill)


def load_tokenizer(model: str, dtype: str = "bfloat16"):
    from transformers import AutoTokenizer

    path = resolve_model(model, dtype)
    try:
        with engine_output():
            return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise BackendError(f"could not load the tokenizer of {model!r} from {path}: {str(e).splitlines()[0]}") from e
