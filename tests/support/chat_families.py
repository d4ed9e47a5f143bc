"""Tiny chat models of five template families, built from configs, tokenizers and templates
written here (nothing downloaded): ChatML (Qwen2), Llama 3, Gemma, Mistral and Phi-3, each
with its own turn closer — which is not the tokenizer's eos_token in Llama 3, Gemma and
Phi-3."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHATML = (
    "{% set sys = messages and messages[0].role == 'system' %}"
    "{% if tools or sys %}<|im_start|>system\n{% if sys %}{{ messages[0].content }}{% endif %}"
    "{% if tools %}<tools>{% for t in tools %}{{ t | tojson }}{% endfor %}</tools>{% endif %}"
    "<|im_end|>\n{% endif %}"
    "{% for m in messages %}{% if m.role == 'system' %}"
    "{% elif m.role == 'assistant' %}<|im_start|>assistant\n{{ m.content }}"
    "{% for c in m.tool_calls or [] %}<tool_call>{\"name\": \"{{ c.function.name }}\", "
    "\"arguments\": {{ c.function.arguments | tojson }}}</tool_call>{% endfor %}<|im_end|>\n"
    "{% elif m.role == 'tool' %}<|im_start|>user\n<tool_response>{{ m.content }}"
    "</tool_response><|im_end|>\n"
    "{% else %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# the same, with the assistant's tokens marked for the tokenizer's own mask
CHATML_MARKED = CHATML.replace(
    "<|im_start|>assistant\n{{ m.content }}", "<|im_start|>assistant\n{% generation %}"
    "{{ m.content }}").replace("{% endfor %}<|im_end|>\n{% elif m.role == 'tool' %}",
                               "{% endfor %}<|im_end|>{% endgeneration %}{{ '\\n' }}"
                               "{% elif m.role == 'tool' %}")
LLAMA3 = (
    "<|begin_of_text|>"
    "{% if tools %}<|start_header_id|>system<|end_header_id|>\n\nTools: "
    "{% for t in tools %}{{ t | tojson }}{% endfor %}<|eot_id|>{% endif %}"
    "{% for m in messages %}{% if m.role == 'tool' %}"
    "<|start_header_id|>ipython<|end_header_id|>\n\n{{ m.content }}<|eot_id|>"
    "{% else %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}"
    "{% for c in m.tool_calls or [] %}{\"name\": \"{{ c.function.name }}\", \"parameters\": "
    "{{ c.function.arguments | tojson }}}{% endfor %}<|eot_id|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n"
    "{% endif %}")
GEMMA = (
    "<bos>{% for m in messages %}{% if m.role == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% set role = 'model' if m.role == 'assistant' else m.role %}"
    "<start_of_turn>{{ role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
MISTRAL = (
    "<s>{% for m in messages %}{% if m.role == 'user' %}[INST] {{ m.content }} [/INST]"
    "{% elif m.role == 'assistant' %}{{ m.content }}</s>"
    "{% elif m.role == 'system' %}{{ m.content }}\n\n{% endif %}{% endfor %}")
PHI3 = (
    "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% else %}<|endoftext|>{% endif %}")


@dataclass(frozen=True)
class Family:
    name: str
    template: str
    specials: tuple[str, ...]
    eos: str
    closer: str  # what ends an assistant turn
    config: str  # the transformers config class
    tools: bool = False  # the template renders tools and tool calls


FAMILIES = {f.name: f for f in (
    Family("chatml", CHATML, ("<|im_start|>", "<|im_end|>", "<|endoftext|>"), "<|im_end|>",
           "<|im_end|>", "Qwen2Config", tools=True),
    Family("llama3", LLAMA3, ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                              "<|eot_id|>", "<|end_of_text|>"), "<|end_of_text|>",
           "<|eot_id|>", "LlamaConfig", tools=True),
    Family("gemma", GEMMA, ("<bos>", "<start_of_turn>", "<end_of_turn>", "<eos>"), "<eos>",
           "<end_of_turn>", "GemmaConfig"),
    Family("mistral", MISTRAL, ("<s>", "</s>", "[INST]", "[/INST]"), "</s>", "</s>",
           "MistralConfig"),
    Family("phi3", PHI3, ("<|user|>", "<|assistant|>", "<|system|>", "<|end|>",
                          "<|endoftext|>"), "<|endoftext|>", "<|end|>", "Phi3Config"),
)}

CORPUS = [
    "Classify this SMS as spam or ham.", "WIN a free prize now, click the link", "spam", "ham",
    "are we still on for lunch", "what is the weather in Paris", "get_weather city Paris",
    '{"name": "get_weather", "arguments": {"city": "Paris"}}', "sunny, 21 degrees",
    "system user assistant model tool ipython Tools parameters", "0123456789 {}[]:,\"'",
] * 3


def tokenizer(family: Family, template: str | None = None) -> Any:
    """A byte-level BPE tokenizer trained on a few sentences, with the family's special
    tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=list(family.specials),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tk.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=family.eos,
                                   pad_token=family.eos, chat_template=template or family.template)


def model(family: Family, vocab_size: int, seed: int = 0) -> Any:
    """A randomly initialised 2-layer model of the family's architecture."""
    import torch
    import transformers

    config = getattr(transformers, family.config)(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8,
        max_position_embeddings=512, tie_word_embeddings=True, pad_token_id=None,
        bos_token_id=None, eos_token_id=None)
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(config)


def save(family: Family, folder: Path) -> Path:
    """A Hugging Face model directory of the family (config, weights, tokenizer, template)."""
    tok = tokenizer(family)
    model(family, len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def cache_hub_model(family: Family, cache: Path, hub_id: str) -> Path:
    """Place a model of the family in a Hugging Face cache laid out as the hub client
    leaves it (refs/main naming a snapshot), as if it had been downloaded."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{hub_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return save(family, repo / "snapshots" / commit)
